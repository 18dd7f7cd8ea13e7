package gossip_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
)

// TestEvidencePushedToPeers: evidence a node stores is also sent straight to
// each connected peer on the sync protocol (not only through pubsub's
// validation queue, where it would wait behind routine sightings).
func TestEvidencePushedToPeers(t *testing.T) {
	n := newNet(t, netOptions{nodes: 1, observers: true})
	nd := n.nodes[0]
	n.log.AppendN(5, "common")
	x := newHostile(t, "test")
	got := make(chan []byte, 16)
	x.host.SetStreamHandler(protocol.ID("/vigil/1/test/sync/1.0.0"), func(st network.Stream) {
		defer st.Close()
		r := bufio.NewReader(st)
		for {
			typ, err := r.ReadByte()
			if err != nil {
				return
			}
			l, err := binary.ReadUvarint(r)
			if err != nil || l > vpb.MaxEvidenceSize {
				return
			}
			b := make([]byte, l)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			if typ == 2 { // evidence frame
				got <- b
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.host.Connect(ctx, nd.addrInfo(false)); err != nil {
		t.Fatal(err)
	}
	n.publishSplitView(ctx, nd)
	select {
	case b := <-got:
		e, err := vpb.UnmarshalEvidence(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := evidence.Verify(e, n.roster); err != nil {
			t.Fatalf("pushed evidence does not verify: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no evidence pushed to the connected peer")
	}
}

// TestEvidencePushFanout: a node pushes evidence once, to 8 of its peers,
// whether it found the evidence or relays it, and never back to the peer
// it came from.
func TestEvidencePushFanout(t *testing.T) {
	const fanout = 8
	n := newNet(t, netOptions{nodes: 2, observers: true})
	finder, relay := n.nodes[0], n.nodes[1]
	n.log.AppendN(5, "common")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// counting peers, each with a sync handler that counts evidence frames.
	var mu sync.Mutex
	pushed := map[*hostile]int{}
	// streams counts the sync streams each node opened to its counting
	// peers: the first is the catch-up sync every new connection gets.
	streams := map[*tnode]int{}
	var found []byte
	connect := func(nd *tnode, peers int) []*hostile {
		var xs []*hostile
		for range peers {
			x := newHostile(t, "test")
			x.host.SetStreamHandler(protocol.ID("/vigil/1/test/sync/1.0.0"), func(st network.Stream) {
				defer st.Close()
				frames := readFrames(st)
				mu.Lock()
				defer mu.Unlock()
				streams[nd]++
				for _, f := range frames {
					if _, err := vpb.UnmarshalEvidence(f); err == nil {
						pushed[x]++
						found = f
					}
				}
			})
			if err := x.host.Connect(ctx, nd.addrInfo(false)); err != nil {
				t.Fatal(err)
			}
			xs = append(xs, x)
		}
		// A catch-up sync still on its way when nd stores the evidence
		// would carry it too, and count as one push more.
		waitFor(t, 10*time.Second, "the catch-up syncs", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return streams[nd] >= peers
		})
		return xs
	}
	count := func(xs []*hostile) (total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range xs {
			if pushed[x] > 1 {
				t.Errorf("a peer was pushed the same evidence %d times", pushed[x])
			}
			total += pushed[x]
		}
		return total
	}

	// The finder has more peers than the fan-out.
	xs := connect(finder, 12)
	n.publishSplitView(ctx, finder)
	waitFor(t, 10*time.Second, "evidence pushed by the finder", func() bool { return count(xs) >= fanout })
	// Close waits for every push in flight, so the count is final.
	finder.svc.Close()
	if c := count(xs); c != fanout {
		t.Errorf("the finder pushed its evidence to %d of %d peers, want %d", c, len(xs), fanout)
	}

	// The relay gets the same evidence by sync from one of its 9 peers:
	// it pushes it to the other 8, and not back.
	xs = connect(relay, fanout+1)
	sender, others := xs[0], xs[1:]
	st, err := sender.host.NewStream(ctx, relay.host.ID(), protocol.ID("/vigil/1/test/sync/1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	b := found
	mu.Unlock()
	writeFrame(t, st, 2, b) // an evidence frame
	st.Close()
	waitFor(t, 10*time.Second, "evidence relayed", func() bool { return count(others) >= fanout })
	relay.svc.Close()
	if c := count(others); c != fanout {
		t.Errorf("the relay pushed the evidence to %d of its %d other peers, want all", c, len(others))
	}
	if c := count([]*hostile{sender}); c != 0 {
		t.Errorf("the relay pushed the evidence back to the peer it came from")
	}
}

// publishSplitView forks the log at its size, grows each side by an entry
// and has nd publish both checkpoints as pushed to it: nd then finds the
// split view itself.
func (n *tnet) publishSplitView(ctx context.Context, nd *tnode) {
	n.t.Helper()
	fork, err := n.log.Fork(n.log.Size())
	if err != nil {
		n.t.Fatal(err)
	}
	n.log.AppendN(1, "view A")
	fork.AppendN(1, "view B")
	for _, l := range []interface{ Checkpoint() ([]byte, error) }{n.log, fork} {
		cp, _ := l.Checkpoint()
		if err := nd.svc.PublishSighting(ctx, cp, vpb.Source_SOURCE_PUSH); err != nil {
			n.t.Fatal(err)
		}
	}
}

// TestSelfEvidentEvidenceNotPushed: a node that finds a same-size split view
// from two checkpoints that both reached it through gossip (so through its
// mesh, which has them too) pushes the evidence to no one and publishes it
// on the evidence topic; one that learnt a side otherwise (here a catch-up
// sync) pushes it.
func TestSelfEvidentEvidenceNotPushed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		synced bool // view B arrives on a sync stream, not by gossip
		pushed int
	}{
		{"both sides from gossip", false, 0},
		{"one side from a catch-up sync", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, netOptions{nodes: 1, observers: true})
			nd := n.nodes[0]
			n.log.AppendN(5, "common")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			x := newHostile(t, "test")
			pushed := countPushedEvidence(x)
			evSub, err := x.ev.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			defer evSub.Cancel()
			x.watch(t, ctx, nd)
			waitFor(t, 10*time.Second, "the hostile peer in the node's mesh", func() bool {
				cp, _ := nd.svc.MeshPeers()
				return len(cp) > 0
			})
			fork, err := n.log.Fork(n.log.Size())
			if err != nil {
				t.Fatal(err)
			}
			n.log.AppendN(1, "view A")
			fork.AppendN(1, "view B")
			sighting := func(l interface{ Checkpoint() ([]byte, error) }) []byte {
				cp, _ := l.Checkpoint()
				b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: cp, Observer: "x", SeenUnixMs: time.Now().UnixMilli(), Source: vpb.Source_SOURCE_PULL})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			// publish gossips a sighting once and waits until the node has
			// accepted it.
			accepted := func() float64 {
				return counter(t, nd.svc, "vigil_gossip_validated_total", map[string]string{"topic": "checkpoints", "result": "accept"})
			}
			publish := func(b []byte) {
				want := accepted() + 1
				if err := x.cp.Publish(ctx, b); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "the node to accept the sighting", func() bool { return accepted() >= want })
			}
			publish(sighting(n.log))
			if tc.synced {
				st, err := x.host.NewStream(ctx, nd.host.ID(), protocol.ID("/vigil/1/test/sync/1.0.0"))
				if err != nil {
					t.Fatal(err)
				}
				writeFrame(t, st, 1, sighting(fork))
				st.Close()
			} else {
				publish(sighting(fork))
			}
			// The evidence topic carries it either way.
			if _, err := evSub.Next(ctx); err != nil {
				t.Fatalf("no evidence on the evidence topic: %v", err)
			}
			if c := evidenceCount(t, nd); c != 1 {
				t.Fatalf("%d evidence records, want 1", c)
			}
			// Pushes start before the evidence is stored.
			if got := counter(t, nd.svc, "vigil_gossip_evidence_pushes_total", nil); got != float64(tc.pushed) {
				t.Errorf("evidence pushed %v times, want %d", got, tc.pushed)
			}
			waitFor(t, 10*time.Second, "the pushes to arrive", func() bool { return pushed() >= tc.pushed })
		})
	}
}

// countPushedEvidence counts the evidence frames pushed to x over the test
// network's sync protocol.
func countPushedEvidence(x *hostile) func() int {
	var mu sync.Mutex
	n := 0
	x.host.SetStreamHandler(protocol.ID("/vigil/1/test/sync/1.0.0"), func(st network.Stream) {
		defer st.Close()
		for _, f := range readFrames(st) {
			if _, err := vpb.UnmarshalEvidence(f); err == nil {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}
