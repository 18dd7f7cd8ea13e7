package gossip

import (
	"context"
	"testing"
	"time"
)

func TestEvidenceGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waits := 0
	waiting := make(chan struct{}, 1)
	g := newEvidenceGate(time.Hour, func() { waits++; waiting <- struct{}{} })

	g.wait(ctx) // nothing in flight: returns at once
	if waits != 0 {
		t.Fatalf("waited %d times with no evidence in flight", waits)
	}

	// Held twice: released only when both are done.
	g.enter()
	g.enter()
	done := make(chan struct{})
	go func() {
		g.wait(ctx)
		close(done)
	}()
	<-waiting // the waiter is blocked on the held gate
	g.exit()
	select {
	case <-done:
		t.Fatal("wait returned while evidence was still in flight")
	default:
	}
	g.exit()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("wait did not return once the evidence in flight was done")
	}
	if ctx.Err() != nil {
		t.Fatal("wait returned because of the deadline, not the release")
	}
	if waits != 1 {
		t.Fatalf("%d waits counted, want 1", waits)
	}
	g.wait(ctx) // released: at once again

	// Bounded: a holder that never finishes delays a waiter by maxWait only.
	short := newEvidenceGate(time.Millisecond, nil)
	short.enter()
	short.wait(ctx)
	if ctx.Err() != nil {
		t.Fatal("a held gate was not bounded by maxWait")
	}

	// And a waiter gives up when its context ends.
	held := newEvidenceGate(time.Hour, nil)
	held.enter()
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	held.wait(cctx)
}
