package gossip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// slowStore is the real Badger store with a slow disk's write latency on
// MergeCheckpoint, the detector's write.
type slowStore struct {
	*store.DB
	delay time.Duration
}

func (s slowStore) MergeCheckpoint(ctx context.Context, origin string, size uint64, root [32]byte, fn func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error)) error {
	// The delay is the slow disk being simulated, not synchronisation.
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.DB.MergeCheckpoint(ctx, origin, size, root, fn)
}

var _ gossip.Store = slowStore{}

// TestSlowStoreDropsNothing: with every node's store slow, a burst of split
// views larger than the subscription's buffer waits for the detector
// instead of being dropped: every fork is stored and becomes evidence at
// every node, and nothing is counted as dropped. (The subscription buffer is
// 64 here, not 1024: it only has to cover the moments before the
// subscription loop is scheduled, since that loop only queues.)
func TestSlowStoreDropsNothing(t *testing.T) {
	n := newNet(t, netOptions{nodes: 4, subBuffer: 64, wrapStore: func(db *store.DB) gossip.Store {
		return slowStore{DB: db, delay: 15 * time.Millisecond}
	}})
	n.connectRing()
	n.log.AppendN(5, "common")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A publisher outside the network shows each node 12 forks of the log
	// at once, each a split view of the same size, as soon as it sees the
	// nodes subscribed: none may be lost, the first ones included.
	pub := newHostile(t, "test")
	for _, nd := range n.nodes {
		pub.watch(t, ctx, nd)
	}
	const forks = 12
	for i := range forks {
		fork, err := n.log.Fork(5)
		if err != nil {
			t.Fatal(err)
		}
		fork.AppendN(1, fmt.Sprintf("fork-%d", i))
		cp, err := fork.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: cp, Observer: "publisher", Source: vpb.Source_SOURCE_GOSSIP})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.cp.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, nd := range n.nodes {
			recs, _ := nd.db.CheckpointsAtSize(ctx, n.log.Origin(), 6)
			t.Logf("%s: %d forks stored, %v dropped, %v queued, %d evidence", nd.name, len(recs), counter(t, nd.svc, "vigil_gossip_dropped_total", nil), counter(t, nd.svc, "vigil_gossip_intake_queued", nil), evidenceCount(t, nd))
		}
	})
	for _, nd := range n.nodes {
		waitFor(t, 30*time.Second, nd.name+" to store every fork", func() bool {
			recs, err := nd.db.CheckpointsAtSize(ctx, n.log.Origin(), 6)
			return err == nil && len(recs) == forks
		})
		waitFor(t, 30*time.Second, nd.name+" to hold evidence of every fork", func() bool {
			return evidenceCount(t, nd) >= forks-1
		})
		if d := counter(t, nd.svc, "vigil_gossip_dropped_total", nil); d != 0 {
			t.Errorf("%s dropped %v messages", nd.name, d)
		}
	}
}
