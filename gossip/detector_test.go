package gossip_test

import (
	"context"
	"fmt"
	"slices"
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

// TestPushOnlyDivergence: two witnesses of a push-only log (no tiles)
// cosign checkpoints of different sizes that nobody can prove consistent;
// once the grace period is over, both nodes hold an open suspicion naming
// both checkpoints and their cosigners. When one witness cosigns both, it
// has checked their consistency, and the suspicion is resolved as
// consistent at both nodes. Nothing is ever evidence.
func TestPushOnlyDivergence(t *testing.T) {
	n := newNet(t, netOptions{nodes: 2, pushOnly: true, grace: 100 * time.Millisecond})
	n.connectRing()
	ctx := context.Background()
	origin := n.log.Origin()
	n.log.AppendN(5, "entry")
	n.push(n.nodes[0], n.log) // w0 cosigns size 5
	n.log.AppendN(4, "entry")
	n.push(n.nodes[1], n.log) // w1 cosigns size 9
	root9, _ := n.log.Root(9)
	divergence := func(nd *tnode) (store.Suspicion, bool) {
		var found store.Suspicion
		ok := false
		if err := nd.db.Suspicions(ctx, func(s store.Suspicion) error {
			if s.Origin == origin && s.Other != nil {
				found, ok = s, true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return found, ok
	}
	for _, nd := range n.nodes {
		waitFor(t, 20*time.Second, nd.name+" to record the divergence", func() bool {
			s, ok := divergence(nd)
			return ok && s.Open()
		})
		s, _ := divergence(nd)
		if s.Size != 9 || s.Root != root9 || s.Other.Size != 5 || !slices.Equal(s.Cosigners, []string{"w1"}) || !slices.Equal(s.Other.Cosigners, []string{"w0"}) {
			t.Errorf("%s: divergence %+v (other %+v), want size 9 cosigned by w1 against size 5 cosigned by w0", nd.name, s, *s.Other)
		}
	}
	n.push(n.nodes[0], n.log) // w0 cosigns size 9 too: it checked 5→9
	for _, nd := range n.nodes {
		waitFor(t, 20*time.Second, nd.name+" to resolve the divergence", func() bool {
			s, ok := divergence(nd)
			return ok && s.Resolved == store.ResolvedConsistent
		})
		if c := evidenceCount(t, nd); c != 0 {
			t.Errorf("%s holds %d evidence records", nd.name, c)
		}
		if c := counter(t, nd.svc, "vigil_suspicions_total", nil); c != 1 {
			t.Errorf("%s: vigil_suspicions_total = %v, want 1", nd.name, c)
		}
		if c := counter(t, nd.svc, "vigil_suspicions_resolved_total", map[string]string{"resolution": "consistent"}); c != 1 {
			t.Errorf("%s: vigil_suspicions_resolved_total{resolution=consistent} = %v, want 1", nd.name, c)
		}
	}
}

// TestSplitViewAfterEmptyStart: a log that published the empty tree first
// shows two groups of nodes histories of different sizes; every node
// proves the split view.
func TestSplitViewAfterEmptyStart(t *testing.T) {
	n := newNet(t, netOptions{nodes: 4})
	n.connectRing()
	ctx := context.Background()
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	root0, _ := n.log.Root(0)
	for _, nd := range n.nodes {
		waitFor(t, 20*time.Second, nd.name+" to hold the empty checkpoint", func() bool {
			_, err := nd.db.Checkpoint(ctx, n.log.Origin(), 0, root0)
			return err == nil
		})
	}
	n.log.AppendN(5, "common")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	fork, _ := n.log.Fork(5)
	n.log.AppendN(3, "view-a") // A: 8, a power of two
	fork.AppendN(7, "view-b")  // B: 12
	n.equivocate(n.log, fork)
	n.waitEvidence(n.nodes, "log-equivocation-different-sizes", detectDeadline)
}
