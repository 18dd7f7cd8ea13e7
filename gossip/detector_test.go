package gossip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// TestEmptyFirstCheckpoint: a log whose first checkpoint is the empty tree
// (every Tessera log and every fresh `vigil log` publishes size 0 first)
// grows; the empty tree is a prefix of every tree, so no node may suspect
// it (there is no consistency proof from size 0), and every node follows
// it to its latest checkpoint.
func TestEmptyFirstCheckpoint(t *testing.T) {
	n := newNet(t, netOptions{nodes: 4})
	n.connectRing()
	ctx := context.Background()
	origin := n.log.Origin()
	waitAll := func(size uint64) {
		t.Helper()
		root, err := n.log.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range n.nodes {
			waitFor(t, 20*time.Second, fmt.Sprintf("%s to hold the checkpoint of size %d", nd.name, size), func() bool {
				_, err := nd.db.Checkpoint(ctx, origin, size, root)
				return err == nil
			})
		}
	}
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	waitAll(0)
	for _, grow := range []int{1, 2, 5} {
		n.log.AppendN(grow, "entry")
		for _, nd := range n.nodes {
			n.push(nd, n.log)
		}
		waitAll(n.log.Size())
	}
	for _, nd := range n.nodes {
		var sus []store.Suspicion
		if err := nd.db.Suspicions(ctx, func(s store.Suspicion) error { sus = append(sus, s); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(sus) != 0 {
			t.Errorf("%s suspects an honest log that started empty: %q", nd.name, sus[0].Reason)
		}
		if c := counter(t, nd.svc, "vigil_suspicions_total", nil); c != 0 {
			t.Errorf("%s: vigil_suspicions_total = %v, want 0", nd.name, c)
		}
		if c := evidenceCount(t, nd); c != 0 {
			t.Errorf("%s holds %d evidence records", nd.name, c)
		}
	}
}
