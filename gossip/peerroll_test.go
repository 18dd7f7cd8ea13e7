package gossip_test

import (
	"context"
	"crypto/rand"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// drifter is a short-lived identity that answers gossipsub's protocol (so
// the node's pubsub tracks and scores it) and says nothing.
func drifter(t testing.TB) host.Host {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{string(pubsub.GossipSubID_v13), string(pubsub.GossipSubID_v12), string(pubsub.GossipSubID_v11)} {
		h.SetStreamHandler(protocol.ID(p), func(s network.Stream) { io.Copy(io.Discard, s); s.Close() })
	}
	return h
}

// TestShortLivedPeersForgotten: 500 identities that connect and leave do
// not stay in the node's peer list (ScoreInspect, which feeds /v1/peers and
// the dashboard): it keeps the connected peers and at most 64 that left.
func TestShortLivedPeersForgotten(t *testing.T) {
	n := newNet(t, netOptions{nodes: 1})
	victim := n.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const total, wave = 500, 50
	seen := map[peer.ID]bool{}
	for w := 0; w < total/wave; w++ {
		hosts := make([]host.Host, wave)
		var wg sync.WaitGroup
		for i := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hosts[i] = drifter(t)
				if err := hosts[i].Connect(ctx, victim.addrInfo(false)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		waitFor(t, 20*time.Second, "the node's pubsub to track the wave", func() bool {
			s := victim.scores.Load()
			if s == nil {
				return false
			}
			for _, h := range hosts {
				if _, ok := (*s)[h.ID()]; !ok {
					return false
				}
			}
			return true
		})
		for _, h := range hosts {
			seen[h.ID()] = true
			h.Close()
		}
	}
	waitFor(t, 10*time.Second, "the peer list to shrink to 64", func() bool {
		s := victim.scores.Load()
		return s != nil && len(*s) <= 64 && len(victim.host.Network().Peers()) == 0
	})
	s := *victim.scores.Load()
	for p := range s {
		if !seen[p] {
			t.Errorf("unexpected peer %s listed", p)
		}
	}
}
