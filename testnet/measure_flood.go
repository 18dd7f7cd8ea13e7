package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// FloodPeer is a hostile libp2p peer that speaks gossipsub's wire protocol
// on a network's checkpoints topic without a pubsub router of its own: it
// subscribes, then writes forged sightings, each a distinct, correctly
// signed gossipsub message, signed before the flood starts. So the flood
// costs the hostile peer little more than the writes, and what a measurement
// of detection under the flood sees on shared cores is what defending costs
// the nodes, not the attacker's own signing and routing (which, with a full
// gossipsub router, took more CPU than all the victims' validators).
type FloodPeer struct {
	host    host.Host
	key     crypto.PrivKey
	network string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sent    atomic.Int64

	mu      sync.Mutex
	streams []network.Stream // one to each member connected
	// heard is closed for a peer once it opened its own gossipsub stream
	// to this one, i.e. took it for a pubsub peer.
	heard map[peer.ID]chan struct{}
	// closed stops new stream handlers from joining wg once Close waits.
	closed bool
}

// floodFrames is how many distinct messages a flood signs in advance and
// cycles through. After a few rejections the victim graylists the peer and
// drops its RPCs unread; a copy of a message it saw is a duplicate, dropped
// before validation. Either way every frame is read and decoded.
const floodFrames = 2048

// gossipsubProtocols are the gossipsub versions the hostile peer offers.
var gossipsubProtocols = []protocol.ID{"/meshsub/1.2.0", "/meshsub/1.1.0"}

// NewFloodPeer starts a hostile peer on 127.0.0.1 for the named gossip network.
func NewFloodPeer(netName string) (*FloodPeer, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, _, err := gossip.NewHost(gossip.HostConfig{Identity: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &FloodPeer{host: h, key: key, network: netName, cancel: cancel, heard: map[peer.ID]chan struct{}{}}
	// The victims open streams to send their own traffic: read and drop it.
	for _, id := range gossipsubProtocols {
		h.SetStreamHandler(id, func(st network.Stream) {
			x.mu.Lock()
			if x.closed {
				x.mu.Unlock()
				st.Reset()
				return
			}
			if ch, ok := x.heard[st.Conn().RemotePeer()]; ok {
				select {
				case <-ch:
				default:
					close(ch)
				}
			}
			x.wg.Add(1)
			x.mu.Unlock()
			go func() {
				defer x.wg.Done()
				go func() {
					<-ctx.Done()
					st.Reset()
				}()
				io.Copy(io.Discard, st)
				st.Reset()
			}()
		})
	}
	return x, nil
}

// Connect dials a network member, opens a gossipsub stream, subscribes to
// the checkpoints topic and waits until the member counts this peer among
// the topic's peers (in process) or has opened its own gossipsub stream to
// it (in process mode).
func (x *FloodPeer) Connect(ctx context.Context, m *Member) error {
	var pi peer.AddrInfo
	n := m.Node()
	switch {
	case n != nil && n.Gossip() != nil:
		pi = peer.AddrInfo{ID: n.Gossip().ID(), Addrs: n.Gossip().Host().Addrs()}
	case len(m.Gossip) > 0:
		ai, err := peer.AddrInfoFromString(m.Gossip[0])
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		pi = *ai
	default:
		return fmt.Errorf("%s is not running", m.Name)
	}
	heard := make(chan struct{})
	x.mu.Lock()
	x.heard[pi.ID] = heard
	x.mu.Unlock()
	if err := x.host.Connect(ctx, pi); err != nil {
		return err
	}
	st, err := x.host.NewStream(ctx, pi.ID, gossipsubProtocols...)
	if err != nil {
		return err
	}
	topic := gossip.CheckpointsTopic(x.network)
	sub, err := proto.Marshal(&pubsub_pb.RPC{Subscriptions: []*pubsub_pb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(topic)}}})
	if err != nil {
		return err
	}
	if _, err := st.Write(delimit(sub)); err != nil {
		st.Reset()
		return err
	}
	x.mu.Lock()
	x.streams = append(x.streams, st)
	x.mu.Unlock()
	if n == nil {
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-heard:
			return nil
		case <-t.C:
			return fmt.Errorf("%s did not take the flood peer for a gossipsub peer within 10s", m.Name)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return measureWait(ctx, 10*time.Second, func() bool {
		cp, _ := n.Gossip().TopicPeers()
		return slices.Contains(cp, x.host.ID())
	})
}

// delimit prefixes b with its uvarint length, as gossipsub frames RPCs.
func delimit(b []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// Flood writes rate forged sightings per second of lg's origin (the log's
// checkpoint body with another key's signature under the log's key name and
// ID, each one distinct) to every connected member until Close.
func (x *FloodPeer) Flood(lg *scriptlog.Log, rate float64) error {
	frames, err := x.forge(lg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	prev := x.cancel
	x.cancel = func() { cancel(); prev() }
	every := time.Duration(float64(time.Second) / rate)
	x.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			x.mu.Lock()
			streams := slices.Clone(x.streams)
			x.mu.Unlock()
			for _, st := range streams {
				if _, err := st.Write(frames[i%len(frames)]); err == nil {
					x.sent.Add(1)
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
	})
	return nil
}

// forge signs floodFrames distinct forged sightings as gossipsub RPCs.
func (x *FloodPeer) forge(lg *scriptlog.Log) ([][]byte, error) {
	real, err := lg.Checkpoint()
	if err != nil {
		return nil, err
	}
	other, err := scriptlog.New(lg.Origin())
	if err != nil {
		return nil, err
	}
	other.AppendN(999, "forged")
	body, err := other.Checkpoint()
	if err != nil {
		return nil, err
	}
	cut := func(b []byte) int { return bytes.LastIndex(b, []byte("\n\n")) + 2 }
	forged := append(append([]byte(nil), body[:cut(body)]...), real[cut(real):]...)
	topic := gossip.CheckpointsTopic(x.network)
	from := []byte(x.host.ID())
	frames := make([][]byte, floodFrames)
	sig := make([]byte, 68)
	for i := range frames {
		// Sightings are identified by their note: an extra signature
		// line from an unknown key makes each one new.
		copy(sig, fmt.Appendf(nil, "%016x", i))
		note := fmt.Appendf(append([]byte(nil), forged...), "— mallory.example/%d %s\n", i, base64.StdEncoding.EncodeToString(sig))
		data, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: note, Observer: "mallory"})
		if err != nil {
			return nil, err
		}
		m := &pubsub_pb.Message{From: from, Data: data, Seqno: binary.BigEndian.AppendUint64(nil, uint64(i)+1), Topic: proto.String(topic)}
		unsigned, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		// libp2p's message signature (StrictSign): the victims check it
		// before their validators see the message.
		if m.Signature, err = x.key.Sign(append([]byte(pubsub.SignPrefix), unsigned...)); err != nil {
			return nil, err
		}
		rpc, err := proto.Marshal(&pubsub_pb.RPC{Publish: []*pubsub_pb.Message{m}})
		if err != nil {
			return nil, err
		}
		frames[i] = delimit(rpc)
	}
	return frames, nil
}

// Sent is how many forged messages the peer has written.
func (x *FloodPeer) Sent() int64 { return x.sent.Load() }

// Close stops the flood and the peer.
func (x *FloodPeer) Close() error {
	x.cancel()
	x.mu.Lock()
	x.closed = true
	for _, st := range x.streams {
		st.Reset()
	}
	x.mu.Unlock()
	x.wg.Wait()
	return x.host.Close()
}

// measureWait polls cond every 10 ms until it holds, ctx ends or d passes.
func measureWait(ctx context.Context, d time.Duration, cond func() bool) error {
	return measureWaitEvery(ctx, d, 10*time.Millisecond, cond)
}
