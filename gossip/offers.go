package gossip

import (
	"bytes"
	"container/heap"
	"context"
	"strconv"
	"sync"
	"time"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// defaultCosignPublishRate is own cosignatures announced per second by
// default (Config.CosignPublishRate): with 1,000 busy logs, each log's
// newest goes out about every 2 s.
const defaultCosignPublishRate = 500

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
// the network. They go out within a budget (ownBudget: a rate and a burst),
// so that a witness under heavy load spends a bounded share of its CPU, and
// of its peers', on announcing what it cosigned, and each log's at most
// once per interval (the aggregation window). Among the logs waiting, the
// one whose last own sighting went out longest ago goes first (one never
// sent, or not within lastKeep, counts as oldest), once its interval has
// passed; meanwhile a newer own cosignature of a log replaces the one
// waiting, so the newest always goes out. Hence:
//
//   - a log quiet for longer than any waiting log has its first own
//     cosignature sent at the next token of the budget (at once unless the
//     budget is spent), so a split view that starts at a quiet log is
//     announced as fast as without load;
//   - under sustained load every log's own cosignature goes out, or is
//     replaced by a newer one that goes out, within interval + n/rate of
//     being offered (n logs waiting: about 2 s for 1,000 busy logs at the
//     default 500/s), each log in turn, none twice before the others.
//
// Every other sighting (pulled, pushed and refused, ...) is queued as is,
// never merged and never held back by the budget, since two of them may be
// the two sides of a split view.
type offers struct {
	mu sync.Mutex
	// latest holds the own cosignature waiting per origin; due orders the
	// origins in latest by when their log's last own sighting went out.
	latest map[string]*ownPending
	due    dueHeap
	seq    uint64
	// last is when each origin's own cosignature last went out; pruned is
	// when entries older than lastKeep were last deleted from it.
	last     map[string]time.Time
	pruned   time.Time
	interval time.Duration
	budget   ownBudget
	now      func() time.Time
	queue    []offer // everything else, FIFO
	wake     chan struct{}
	drops    func()
	metrics  *offerMetrics
}

// ownPending is a log's own cosignature waiting to go out.
type ownPending struct {
	offer
	// since is when the oldest own cosignature it replaced was offered;
	// quiet is whether its log had sent none within the interval then.
	since time.Time
	quiet bool
}

// dueItem is an origin with an own cosignature waiting to go out.
type dueItem struct {
	origin string
	// key orders the heap: when the log's last own sighting went out (zero
	// if none is remembered). It may go out once key+interval has passed.
	key time.Time
	seq uint64 // FIFO among equal keys
}

type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].key.Equal(h[j].key) {
		return h[i].key.Before(h[j].key)
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

// lastKeep is how long an origin's last own sighting is remembered once no
// interval can delay it any more: it orders the logs (the longest quiet
// first), and a log quiet that long is as quiet as any.
const lastKeep = time.Minute

// newOffers returns a queue publishing each log's own cosignature at most
// once per interval (0: no wait) and own cosignatures at most rate per
// second, with bursts of burst (rate ≤ 0: no budget).
func newOffers(interval time.Duration, rate float64, burst int, drops func()) *offers {
	q := &offers{
		latest:   map[string]*ownPending{},
		last:     map[string]time.Time{},
		interval: interval,
		budget:   newOwnBudget(rate, burst),
		now:      time.Now,
		wake:     make(chan struct{}, 1),
		drops:    drops,
	}
	q.metrics = newOfferMetrics(func() float64 { return float64(q.waiting()) })
	return q
}

// add queues o; it reports false if the queue is full and o was dropped.
func (q *offers) add(o offer) bool {
	q.mu.Lock()
	if o.source == vpb.Source_SOURCE_COSIGN {
		if origin, size, ok := originAndSize(o.note); ok {
			o.size = size
			q.addOwn(origin, o)
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

// addOwn queues an own cosignature of origin; q.mu is held.
func (q *offers) addOwn(origin string, o offer) {
	if p, pending := q.latest[origin]; pending {
		q.metrics.coalesced.Inc()
		if o.size >= p.size {
			p.offer = o
		}
		return
	}
	now := q.now()
	last, seen := q.last[origin]
	q.latest[origin] = &ownPending{offer: o, since: now, quiet: !seen || !now.Before(last.Add(q.interval))}
	q.seq++
	heap.Push(&q.due, dueItem{origin: origin, key: last, seq: q.seq})
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

// popLatest removes and returns the own cosignature whose turn it is, and
// spends a token of the budget on it. If none may go out yet, it returns
// how long until one may (0 if none waits).
func (q *offers) popLatest() (offer, bool, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.due) == 0 {
		return offer{}, false, 0
	}
	now := q.now()
	if k := q.due[0].key; !k.IsZero() {
		if wait := k.Add(q.interval).Sub(now); wait > 0 {
			return offer{}, false, wait
		}
	}
	if wait := q.budget.take(now); wait > 0 {
		return offer{}, false, wait
	}
	it := heap.Pop(&q.due).(dueItem)
	p := q.latest[it.origin]
	delete(q.latest, it.origin)
	q.metrics.sent(p.quiet, now.Sub(p.since))
	q.last[it.origin] = now
	// Forget, once in a while, what can no longer delay or order anything.
	if now.Sub(q.pruned) >= lastKeep {
		q.pruned = now
		for origin, t := range q.last {
			if now.Sub(t) >= max(q.interval, lastKeep) {
				delete(q.last, origin)
			}
		}
	}
	return p.offer, true, 0
}

// waiting reports how many logs have an own cosignature waiting.
func (q *offers) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.latest)
}

// run publishes offers until ctx ends: the plain queue first, then own
// cosignatures as popLatest lets them go.
func (q *offers) run(ctx context.Context, publish func(context.Context, offer)) {
	for ctx.Err() == nil {
		for _, o := range q.takeQueue() {
			publish(ctx, o)
		}
		o, ok, wait := q.popLatest()
		switch {
		case ok:
			publish(ctx, o)
		case wait == 0:
			select {
			case <-ctx.Done():
			case <-q.wake:
			}
		default:
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-q.wake:
			case <-t.C:
			}
			t.Stop()
		}
	}
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
