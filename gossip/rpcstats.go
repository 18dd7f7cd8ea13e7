package gossip

import (
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// rpcStats counts what pubsub sends and receives, by topic kind: the
// messages, the copies that were duplicates, and the control messages
// (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE). It shows what a network's
// gossip costs each node beyond the messages it validates.
type rpcStats struct {
	noTrace
	kind     func(topic string) string
	messages *prometheus.CounterVec
	control  *prometheus.CounterVec
}

func (r rpcStats) RecvRPC(rpc *pubsub.RPC) { r.count(rpc, "received") }

func (r rpcStats) SendRPC(rpc *pubsub.RPC, _ peer.ID) { r.count(rpc, "sent") }

func (r rpcStats) DuplicateMessage(m *pubsub.Message) {
	r.messages.WithLabelValues(r.kind(m.GetTopic()), "duplicate").Inc()
}

func (r rpcStats) count(rpc *pubsub.RPC, dir string) {
	for _, m := range rpc.GetPublish() {
		r.messages.WithLabelValues(r.kind(m.GetTopic()), dir).Inc()
	}
	c := rpc.GetControl()
	if c == nil {
		return
	}
	n := func(kind string, k int) {
		if k > 0 {
			r.control.WithLabelValues(kind, dir).Add(float64(k))
		}
	}
	ids := 0
	for _, ih := range c.GetIhave() {
		ids += len(ih.GetMessageIDs())
	}
	n("ihave_ids", ids)
	ids = 0
	for _, iw := range c.GetIwant() {
		ids += len(iw.GetMessageIDs())
	}
	n("iwant_ids", ids)
	ids = 0
	for _, id := range c.GetIdontwant() {
		ids += len(id.GetMessageIDs())
	}
	n("idontwant_ids", ids)
	n("graft", len(c.GetGraft()))
	n("prune", len(c.GetPrune()))
}

var _ pubsub.RawTracer = rpcStats{}
