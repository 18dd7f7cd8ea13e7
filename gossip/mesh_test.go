package gossip_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestMeshPeers: MeshPeers and vigil_gossip_mesh_peers follow the node's
// gossipsub mesh of each topic: a connected neighbour is in it once a
// heartbeat has grafted it, and leaves it when the connection goes.
func TestMeshPeers(t *testing.T) {
	n := newNet(t, netOptions{nodes: 3})
	a, b, c := n.nodes[0], n.nodes[1], n.nodes[2]
	meshOf := func(nd *tnode, want ...peer.ID) func() bool {
		return func() bool {
			cp, ev := nd.svc.MeshPeers()
			slices.Sort(cp)
			slices.Sort(ev)
			slices.Sort(want)
			return slices.Equal(cp, want) && slices.Equal(ev, want)
		}
	}
	gauge := func(topic string) float64 {
		return counter(t, a.svc, "vigil_gossip_mesh_peers", map[string]string{"topic": topic})
	}
	if !meshOf(a)() || gauge("checkpoints") != 0 || gauge("evidence") != 0 {
		t.Fatalf("a lone node has a mesh: %v peers", gauge("checkpoints")+gauge("evidence"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, nd := range []*tnode{b, c} {
		if err := a.svc.Connect(ctx, nd.addrInfo(i == 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Each side adds the other when it grafts it or takes its GRAFT.
	waitFor(t, 30*time.Second, "b and c in a's meshes, a in theirs", func() bool {
		return meshOf(a, b.host.ID(), c.host.ID())() && meshOf(b, a.host.ID())() && meshOf(c, a.host.ID())()
	})
	for _, topic := range []string{"checkpoints", "evidence"} {
		if g := gauge(topic); g != 2 {
			t.Errorf("vigil_gossip_mesh_peers{topic=%q} = %v, want 2", topic, g)
		}
	}

	if err := a.host.Network().ClosePeer(c.host.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "c gone from a's meshes", meshOf(a, b.host.ID()))
	if g := gauge("checkpoints"); g != 1 {
		t.Errorf("vigil_gossip_mesh_peers{topic=\"checkpoints\"} = %v after c left, want 1", g)
	}
}
