package gossip_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vigilnet/vigil/gossip"
)

const (
	syncProtocol  = protocol.ID("/vigil/1/test/sync/1.0.0")
	proofProtocol = protocol.ID("/vigil/1/test/proof/1.0.0")
)

// junkStreams opens up to max streams of proto from x to nd, writing frames
// of junk on each, until the victim refuses x. It returns how many streams
// x opened.
func (x *hostile) junkStreams(ctx context.Context, nd *tnode, proto protocol.ID, junk []byte, frames, max int) int {
	opened := 0
	for ; opened < max; opened++ {
		st, err := x.host.NewStream(ctx, nd.host.ID(), proto)
		if err != nil {
			break
		}
		for range frames {
			if _, err := st.Write(junk); err != nil {
				break
			}
		}
		st.CloseWrite()
		io.Copy(io.Discard, st)
		st.Close()
	}
	return opened
}

// TestHostileStreamsBanned: a peer sending junk on Vigil's stream protocols
// is charged at its first malformed frame, its score goes below the
// graylist threshold, and it ends up disconnected and refused both ways.
func TestHostileStreamsBanned(t *testing.T) {
	n := newNet(t, netOptions{nodes: 1})
	victim := n.nodes[0]
	n.log.AppendN(5, "common")
	n.push(victim, n.log)
	// A sync frame as the tester sent them: a valid frame of 70 KiB junk.
	junk70 := bytes.Repeat([]byte{0xff}, 70<<10)
	junkSighting := binary.AppendUvarint([]byte{1}, 30<<10)
	junkSighting = append(junkSighting, bytes.Repeat([]byte{0xff}, 30<<10)...)
	for _, tc := range []struct {
		name, kind string
		proto      protocol.ID
		frame      []byte
	}{
		{"70 KiB junk frames", "sync", syncProtocol, append(binary.AppendUvarint([]byte{1}, uint64(len(junk70))), junk70...)},
		{"junk sightings", "sync", syncProtocol, junkSighting},
		{"frame over the bound", "sync", syncProtocol, binary.AppendUvarint([]byte{1}, 1<<20)},
		{"unknown frame type", "sync", syncProtocol, append([]byte{9, 3}, "abc"...)},
		{"bad proof request", "proof", proofProtocol, []byte{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			x := newHostile(t, "test")
			x.watch(t, ctx, victim)
			before := counter(t, victim.svc, "vigil_gossip_validated_total", map[string]string{"topic": "sync", "result": "reject"})
			proto := tc.kind
			penBefore := counter(t, victim.svc, "vigil_gossip_penalties_total", map[string]string{"protocol": proto})
			gatedBefore := counter(t, victim.svc, "vigil_gossip_peers_gated_total", nil)
			opened := x.junkStreams(ctx, victim, tc.proto, tc.frame, 8, 64)
			waitFor(t, 10*time.Second, "the victim to disconnect the hostile peer", func() bool {
				return victim.host.Network().Connectedness(x.host.ID()) != network.Connected
			})
			t.Logf("the hostile peer opened %d streams before it was refused", opened)
			if opened >= 64 {
				t.Errorf("the hostile peer opened all %d streams: never banned", opened)
			}
			if pen := counter(t, victim.svc, "vigil_gossip_penalties_total", map[string]string{"protocol": proto}) - penBefore; pen < 4 {
				t.Errorf("%v penalties on %s, want at least 4", pen, proto)
			}
			if g := counter(t, victim.svc, "vigil_gossip_peers_gated_total", nil) - gatedBefore; g != 1 {
				t.Errorf("%v peers gated, want 1", g)
			}
			// Read no further than the first bad frame of each stream.
			if rej := counter(t, victim.svc, "vigil_gossip_validated_total", map[string]string{"topic": "sync", "result": "reject"}) - before; rej > float64(opened) {
				t.Errorf("%v sync frames rejected on %d streams: read past the first", rej, opened)
			}
			waitFor(t, 5*time.Second, "the hostile peer's score below the graylist threshold", func() bool {
				s := victim.scores.Load()
				return s != nil && (*s)[x.host.ID()] < -80
			})
			// Gated: refused on accept and on dial.
			if err := x.host.Connect(ctx, victim.addrInfo(false)); err == nil {
				// The dialler's handshake may complete before the
				// victim's gater closes the connection.
				waitFor(t, 5*time.Second, "the victim to refuse the banned peer", func() bool {
					return victim.host.Network().Connectedness(x.host.ID()) != network.Connected
				})
			}
			if _, err := x.host.NewStream(ctx, victim.host.ID(), tc.proto); err == nil {
				t.Error("the banned peer opened a stream")
			}
			victim.host.Peerstore().AddAddrs(x.host.ID(), x.host.Addrs(), time.Minute)
			if err := victim.host.Connect(ctx, x.host.Peerstore().PeerInfo(x.host.ID())); err == nil {
				t.Error("the victim dialled the banned peer")
			}
		})
	}
	if got := counter(t, victim.svc, "vigil_gossip_peers_banned", nil); got != 5 {
		t.Errorf("vigil_gossip_peers_banned = %v, want 5", got)
	}
}

// TestBanExpires: a ban lasts BanDuration, then the peer may connect again.
func TestBanExpires(t *testing.T) {
	sk, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	key, _ := peer.IDFromPrivateKey(sk)
	g := gossip.NewGater(nil)
	g.BlockUntil(key, time.Now().Add(50*time.Millisecond))
	if g.Allowed(key) {
		t.Fatal("a banned peer is allowed")
	}
	waitFor(t, 2*time.Second, "the ban to expire", func() bool { return g.Allowed(key) })
	g.Block(key)
	g.BlockUntil(key, time.Now().Add(-time.Second))
	if g.Allowed(key) {
		t.Fatal("an expired ban lifted an operator's block")
	}
}

// TestOversizedPubsubMessagesPenalised: pubsub drops an RPC above its
// message size limit before any validator sees it (and resets the stream
// it came on); the sender is charged anyway, through the application part
// of its score, and banned after four.
func TestOversizedPubsubMessagesPenalised(t *testing.T) {
	n := newNet(t, netOptions{nodes: 1})
	victim := n.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := newHostile(t, "test")
	x.watch(t, ctx, victim)
	// The test's streams must be the hostile's only pubsub streams to the
	// victim. The victim reads one inbound pubsub stream per peer, and a
	// newer one resets the older: the test's first stream resets the
	// hostile pubsub's own, which reopens it at once, and that new stream
	// then resets the test's, sometimes before the victim has read the
	// oversized length. The hostile's pubsub, blacklisting the victim,
	// stops writing to it and reopens nothing (BlacklistPeer returns once
	// its event loop has taken the peer, before it handles the reset).
	x.ps.BlacklistPeer(victim.host.ID())
	charged := func() float64 {
		return counter(t, victim.svc, "vigil_gossip_penalties_total", map[string]string{"protocol": "pubsub", "reason": "oversized"})
	}
	// Each RPC on a stream of its own, as pubsub's length-prefixed frames:
	// a 3 MiB length, then the start of the message.
	rpc := append(binary.AppendUvarint(nil, 3<<20), bytes.Repeat([]byte{0x0a}, 64<<10)...)
	for i := 1; i <= 4; i++ {
		st, err := x.host.NewStream(ctx, victim.host.ID(), pubsub.GossipSubID_v11)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		st.Write(rpc)
		waitFor(t, 10*time.Second, "the oversized RPC to be charged", func() bool { return charged() >= float64(i) })
		if i == 1 {
			waitFor(t, 5*time.Second, "the charge in the sender's score", func() bool {
				s := victim.scores.Load()
				return s != nil && (*s)[x.host.ID()] <= -20
			})
		}
		st.Reset()
	}
	waitFor(t, 10*time.Second, "the victim to disconnect the sender", func() bool {
		return victim.host.Network().Connectedness(x.host.ID()) != network.Connected
	})
	if g := counter(t, victim.svc, "vigil_gossip_peers_gated_total", nil); g != 1 {
		t.Errorf("%v peers gated, want 1", g)
	}
}
