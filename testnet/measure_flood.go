package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// FloodPeer is a hostile libp2p peer that speaks gossipsub on a network's topics
// without Vigil's validators, so it can publish anything; Flood makes it
// publish forged sightings.
type FloodPeer struct {
	host   host.Host
	ps     *pubsub.PubSub
	cp     *pubsub.Topic
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   atomic.Int64
}

// NewFloodPeer starts a hostile peer on 127.0.0.1 for the named gossip network.
func NewFloodPeer(network string) (*FloodPeer, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, _, err := gossip.NewHost(gossip.HostConfig{Identity: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &FloodPeer{host: h, cancel: cancel}
	fail := func(err error) (*FloodPeer, error) {
		cancel()
		h.Close()
		return nil, err
	}
	if x.ps, err = pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithMaxMessageSize(1<<20)); err != nil {
		return fail(err)
	}
	if x.cp, err = x.ps.Join(gossip.CheckpointsTopic(network)); err != nil {
		return fail(err)
	}
	return x, nil
}

// Connect dials a network member (in-process mode) and waits until the
// member is this peer's neighbour on the checkpoints topic.
func (x *FloodPeer) Connect(ctx context.Context, m *Member) error {
	n := m.Node()
	if n == nil || n.Gossip() == nil {
		return fmt.Errorf("%s is not a running in-process member", m.Name)
	}
	pi := peer.AddrInfo{ID: n.Gossip().ID(), Addrs: n.Gossip().Host().Addrs()}
	if err := x.host.Connect(ctx, pi); err != nil {
		return err
	}
	return measureWait(ctx, 10*time.Second, func() bool { return len(x.cp.ListPeers()) > 0 })
}

// Flood publishes rate forged sightings per second of lg's origin (the log's
// checkpoint body with another key's signature under the log's key name and
// ID, each one distinct) until Stop.
func (x *FloodPeer) Flood(lg *scriptlog.Log, rate float64) error {
	real, err := lg.Checkpoint()
	if err != nil {
		return err
	}
	other, err := scriptlog.New(lg.Origin())
	if err != nil {
		return err
	}
	other.AppendN(999, "forged")
	body, err := other.Checkpoint()
	if err != nil {
		return err
	}
	cut := func(b []byte) int { return bytes.LastIndex(b, []byte("\n\n")) + 2 }
	forged := append(append([]byte(nil), body[:cut(body)]...), real[cut(real):]...)
	ctx, cancel := context.WithCancel(context.Background())
	prev := x.cancel
	x.cancel = func() { cancel(); prev() }
	every := time.Duration(float64(time.Second) / rate)
	x.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		sig := make([]byte, 68)
		for i := uint64(0); ctx.Err() == nil; i++ {
			// Sightings are identified by their note: an extra signature
			// line from an unknown key makes each one new.
			copy(sig, fmt.Appendf(nil, "%016x", i))
			note := fmt.Appendf(append([]byte(nil), forged...), "— mallory.example/%d %s\n", i, base64.StdEncoding.EncodeToString(sig))
			msg, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: note, Observer: "mallory"})
			if err == nil && x.cp.Publish(ctx, msg) == nil {
				x.sent.Add(1)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
	})
	return nil
}

// Sent is how many forged messages the peer has published.
func (x *FloodPeer) Sent() int64 { return x.sent.Load() }

// Close stops the flood and the peer.
func (x *FloodPeer) Close() error {
	x.cancel()
	x.wg.Wait()
	return x.host.Close()
}

// measureWait polls cond every 10 ms until it holds, ctx ends or d passes.
func measureWait(ctx context.Context, d time.Duration, cond func() bool) error {
	return measureWaitEvery(ctx, d, 10*time.Millisecond, cond)
}
