package gossip

import (
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// rpcStats counts what pubsub sends and receives, by topic kind: the
// messages, the copies that were duplicates, and the control messages
// (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE). It shows what a network's
// gossip costs each node beyond the messages it validates. It runs in
// pubsub's event loop for every copy of every message, so the counters are
// looked up once, here.
type rpcStats struct {
	noTrace
	// byTopic holds the message counters of the network's topics; other
	// topics count under "other".
	byTopic map[string]*msgCounters
	other   *msgCounters
	control map[string][2]prometheus.Counter // kind → received, sent
}

type msgCounters struct{ received, duplicate, sent prometheus.Counter }

// rpcControlKinds are the kinds of vigil_gossip_rpc_control_total.
var rpcControlKinds = []string{"ihave_ids", "iwant_ids", "idontwant_ids", "graft", "prune"}

func newRPCStats(topics map[string]string, messages, control *prometheus.CounterVec) *rpcStats {
	counters := func(kind string) *msgCounters {
		return &msgCounters{messages.WithLabelValues(kind, "received"), messages.WithLabelValues(kind, "duplicate"), messages.WithLabelValues(kind, "sent")}
	}
	r := &rpcStats{byTopic: map[string]*msgCounters{}, other: counters("other"), control: map[string][2]prometheus.Counter{}}
	for topic, kind := range topics {
		r.byTopic[topic] = counters(kind)
	}
	for _, k := range rpcControlKinds {
		r.control[k] = [2]prometheus.Counter{control.WithLabelValues(k, "received"), control.WithLabelValues(k, "sent")}
	}
	return r
}

func (r *rpcStats) of(topic string) *msgCounters {
	if c, ok := r.byTopic[topic]; ok {
		return c
	}
	return r.other
}

func (r *rpcStats) RecvRPC(rpc *pubsub.RPC) { r.count(rpc, 0) }

func (r *rpcStats) SendRPC(rpc *pubsub.RPC, _ peer.ID) { r.count(rpc, 1) }

func (r *rpcStats) DuplicateMessage(m *pubsub.Message) { r.of(m.GetTopic()).duplicate.Inc() }

// count counts one RPC; dir is 0 for received, 1 for sent.
func (r *rpcStats) count(rpc *pubsub.RPC, dir int) {
	for _, m := range rpc.GetPublish() {
		c := r.of(m.GetTopic())
		if dir == 0 {
			c.received.Inc()
		} else {
			c.sent.Inc()
		}
	}
	c := rpc.GetControl()
	if c == nil {
		return
	}
	add := func(kind string, n int) {
		if n > 0 {
			r.control[kind][dir].Add(float64(n))
		}
	}
	ids := 0
	for _, ih := range c.GetIhave() {
		ids += len(ih.GetMessageIDs())
	}
	add("ihave_ids", ids)
	ids = 0
	for _, iw := range c.GetIwant() {
		ids += len(iw.GetMessageIDs())
	}
	add("iwant_ids", ids)
	ids = 0
	for _, id := range c.GetIdontwant() {
		ids += len(id.GetMessageIDs())
	}
	add("idontwant_ids", ids)
	add("graft", len(c.GetGraft()))
	add("prune", len(c.GetPrune()))
}

var _ pubsub.RawTracer = (*rpcStats)(nil)
