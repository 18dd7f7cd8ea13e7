package gossip

import (
	"context"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// Nothing is dropped silently between pubsub and the detector.
//
// Pubsub hands accepted messages to a subscription through a buffered
// channel and drops what does not fit ("subscriber too slow"), and it drops
// messages before validation when its validation queue is full or
// throttled. A node whose disk is slow takes longer for each store write,
// so its detector falls behind a burst; a dropped sighting never reaches
// it, and since the validator already counted it as known, later copies
// are ignored as duplicates. So the subscription loop does no work: it
// moves each sighting into intake, a queue of defaultIntakeSize that the
// detector's workers drain; a slow disk delays detection by the queue's
// length instead of losing sightings. Every drop that remains possible is
// counted in vigil_gossip_dropped_total{reason}.

// defaultIntakeSize bounds the accepted sightings waiting for the detector
// (Config.IntakeQueue). At most a few KiB each, validated and rate-limited
// per peer.
const defaultIntakeSize = 1 << 16

// dropTracer counts messages pubsub drops on this node's side.
type dropTracer struct {
	noTrace
	// kind names a topic (checkpoints, evidence).
	kind    func(topic string) string
	dropped func(kind, reason string)
}

// UndeliverableMessage: the subscription's buffer was full.
func (d dropTracer) UndeliverableMessage(m *pubsub.Message) {
	d.dropped(d.kind(m.GetTopic()), "subscriber_too_slow")
}

// RejectMessage: of pubsub's reasons, only a full or throttled validation
// queue drops a message that was never judged; the others are verdicts.
func (d dropTracer) RejectMessage(m *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull:
		d.dropped(d.kind(m.GetTopic()), "validation_queue_full")
	case pubsub.RejectValidationThrottled:
		d.dropped(d.kind(m.GetTopic()), "validation_throttled")
	}
}

var _ pubsub.RawTracer = dropTracer{}

// intake is a FIFO of accepted sightings between the subscription and the
// detector. put never blocks; take waits for a sighting or ctx.
type intake struct {
	max   int
	ready chan struct{} // a token while the queue may be non-empty

	mu   sync.Mutex
	q    []*sighting
	head int
}

func newIntake(max int) *intake {
	return &intake{max: max, ready: make(chan struct{}, 1)}
}

// put queues sg; it reports false (sg dropped) if the queue is full.
func (in *intake) put(sg *sighting) bool {
	in.mu.Lock()
	if len(in.q)-in.head >= in.max {
		in.mu.Unlock()
		return false
	}
	if in.head >= 1024 && 2*in.head >= len(in.q) {
		// Reuse the taken half of the array instead of growing it.
		n := copy(in.q, in.q[in.head:])
		clear(in.q[n:])
		in.q, in.head = in.q[:n], 0
	}
	in.q = append(in.q, sg)
	in.mu.Unlock()
	in.signal()
	return true
}

func (in *intake) signal() {
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// take returns the oldest queued sighting, waiting for one; false once ctx
// ends.
func (in *intake) take(ctx context.Context) (*sighting, bool) {
	for {
		in.mu.Lock()
		if in.head < len(in.q) {
			sg := in.q[in.head]
			in.q[in.head] = nil
			in.head++
			more := in.head < len(in.q)
			if !more {
				in.q, in.head = in.q[:0], 0
			}
			in.mu.Unlock()
			if more {
				in.signal() // wake another worker
			}
			return sg, true
		}
		in.mu.Unlock()
		select {
		case <-in.ready:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// len returns the number of queued sightings.
func (in *intake) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.q) - in.head
}
