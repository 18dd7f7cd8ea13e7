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

// TestEvidencePushFanout: the node that finds evidence pushes it to every
// peer; a node relaying it, to 8 of them, once.
func TestEvidencePushFanout(t *testing.T) {
	const peers, fanout = 12, 8
	n := newNet(t, netOptions{nodes: 2, observers: true})
	finder, relay := n.nodes[0], n.nodes[1]
	n.log.AppendN(5, "common")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// counting peers, each with a sync handler that counts evidence frames.
	var mu sync.Mutex
	pushed := map[*tnode]int{}
	// streams counts the sync streams each node opened to its counting
	// peers: the first is the catch-up sync every new connection gets.
	streams := map[*tnode]int{}
	var found []byte
	var hostiles []*hostile
	connect := func(nd *tnode) {
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
						pushed[nd]++
						found = f
					}
				}
			})
			if err := x.host.Connect(ctx, nd.addrInfo(false)); err != nil {
				t.Fatal(err)
			}
			hostiles = append(hostiles, x)
		}
		// A catch-up sync still on its way when nd stores the evidence
		// would carry it too, and count as one push more.
		waitFor(t, 10*time.Second, "the catch-up syncs", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return streams[nd] >= peers
		})
	}
	count := func(nd *tnode) int {
		mu.Lock()
		defer mu.Unlock()
		return pushed[nd]
	}

	connect(finder)
	n.publishSplitView(ctx, finder)
	waitFor(t, 10*time.Second, "evidence pushed by the finder", func() bool { return count(finder) >= peers })
	// Close waits for every push in flight, so the count is final.
	finder.svc.Close()
	if c := count(finder); c != peers {
		t.Errorf("the finder pushed its evidence to %d of %d peers, want all", c, peers)
	}

	// The relay gets the same evidence from one of its peers by sync.
	connect(relay)
	sender := hostiles[len(hostiles)-1]
	st, err := sender.host.NewStream(ctx, relay.host.ID(), protocol.ID("/vigil/1/test/sync/1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	b := found
	mu.Unlock()
	writeFrame(t, st, 2, b) // an evidence frame
	st.Close()
	waitFor(t, 10*time.Second, "evidence relayed", func() bool { return count(relay) >= fanout })
	relay.svc.Close()
	if c := count(relay); c != fanout {
		t.Errorf("the relay pushed the evidence to %d of %d peers, want %d", c, peers, fanout)
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
