package gossip_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// hostile is a libp2p peer that speaks gossipsub without Vigil's
// validators, so it can send anything.
//
// It flood-publishes, as Vigil's nodes do: each message goes to every peer
// subscribed to the topic, the peers watch waits for. Gossipsub's default
// sends a peer's own message to its mesh of the topic only, and a new
// peer's mesh is empty until its first heartbeat or a neighbour's GRAFT,
// tens of milliseconds after the subscriptions are exchanged; a message
// published in between reaches nobody, and nothing reports it.
type hostile struct {
	host   host.Host
	ps     *pubsub.PubSub
	cp, ev *pubsub.Topic
}

func newHostile(t testing.TB, network string) *hostile {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, _, err := gossip.NewHost(gossip.HostConfig{Identity: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithMaxMessageSize(1<<20), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	x := &hostile{host: h, ps: ps}
	if x.cp, err = ps.Join(gossip.CheckpointsTopic(network)); err != nil {
		t.Fatal(err)
	}
	if x.ev, err = ps.Join(gossip.EvidenceTopic(network)); err != nil {
		t.Fatal(err)
	}
	return x
}

// watch subscribes x to the checkpoints topic, connects it to nd and waits
// until each is in the other's topic peers.
func (x *hostile) watch(t testing.TB, ctx context.Context, nd *tnode) *pubsub.Subscription {
	t.Helper()
	sub, err := x.cp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	if err := x.host.Connect(ctx, nd.addrInfo(false)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the hostile peer in the node's topic", func() bool {
		cp, _ := nd.svc.TopicPeers()
		return slices.Contains(cp, x.host.ID()) && slices.Contains(x.cp.ListPeers(), nd.host.ID())
	})
	return sub
}

// counter returns the sum of a gossip counter's (or gauge's) series whose
// labels include all of want; of a histogram, the number of observations.
func counter(t testing.TB, s *gossip.Service, name string, want map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func (n *tnet) invalidMessages(t testing.TB) map[string][]byte {
	t.Helper()
	stranger, _ := scriptlog.New("example.com/not-in-roster")
	stranger.AppendN(3, "x")
	unknown, _ := stranger.Checkpoint()
	// A checkpoint of the roster's log at a size the log never signed,
	// with the log's key name and ID but a forged signature.
	other, _ := scriptlog.New(n.log.Origin())
	other.AppendN(999, "forged")
	forgedBody, _ := other.Checkpoint()
	real, _ := n.log.Checkpoint()
	realSig := real[bytes.LastIndex(real, []byte("\n\n"))+2:]
	forged := append(append([]byte(nil), forgedBody[:bytes.LastIndex(forgedBody, []byte("\n\n"))+2]...), realSig...)
	sighting := func(note []byte) []byte {
		b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: note, Observer: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sameTwice, _ := vpb.MarshalEvidence(&vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: real, CheckpointB: real})
	return map[string][]byte{
		"garbage":        []byte("\xff\xfe not a protobuf"),
		"unknown origin": sighting(unknown),
		"forged log sig": sighting(forged),
		"unsigned":       sighting(forgedBody[:bytes.LastIndex(forgedBody, []byte("\n\n"))+2]),
		"bogus evidence": sameTwice,
	}
}

func TestHostilePeer(t *testing.T) {
	n := newNet(t, netOptions{nodes: 4})
	n.connectRing()
	n.log.AppendN(5, "common")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	victim := n.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs := n.invalidMessages(t)
	// Larger than a sighting may be, small enough for pubsub to deliver it
	// to the validator.
	msgs["oversized"] = bytes.Repeat([]byte{0x0a}, vpb.MaxSightingSize+10)
	for _, tc := range []struct{ name, topic, reason string }{
		{"garbage", "checkpoints", "malformed"},
		{"unknown origin", "checkpoints", "unknown_origin"},
		{"forged log sig", "checkpoints", "bad_signature"},
		{"unsigned", "checkpoints", "bad_signature"},
		{"oversized", "checkpoints", "oversized"},
		{"bogus evidence", "evidence", "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One hostile peer per kind of bad message, so each one's
			// effect on the score is seen before it is graylisted.
			x := newHostile(t, "test")
			if err := x.host.Connect(ctx, victim.addrInfo(false)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "hostile to see the victim on both topics", func() bool {
				return len(x.cp.ListPeers()) > 0 && len(x.ev.ListPeers()) > 0
			})
			before := counter(t, victim.svc, "vigil_gossip_validated_total", map[string]string{"topic": tc.topic, "result": "reject", "reason": tc.reason})
			topic := x.cp
			if tc.topic == "evidence" {
				topic = x.ev
			}
			for i := 0; i < 4; i++ {
				m := msgs[tc.name]
				if tc.name != "garbage" && tc.name != "oversized" {
					// Distinct messages (pubsub drops repeats as seen):
					// vary an informational field.
					m = vary(t, tc.topic, m, i)
				} else {
					m = append(append([]byte(nil), m...), byte(i))
				}
				if err := topic.Publish(ctx, m); err != nil {
					t.Fatalf("hostile publish: %v", err)
				}
			}
			waitFor(t, 20*time.Second, "the hostile peer's score to drop below the graylist threshold", func() bool {
				s := victim.scores.Load()
				return s != nil && (*s)[x.host.ID()] < -80
			})
			after := counter(t, victim.svc, "vigil_gossip_validated_total", map[string]string{"topic": tc.topic, "result": "reject", "reason": tc.reason})
			if after == before {
				t.Errorf("victim rejected no %s message", tc.reason)
			}
		})
	}
	// Nothing reached storage or other peers.
	for _, nd := range n.nodes {
		if _, err := nd.db.NewestCheckpoint(ctx, "example.com/not-in-roster", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s stored a checkpoint of an unknown log: %v", nd.name, err)
		}
		if recs, _ := nd.db.CheckpointsAtSize(ctx, n.log.Origin(), 999); len(recs) != 0 {
			t.Errorf("%s stored a forged checkpoint", nd.name)
		}
		if c := evidenceCount(t, nd); c != 0 {
			t.Errorf("%s stored %d evidence", nd.name, c)
		}
		if nd == victim {
			continue
		}
		if c := counter(t, nd.svc, "vigil_gossip_validated_total", map[string]string{"result": "reject"}); c != 0 {
			t.Errorf("%s received %v invalid messages: the victim forwarded them", nd.name, c)
		}
	}
	// The network still works: an honest split view is still detected.
	fork, _ := n.log.Fork(5)
	n.log.AppendN(2, "a")
	fork.AppendN(2, "b")
	n.equivocate(n.log, fork)
	n.waitEvidence(n.nodes, "log-equivocation-same-size", detectDeadline)
}

// vary returns a distinct encoding of the same bad content.
func vary(t testing.TB, topic string, m []byte, i int) []byte {
	t.Helper()
	if topic == "evidence" {
		e, err := vpb.UnmarshalEvidence(m)
		if err != nil {
			t.Fatal(err)
		}
		e.DetectedUnixMs = int64(i + 1)
		b, _ := vpb.MarshalEvidence(e)
		return b
	}
	s, err := vpb.UnmarshalSighting(m)
	if err != nil {
		t.Fatal(err)
	}
	// Sightings are identified by their note, so vary the note: add a
	// signature line from an unknown key (which verifiers ignore).
	sig := make([]byte, 68)
	sig[0] = byte(i)
	s.Checkpoint = fmt.Appendf(append([]byte(nil), s.Checkpoint...), "— mallory.example/%d %s\n", i, base64.StdEncoding.EncodeToString(sig))
	b, err := vpb.MarshalSighting(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// histogramCount returns the sample count of a gossip histogram.
func histogramCount(t testing.TB, s *gossip.Service, name string) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}
