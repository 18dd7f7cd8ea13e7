package gossip_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

const detectDeadline = 20 * time.Second

// equivocate makes half the nodes see view A and half view B: even nodes of
// each half by push (to their witness), odd ones by pull (their follower
// reads the log's tiles, which the log serves per view).
func (n *tnet) equivocate(a, b *scriptlog.Log) {
	n.t.Helper()
	n.views[0].log.Store(a)
	n.views[1].log.Store(b)
	half := len(n.nodes) / 2
	for i, nd := range n.nodes {
		l := a
		if i >= half {
			nd.view.Store(n.views[1])
			l = b
		} else {
			nd.view.Store(n.views[0])
		}
		if i%2 == 0 && nd.w != nil {
			n.push(nd, l)
		} else {
			n.pull(nd)
		}
	}
}

func TestSplitViewSameSize(t *testing.T) {
	n := newNet(t, netOptions{nodes: 8})
	n.connectRing()
	n.log.AppendN(5, "common")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	fork, _ := n.log.Fork(5)
	n.log.AppendN(7, "view-a")
	fork.AppendN(7, "view-b")
	n.equivocate(n.log, fork)
	n.waitEvidence(n.nodes, "log-equivocation-same-size", detectDeadline)
}

func TestSplitViewDifferentSizes(t *testing.T) {
	// Own sightings go out at once: held for an aggregation window, the A
	// side's checkpoints reach B late and B's evidence can reach every A
	// node before any of them asks a peer for a proof, which this test
	// is about.
	n := newNet(t, netOptions{nodes: 8, ownInterval: -1})
	n.connectRing()
	n.log.AppendN(300, "common")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	fork, _ := n.log.Fork(300)
	n.log.AppendN(20, "view-a") // A: size 320
	fork.AppendN(400, "view-b") // B: size 700, across tile boundaries
	n.equivocate(n.log, fork)
	n.waitEvidence(n.nodes, "log-equivocation-different-sizes", detectDeadline)
	// The A side cannot prove anything from its own tiles (they do not
	// reach size 700): it asks the peers that published B for proofs bound
	// to B's root.
	peerProofs := 0.0
	for _, nd := range n.nodes[:len(n.nodes)/2] {
		peerProofs += counter(t, nd.svc, "vigil_detector_proof_fetches_total", map[string]string{"source": "peer", "result": "ok"})
	}
	if peerProofs == 0 {
		t.Error("no view-A node obtained a proof from a peer")
	}
	for _, nd := range n.nodes {
		if c := evidenceCount(t, nd); c != 1 {
			t.Errorf("%s holds %d evidence records, want 1", nd.name, c)
		}
	}
}

func TestSplitViewObservers(t *testing.T) {
	n := newNet(t, netOptions{nodes: 8, observers: true})
	n.connectRing()
	n.log.AppendN(16, "common")
	for _, nd := range n.nodes {
		n.pull(nd)
	}
	fork, _ := n.log.Fork(16)
	n.log.AppendN(16, "view-a") // A: 32
	fork.AppendN(1, "view-b")   // B: 17; power-of-two smaller size on A's side
	n.equivocate(n.log, fork)
	n.waitEvidence(n.nodes, "log-equivocation-different-sizes", detectDeadline)
	for _, nd := range n.nodes {
		if _, err := nd.db.WitnessState(context.Background(), n.log.Origin()); err == nil {
			t.Fatalf("observer %s cosigned", nd.name)
		}
	}
}

// TestWitnessEquivocation: a roster witness cosigns both views; every node
// must hold evidence naming it.
func TestWitnessEquivocation(t *testing.T) {
	for _, tc := range []struct {
		name         string
		sizeA, sizeB int
		kind         string
	}{
		{"same size", 7, 7, "log-equivocation-same-size"},
		{"different sizes", 7, 40, "log-equivocation-different-sizes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, netOptions{nodes: 8})
			n.connectRing()
			n.log.AppendN(5, "common")
			for _, nd := range n.nodes {
				n.push(nd, n.log)
			}
			fork, _ := n.log.Fork(5)
			n.log.AppendN(tc.sizeA, "view-a")
			fork.AppendN(tc.sizeB, "view-b")
			n.views[0].log.Store(n.log)
			n.views[1].log.Store(fork)
			half := len(n.nodes) / 2
			for i, nd := range n.nodes {
				if i >= half {
					nd.view.Store(n.views[1])
				}
			}
			// The rogue witness cosigns A and shows it to node 0, and
			// cosigns B and shows it to the last node.
			ctx := context.Background()
			if err := n.nodes[0].svc.PublishSighting(ctx, n.cosign(n.log), vpb.Source_SOURCE_PUSH); err != nil {
				t.Fatal(err)
			}
			if err := n.nodes[len(n.nodes)-1].svc.PublishSighting(ctx, n.cosign(fork), vpb.Source_SOURCE_PUSH); err != nil {
				t.Fatal(err)
			}
			n.waitEvidence(n.nodes, "witness-equivocation", detectDeadline)
			// The log's own equivocation is evidence of its own, which may
			// reach a node after the witness's (and its event may already
			// have been consumed above): wait for it in the stores.
			for _, nd := range n.nodes {
				waitFor(t, detectDeadline, nd.name+" to hold "+tc.kind+" evidence", func() bool {
					recs, _ := nd.db.ListEvidence(ctx, "", 10)
					for _, r := range recs {
						if r.Kind == tc.kind {
							return true
						}
					}
					return false
				})
			}
			for _, nd := range n.nodes {
				recs, _ := nd.db.ListEvidence(ctx, "", 10)
				kinds := map[string]bool{}
				for _, r := range recs {
					kinds[r.Kind] = true
					if r.Kind == "witness-equivocation" && r.Witness != "rogue" {
						t.Fatalf("%s: witness evidence names %q", nd.name, r.Witness)
					}
				}
				if !kinds[tc.kind] {
					t.Errorf("%s has no %s evidence", nd.name, tc.kind)
				}
			}
		})
	}
}

func (n *tnet) cosign(l *scriptlog.Log) []byte {
	n.t.Helper()
	cp, err := l.Checkpoint()
	if err != nil {
		n.t.Fatal(err)
	}
	lg, _ := n.roster.Log(l.Origin())
	nn, err := note.Open(cp, note.VerifierList(lg.Verifier))
	if err != nil {
		n.t.Fatal(err)
	}
	out, err := note.Sign(nn, n.rogue)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// TestPartitionHeals: the two halves cannot reach each other while the log
// equivocates across them; once the partition heals, every node holds the
// evidence.
func TestPartitionHeals(t *testing.T) {
	n := newNet(t, netOptions{nodes: 8})
	n.connectRing()
	n.log.AppendN(5, "common")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	half := len(n.nodes) / 2
	left, right := n.nodes[:half], n.nodes[half:]
	for _, a := range left {
		for _, b := range right {
			a.gater.Block(b.host.ID())
			b.gater.Block(a.host.ID())
			a.host.Network().ClosePeer(b.host.ID())
		}
	}
	fork, _ := n.log.Fork(5)
	n.log.AppendN(3, "view-a")
	fork.AppendN(9, "view-b")
	n.equivocate(n.log, fork)
	// Each half has processed its own view: every node holds its side's
	// checkpoint, and nobody holds evidence.
	for i, nd := range n.nodes {
		l := n.log
		if i >= half {
			l = fork
		}
		root, _ := l.Root(l.Size())
		waitFor(t, detectDeadline, nd.name+" to see its view", func() bool {
			_, err := nd.db.Checkpoint(context.Background(), l.Origin(), l.Size(), root)
			return err == nil
		})
	}
	for _, nd := range n.nodes {
		if c := evidenceCount(t, nd); c != 0 {
			t.Fatalf("%s found evidence across a partition", nd.name)
		}
	}
	// Heal: lift the blocks and reconnect one pair.
	for _, a := range left {
		for _, b := range right {
			a.gater.Unblock(b.host.ID())
			b.gater.Unblock(a.host.ID())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := left[0].svc.Connect(ctx, right[0].addrInfo(false)); err != nil {
		t.Fatal(err)
	}
	if err := left[half-1].svc.Connect(ctx, right[half-1].addrInfo(true)); err != nil {
		t.Fatal(err)
	}
	n.waitEvidence(n.nodes, "log-equivocation-different-sizes", detectDeadline)
}
