package gossip

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/prometheus/client_golang/prometheus"
)

// What a gossip message waits for at a node.
//
// On a node short of CPU, a message spends more time waiting than being
// worked on: in pubsub's event loop and validation queue before this
// node's validator starts on it, and in the subscription before the
// detector does. 50 nodes on 2 cores, detecting a split view, showed
// single waits of 200 ms in each, far above what the work itself took
// (docs/notes/benchmarks-history.md). Both waits are measured, so that an operator (or
// a benchmark) can tell a starved node from a slow network:
// vigil_gossip_validation_wait_seconds and vigil_gossip_delivery_wait_seconds.

// maxWaitStamps bounds the arrival times kept for messages not yet
// validated; copies pubsub drops as duplicates leave theirs behind.
const maxWaitStamps = 4096

// waitKey identifies a pubsub message as received: its author and
// sequence number (every message is signed, so both are set).
type waitKey struct{ from, seqno string }

// arrivals records when pubsub's event loop took each message in, from its
// raw trace events (RecvRPC), for the validator to measure its wait. pubsub
// calls it from its event loop, so it only updates a bounded map.
type arrivals struct {
	noTrace
	at *lru[waitKey, time.Time]
}

func newArrivals() *arrivals { return &arrivals{at: newLRU[waitKey, time.Time](maxWaitStamps)} }

func (a *arrivals) RecvRPC(rpc *pubsub.RPC) {
	now := time.Now()
	for _, m := range rpc.GetPublish() {
		// The first copy's time counts: later ones are duplicates.
		a.at.update(waitKey{string(m.GetFrom()), string(m.GetSeqno())}, func(old time.Time, ok bool) time.Time {
			if ok {
				return old
			}
			return now
		})
	}
}

// observe records in h how long m waited since it arrived, if it did
// arrive from a peer (a node's own publications do not).
func (a *arrivals) observe(m *pubsub.Message, h prometheus.Observer) {
	k := waitKey{string(m.GetFrom()), string(m.GetSeqno())}
	if t, ok := a.at.take(k); ok {
		h.Observe(time.Since(t).Seconds())
	}
}

var _ pubsub.RawTracer = (*arrivals)(nil)
