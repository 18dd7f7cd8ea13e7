package gossip

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntake: every sighting put is taken exactly once by some worker, in
// order per worker, and put refuses beyond the bound.
func TestIntake(t *testing.T) {
	const total = 20_000
	in := newIntake(total)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var taken atomic.Int64
	seen := make([]atomic.Bool, total)
	items := make([]sighting, total)
	index := map[*sighting]int{}
	for i := range items {
		index[&items[i]] = i
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				sg, ok := in.take(ctx)
				if !ok {
					return
				}
				if seen[index[sg]].Swap(true) {
					t.Errorf("sighting %d taken twice", index[sg])
				}
				taken.Add(1)
			}
		}()
	}
	for i := range items {
		if !in.put(&items[i]) {
			t.Fatalf("put %d refused", i)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for taken.Load() != total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d taken, %d queued", taken.Load(), total, in.len())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	small := newIntake(2)
	if !small.put(&items[0]) || !small.put(&items[1]) || small.put(&items[2]) {
		t.Error("a full intake took a third sighting")
	}
}
