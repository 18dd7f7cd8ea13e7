package gossip

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// maxLater bounds the functions waiting in a later; at returns false
// beyond it.
const maxLater = 1 << 16

// later runs functions at chosen times on one goroutine (run). Aggregation
// schedules one or two per cosigned checkpoint, thousands a second under
// load; one goroutine and a heap cost less than a timer goroutine each and
// stop with the service.
type later struct {
	mu   sync.Mutex
	q    laterHeap
	seq  uint64
	wake chan struct{}
}

func newLater() *later { return &later{wake: make(chan struct{}, 1)} }

// at schedules fn to run at t. It reports false, scheduling nothing, if
// maxLater functions are already waiting.
func (l *later) at(t time.Time, fn func()) bool {
	l.mu.Lock()
	if len(l.q) >= maxLater {
		l.mu.Unlock()
		return false
	}
	l.seq++
	heap.Push(&l.q, laterItem{t: t, seq: l.seq, fn: fn})
	first := l.q[0].seq == l.seq
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// len returns how many functions are waiting.
func (l *later) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q)
}

// run runs due functions, in time order (ties in the order scheduled),
// until ctx ends; what is still waiting then is dropped.
func (l *later) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		l.mu.Lock()
		var due []func()
		now := time.Now()
		for len(l.q) > 0 && !l.q[0].t.After(now) {
			due = append(due, heap.Pop(&l.q).(laterItem).fn)
		}
		wait := time.Hour
		if len(l.q) > 0 {
			wait = l.q[0].t.Sub(now)
		}
		l.mu.Unlock()
		for _, fn := range due {
			if ctx.Err() != nil {
				return
			}
			fn()
		}
		if len(due) > 0 {
			continue // time passed while they ran
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-t.C:
		}
	}
}

type laterItem struct {
	t   time.Time
	seq uint64
	fn  func()
}

type laterHeap []laterItem

func (h laterHeap) Len() int { return len(h) }
func (h laterHeap) Less(i, j int) bool {
	if h[i].t.Equal(h[j].t) {
		return h[i].seq < h[j].seq
	}
	return h[i].t.Before(h[j].t)
}
func (h laterHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *laterHeap) Push(x any)   { *h = append(*h, x.(laterItem)) }
func (h *laterHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = laterItem{}
	*h = old[:len(old)-1]
	return it
}
