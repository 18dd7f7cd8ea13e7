package gossip_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// stalledMerges is a store whose checkpoint merges wait until release is
// closed: the detector holding them finds nothing meanwhile, so evidence
// can only come from the evidence topic.
type stalledMerges struct {
	*store.DB
	release chan struct{}
}

func (s stalledMerges) MergeCheckpoint(ctx context.Context, origin string, size uint64, root [32]byte, fn func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error)) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.DB.MergeCheckpoint(ctx, origin, size, root, fn)
}

// TestTopicEvidencePushedUnlessSelfEvident: a node that takes a split
// view's evidence from the evidence topic before its own detector finds it
// pushes it to its peers outside the topic's mesh only if it is not
// self-evident to it: when both sides reached it in gossip, its peers have
// them too and find it themselves; when it saw one side alone, a peer may
// have missed the other.
func TestTopicEvidencePushedUnlessSelfEvident(t *testing.T) {
	for _, tc := range []struct {
		name   string
		both   bool // both sides gossiped before the evidence
		pushed int
	}{
		{"both sides from gossip", true, 0},
		{"one side from gossip", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(release) }) }
			t.Cleanup(open)
			n := newNet(t, netOptions{nodes: 1, observers: true, wrapStore: func(db *store.DB) gossip.Store {
				return stalledMerges{DB: db, release: release}
			}})
			nd := n.nodes[0]
			n.log.AppendN(5, "common")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// x gossips the sides and the evidence; y, connected to the
			// node but on neither topic, counts the pushes it receives.
			x := newHostile(t, "test")
			x.watch(t, ctx, nd)
			waitFor(t, 10*time.Second, "x in the node's mesh", func() bool {
				cp, _ := nd.svc.MeshPeers()
				return len(cp) > 0
			})
			y := newHostile(t, "test")
			pushed := countPushedEvidence(y)
			if err := y.host.Connect(ctx, nd.addrInfo(false)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the node subscribed to evidence, seen by x", func() bool {
				return slices.Contains(x.ev.ListPeers(), nd.host.ID())
			})
			fork, err := n.log.Fork(n.log.Size())
			if err != nil {
				t.Fatal(err)
			}
			n.log.AppendN(1, "view A")
			fork.AppendN(1, "view B")
			cpA, _ := n.log.Checkpoint()
			cpB, _ := fork.Checkpoint()
			accepted := func() float64 {
				return counter(t, nd.svc, "vigil_gossip_validated_total", map[string]string{"topic": "checkpoints", "result": "accept"})
			}
			sides := [][]byte{cpA, cpB}
			if !tc.both {
				sides = sides[:1]
			}
			for _, cp := range sides {
				b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: cp, Observer: "x", SeenUnixMs: time.Now().UnixMilli(), Source: vpb.Source_SOURCE_PULL})
				if err != nil {
					t.Fatal(err)
				}
				want := accepted() + 1
				if err := x.cp.Publish(ctx, b); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "the node to accept the sighting", func() bool { return accepted() >= want })
			}
			ev, err := vpb.MarshalEvidence(&vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: cpA, CheckpointB: cpB})
			if err != nil {
				t.Fatal(err)
			}
			if err := x.ev.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the evidence stored from the topic", func() bool {
				return counter(t, nd.svc, "vigil_evidence_total", map[string]string{"via": "gossip"}) == 1
			})
			// Pushes start before the evidence is stored.
			if got := counter(t, nd.svc, "vigil_gossip_evidence_pushes_total", nil); got != float64(tc.pushed) {
				t.Errorf("evidence pushed %v times, want %d", got, tc.pushed)
			}
			waitFor(t, 10*time.Second, "the pushes to arrive", func() bool { return pushed() >= tc.pushed })
			open()
		})
	}
}
