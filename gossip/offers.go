package gossip

import (
	"bytes"
	"container/heap"
	"context"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// offerQueue bounds sightings waiting to be published, besides the one
// latest own cosignature per log.
const offerQueue = 1024

type offer struct {
	note   []byte
	source vpb.Source
	size   uint64
}

// offers is the queue between hooks (witness, follower) and the publisher.
//
// Checkpoints this node's own witness cosigned are coalesced per log: the
// witness never cosigns two inconsistent checkpoints of one origin, so a
// newer one carries everything an older, still unpublished one would tell
// the network. A log's own cosignature is published at most once per
// window (the aggregation window): one that comes sooner waits, replaced by
// any newer one meanwhile, so a log that advances ten times a second costs
// a few sightings, and the newest always goes out. Under load the publisher
// thus sends at most one own cosignature per log per round instead of
// falling behind and dropping at random. Every other sighting (pulled,
// pushed and refused, ...) is queued as is, never merged, since two of them
// may be the two sides of a split view.
type offers struct {
	mu     sync.Mutex
	latest map[string]offer // own cosignatures, by origin
	due    dueHeap          // origins in latest, by when they may go out
	seq    uint64
	// last is when each origin's own cosignature was last published.
	last   map[string]time.Time
	window time.Duration
	now    func() time.Time
	queue  []offer // everything else, FIFO
	wake   chan struct{}
	drops  func()
}

// dueItem is an origin with an own cosignature waiting to go out.
type dueItem struct {
	origin string
	at     time.Time
	seq    uint64 // FIFO among equal times
}

type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// newOffers returns a queue publishing each log's own cosignature at most
// once per window (0: no wait).
func newOffers(window time.Duration, drops func()) *offers {
	return &offers{latest: map[string]offer{}, last: map[string]time.Time{}, window: window, now: time.Now, wake: make(chan struct{}, 1), drops: drops}
}

// add queues o; it reports false if the queue is full and o was dropped.
func (q *offers) add(o offer) bool {
	q.mu.Lock()
	if o.source == vpb.Source_SOURCE_COSIGN {
		if origin, size, ok := originAndSize(o.note); ok {
			o.size = size
			prev, pending := q.latest[origin]
			switch {
			case !pending:
				q.latest[origin] = o
				at := q.now()
				if last, ok := q.last[origin]; ok && last.Add(q.window).After(at) {
					at = last.Add(q.window)
				}
				q.seq++
				heap.Push(&q.due, dueItem{origin: origin, at: at, seq: q.seq})
			case size >= prev.size:
				q.latest[origin] = o
			}
			q.mu.Unlock()
			q.signal()
			return true
		}
	}
	if len(q.queue) >= offerQueue {
		q.mu.Unlock()
		q.drops()
		return false
	}
	q.queue = append(q.queue, o)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *offers) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// takeQueue returns the plain queue, oldest first, and empties it.
func (q *offers) takeQueue() []offer {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.queue
	q.queue = nil
	return out
}

// popLatest removes and returns the own cosignature that is due and has
// waited longest; if none is due yet, it returns how long until one is.
func (q *offers) popLatest() (offer, bool, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.due) == 0 {
		return offer{}, false, 0
	}
	now := q.now()
	if wait := q.due[0].at.Sub(now); wait > 0 {
		return offer{}, false, wait
	}
	it := heap.Pop(&q.due).(dueItem)
	o := q.latest[it.origin]
	delete(q.latest, it.origin)
	if q.window > 0 {
		q.last[it.origin] = now
		// Forget what can no longer delay anything.
		if len(q.last) > 2*len(q.latest)+64 {
			for origin, t := range q.last {
				if now.Sub(t) >= q.window {
					delete(q.last, origin)
				}
			}
		}
	}
	return o, true, 0
}

func (q *offers) hasLatest() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.due) > 0
}

// run publishes offers until ctx ends: the plain queue first, then own
// cosignatures as they fall due, within lim, so that a witness under heavy
// load spends a bounded share of its CPU on re-announcing what it cosigned,
// while what may reveal a split view is never held back.
func (q *offers) run(ctx context.Context, lim *rate.Limiter, publish func(context.Context, offer)) {
	for ctx.Err() == nil {
		for _, o := range q.takeQueue() {
			publish(ctx, o)
		}
		if !q.hasLatest() {
			select {
			case <-ctx.Done():
			case <-q.wake:
			}
			continue
		}
		if wait := q.untilDue(); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-q.wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if d := lim.Reserve().Delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		// Popped after the wait: the newest of the log goes out.
		if o, ok, _ := q.popLatest(); ok && ctx.Err() == nil {
			publish(ctx, o)
		}
	}
}

// untilDue is how long until an own cosignature is due (0 if one is or
// none waits).
func (q *offers) untilDue() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.due) == 0 {
		return 0
	}
	return max(0, q.due[0].at.Sub(q.now()))
}

// originAndSize reads a checkpoint's first two lines without verifying
// anything; PublishSighting verifies before anything leaves the node.
func originAndSize(note []byte) (string, uint64, bool) {
	origin, ok := tlog.OriginOf(note)
	if !ok {
		return "", 0, false
	}
	rest := note[len(origin)+1:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return "", 0, false
	}
	size, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	return origin, size, err == nil
}
