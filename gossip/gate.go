package gossip

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// evidenceFirstWait bounds how long routine gossip work waits for evidence
// in flight (see evidenceGate).
const evidenceFirstWait = 50 * time.Millisecond

// evidenceGate lets evidence in flight at a node go ahead of the node's
// routine gossip work. A split view makes every witness gossip its side at
// once, and a node's share of a busy machine then goes to validating and
// merging that burst of sightings; evidence arriving in the middle of it
// waited behind them in Go's run queue, at every hop (50 nodes on 2 cores:
// each node's work ran at about 1/25 of a core). While evidence is being
// checked (checkEvidence) or stored (storeEvidence) here, the sighting
// validator and the detector wait before starting on more, for at most
// evidenceFirstWait each, so a stream of evidence (even forged evidence,
// which holds the gate only while it is checked) slows them down but never
// stops them.
type evidenceGate struct {
	n       atomic.Int32 // evidence in flight
	mu      sync.Mutex
	clear   chan struct{} // closed when n falls to 0
	maxWait time.Duration
	waits   func()
}

func newEvidenceGate(maxWait time.Duration, waits func()) *evidenceGate {
	g := &evidenceGate{clear: make(chan struct{}), maxWait: maxWait, waits: waits}
	close(g.clear)
	return g
}

// enter marks one piece of evidence in flight; exit must follow.
func (g *evidenceGate) enter() {
	g.mu.Lock()
	if g.n.Add(1) == 1 {
		g.clear = make(chan struct{})
	}
	g.mu.Unlock()
}

func (g *evidenceGate) exit() {
	g.mu.Lock()
	if g.n.Add(-1) == 0 {
		close(g.clear)
	}
	g.mu.Unlock()
}

// wait returns once no evidence is in flight, after maxWait, or when ctx
// ends. Code that holds the gate must not call it.
func (g *evidenceGate) wait(ctx context.Context) {
	if g.n.Load() == 0 {
		return
	}
	g.mu.Lock()
	ch := g.clear
	g.mu.Unlock()
	if g.waits != nil {
		g.waits()
	}
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}
