package scitt

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"
)

// publications tells waiters when a published checkpoint covers their
// entry. Unlike tessera.PublicationAwaiter, which wakes every waiter on
// every poll, it wakes a waiter once, when the published size passes its
// index: at thousands of registrations in flight that is most of the CPU
// otherwise spent waiting.
type publications struct {
	read   func(context.Context) ([]byte, error)
	origin string

	mu      sync.Mutex
	size    uint64
	cp      []byte
	err     error // last read error, cleared by a successful read
	waiters []pubWaiter
}

type pubWaiter struct {
	index uint64
	ch    chan []byte // buffered(1): receives the covering checkpoint
}

func newPublications(read func(context.Context) ([]byte, error), origin string) *publications {
	return &publications{read: read, origin: origin}
}

// run polls the checkpoint every period until ctx ends.
func (p *publications) run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		p.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *publications) poll(ctx context.Context) {
	cp, err := p.read(ctx)
	var size uint64
	if err == nil {
		size, _, err = parseCheckpoint(cp, p.origin)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return // nothing published yet
	}
	p.err = err
	if err != nil || size <= p.size {
		return
	}
	p.size, p.cp = size, cp
	keep := p.waiters[:0]
	for _, w := range p.waiters {
		if w.index < size {
			w.ch <- cp
		} else {
			keep = append(keep, w)
		}
	}
	clear(p.waiters[len(keep):])
	p.waiters = keep
}

// wait returns the first published checkpoint whose size exceeds index.
func (p *publications) wait(ctx context.Context, index uint64) ([]byte, error) {
	p.mu.Lock()
	if index < p.size {
		cp := p.cp
		p.mu.Unlock()
		return cp, nil
	}
	w := pubWaiter{index: index, ch: make(chan []byte, 1)}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	select {
	case cp := <-w.ch:
		return cp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// latest returns the latest published checkpoint seen, or nil.
func (p *publications) latest() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cp
}
