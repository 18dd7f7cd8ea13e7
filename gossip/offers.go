package gossip

import (
	"bytes"
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
// the network. Under load the publisher thus sends at most one own
// cosignature per log per round instead of falling behind and dropping at
// random. Every other sighting (pulled, pushed and refused, ...) is queued
// as is, never merged, since two of them may be the two sides of a split
// view.
type offers struct {
	mu     sync.Mutex
	latest map[string]offer // own cosignatures, by origin
	order  []string         // origins in latest, oldest first
	queue  []offer          // everything else, FIFO
	wake   chan struct{}
	drops  func()
}

func newOffers(drops func()) *offers {
	return &offers{latest: map[string]offer{}, wake: make(chan struct{}, 1), drops: drops}
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
				q.order = append(q.order, origin)
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

// popLatest removes and returns the own cosignature of the log that has
// waited longest.
func (q *offers) popLatest() (offer, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return offer{}, false
	}
	origin := q.order[0]
	q.order = q.order[1:]
	o := q.latest[origin]
	delete(q.latest, origin)
	return o, true
}

func (q *offers) hasLatest() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order) > 0
}

// run publishes offers until ctx ends: the plain queue first, then own
// cosignatures within lim, so that a witness under heavy load spends a
// bounded share of its CPU on re-announcing what it cosigned, while what
// may reveal a split view is never held back.
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
		if d := lim.Reserve().Delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if o, ok := q.popLatest(); ok {
			publish(ctx, o)
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
