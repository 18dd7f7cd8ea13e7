package gossip_test

import (
	"bufio"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/tlog"
)

// byRank returns n's nodes in the order nd ranks them for aggregating
// signedNote's checkpoint.
func byRank(t *testing.T, n *tnet, nd *tnode, signedNote []byte) []*tnode {
	t.Helper()
	var out []*tnode
	for _, id := range gossip.Ranking(nd.svc, signedNote) {
		for _, m := range n.nodes {
			if m.host.ID() == id {
				out = append(out, m)
			}
		}
	}
	if len(out) != len(n.nodes) {
		t.Fatalf("ranking names %d of %d nodes", len(out), len(n.nodes))
	}
	return out
}

// TestRelayToFirstRanked: a last stop that is not its checkpoint's
// first-ranked witness has a peer pass its collection on to that witness
// instead of publishing it; if no peer is connected to the first-ranked
// witness, it publishes the collection itself.
func TestRelayToFirstRanked(t *testing.T) {
	for _, tc := range []struct {
		name string
		// reachable: the peer between them is connected to the
		// first-ranked witness.
		reachable bool
		// the relay metrics at the last stop and at its peer, and what
		// the last stop publishes (its announcement, and its collection
		// if nobody took it)
		stop, peer string
		published  float64
	}{
		{"a peer connected to the first-ranked witness passes it on", true, "relayed", "passed", 1},
		{"no peer connected to it: the last stop publishes", false, "unrelayed", "declined", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, netOptions{nodes: 3, aggregate: true, window: 100 * time.Millisecond})
			n.log.AppendN(5, "common")
			cp, _ := n.log.Checkpoint()
			ranked := byRank(t, n, n.nodes[0], cp)
			// The last stop ranks second and is connected only to the
			// third, which ranks below it.
			first, stop, mid := ranked[0], ranked[1], ranked[2]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := stop.svc.Connect(ctx, mid.addrInfo(false)); err != nil {
				t.Fatal(err)
			}
			meshed := []*tnode{stop, mid}
			if tc.reachable {
				if err := mid.svc.Connect(ctx, first.addrInfo(false)); err != nil {
					t.Fatal(err)
				}
				meshed = append(meshed, first)
			}
			n.waitMesh(meshed, 1)
			if hop := gossip.NextHop(stop.svc, cp); hop != "" {
				t.Fatalf("the last stop hands on to %s", hop)
			}
			n.push(stop, n.log)
			parsed, err := tlog.ParseCheckpoint(cp[:bytes.Index(cp, []byte("\n\n"))+1])
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the last stop's cosignature at every meshed node", func() bool {
				for _, nd := range meshed {
					rec, err := nd.db.Checkpoint(ctx, parsed.Origin, parsed.Size, parsed.Root)
					if err != nil || rec.Cosigners < 1 {
						return false
					}
				}
				return true
			})
			relays := func(nd *tnode, result string) float64 {
				return counter(t, nd.svc, "vigil_gossip_cosign_relays_total", map[string]string{"result": result})
			}
			if got := relays(stop, tc.stop); got != 1 {
				t.Errorf("last stop: relays{result=%q} = %v, want 1", tc.stop, got)
			}
			if got := relays(mid, tc.peer); got != 1 {
				t.Errorf("its peer: relays{result=%q} = %v, want 1", tc.peer, got)
			}
			// (Counted once Publish returns, which can be after the
			// others stored it.)
			waitFor(t, 10*time.Second, "the last stop's publications counted", func() bool {
				return counter(t, stop.svc, "vigil_gossip_sightings_published_total", nil) >= tc.published
			})
			if got := counter(t, stop.svc, "vigil_gossip_sightings_published_total", nil); got != tc.published {
				t.Errorf("the last stop published %v sightings, want %v", got, tc.published)
			}
		})
	}
}

// TestRelayFallback: a last stop whose collection a peer claims to have
// passed on, but withholds, publishes it itself after the fallback delay.
func TestRelayFallback(t *testing.T) {
	n := newNet(t, netOptions{nodes: 2, aggregate: true, window: 50 * time.Millisecond, fallback: 300 * time.Millisecond})
	n.log.AppendN(5, "common")
	cp, _ := n.log.Checkpoint()
	stop := byRank(t, n, n.nodes[0], cp)[1]
	x := newHostile(t, "test")
	asked := make(chan struct{}, 4)
	x.host.SetStreamHandler(cosignProtocol, func(st network.Stream) {
		defer st.Close()
		r := bufio.NewReader(st)
		if typ, err := r.ReadByte(); err != nil || typ != 3 {
			st.Reset()
			return
		}
		// Claims to have passed it on, and drops it.
		st.Write([]byte{1})
		asked <- struct{}{}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.host.Connect(ctx, stop.addrInfo(false)); err != nil {
		t.Fatal(err)
	}
	n.push(stop, n.log)
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("the last stop asked no peer to relay its collection")
	}
	// Its announcement, then its collection.
	waitFor(t, 10*time.Second, "the fallback", func() bool {
		return counter(t, stop.svc, "vigil_gossip_cosign_relays_total", map[string]string{"result": "fallback"}) == 1 &&
			counter(t, stop.svc, "vigil_gossip_sightings_published_total", nil) >= 2
	})
	if got := counter(t, stop.svc, "vigil_gossip_sightings_published_total", nil); got != 2 {
		t.Errorf("the last stop published %v sightings, want 2", got)
	}
}
