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
//
// The queue is bounded twice: by count, and by the heap its sightings hold.
// A sighting's size is that of its note, which its cosignatures set: about
// 1 KiB queued with Ed25519 cosignatures, 6-7 KiB with one ML-DSA-44
// cosignature (2,420 bytes, base64 in the note and again in the decoded
// signature), more with each further one. By count alone, a detector slower
// than the node's own witness (ML-DSA cosignatures at 1,000 logs under 64
// clients) held hundreds of MB in the queue.

// defaultIntakeSize bounds the number of accepted sightings waiting for the
// detector (Config.IntakeQueue).
const defaultIntakeSize = 1 << 16

// defaultIntakeBytes bounds the heap those sightings hold, as estimated by
// footprint (Config.IntakeBytes): about 16,000 Ed25519-cosigned sightings
// or 2,500 with an ML-DSA-44 cosignature.
const defaultIntakeBytes = 16 << 20

// Reasons in vigil_gossip_dropped_total for a sighting the intake refused.
const (
	dropIntakeFull  = "intake_full"  // the queue held its maximum count
	dropIntakeBytes = "intake_bytes" // the queue held its maximum bytes
)

// Estimated heap bytes around a queued sighting besides its strings: the
// sighting, its decoded message and checkpoint, the cosigner map (footprint).
const (
	sightingOverhead  = 512
	signatureOverhead = 48 // a note.Signature and its slice slot
	cosignerOverhead  = 48 // a map entry
)

// footprint estimates the heap a queued sighting holds: the signed note as
// received or signed (its capacity: the node's own notes come from a
// growing buffer, 4.9 KB held for a 3.6 KB note), each signature's base64 (a string of its own, decoded by
// note.Open), the origin, the observer, the cosigners' names and the
// structs around them. It over- rather than under-estimates.
func footprint(sg *sighting) int {
	n := sightingOverhead + len(sg.origin) + len(sg.cp.Extensions)
	if sg.msg != nil {
		n += cap(sg.msg.Checkpoint) + len(sg.msg.Observer)
	}
	for _, sig := range sg.sigs {
		n += signatureOverhead + len(sig.Name) + len(sig.Base64)
	}
	for w := range sg.cosigners {
		n += cosignerOverhead + len(w)
	}
	return n
}

// enqueue hands an accepted sighting to the detector's workers, counting
// it in vigil_gossip_dropped_total if the intake refuses it.
func (s *Service) enqueue(sg *sighting) {
	if reason := s.intake.put(sg); reason != "" {
		s.countDrop("checkpoints", reason)
	}
}

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
	max      int           // sightings
	maxBytes int           // their footprints
	ready    chan struct{} // a token while the queue may be non-empty

	mu    sync.Mutex
	q     []queued
	head  int
	bytes int // footprints of q[head:]
}

// queued is a sighting in the intake with the footprint it was counted at.
type queued struct {
	sg   *sighting
	size int
}

func newIntake(max, maxBytes int) *intake {
	return &intake{max: max, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// put queues sg. It returns "" if sg was queued, else the reason it was
// dropped: dropIntakeFull or dropIntakeBytes. An empty queue takes any one
// sighting, however large, so that no valid sighting is always refused.
func (in *intake) put(sg *sighting) string {
	size := footprint(sg)
	in.mu.Lock()
	n := len(in.q) - in.head
	switch {
	case n >= in.max:
		in.mu.Unlock()
		return dropIntakeFull
	case n > 0 && in.bytes+size > in.maxBytes:
		in.mu.Unlock()
		return dropIntakeBytes
	}
	if in.head >= 1024 && 2*in.head >= len(in.q) {
		// Reuse the taken half of the array instead of growing it.
		k := copy(in.q, in.q[in.head:])
		clear(in.q[k:])
		in.q, in.head = in.q[:k], 0
	}
	in.q = append(in.q, queued{sg, size})
	in.bytes += size
	in.mu.Unlock()
	in.signal()
	return ""
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
			e := in.q[in.head]
			in.q[in.head] = queued{}
			in.bytes -= e.size
			in.head++
			more := in.head < len(in.q)
			if !more {
				in.q, in.head = in.q[:0], 0
			}
			in.mu.Unlock()
			if more {
				in.signal() // wake another worker
			}
			return e.sg, true
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

// size returns the footprints of the queued sightings.
func (in *intake) size() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.bytes
}
