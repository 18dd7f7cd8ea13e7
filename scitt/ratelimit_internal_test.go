package scitt

import (
	"testing"
	"time"
)

// TestBucket checks the rejection budget: admissions alone spend nothing
// (many accepted registrations in flight from one address never wait); a
// burst of rejections, then the rate; rejections that finish together run
// into debt, which later admissions wait out in full.
func TestBucket(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := newBucket(20, 41)
	for i := range 10_000 {
		if w := b.wait(t0); w != 0 {
			t.Fatalf("admission %d waits %v with nothing rejected", i, w)
		}
	}
	for i := range 41 {
		if w := b.wait(t0); w != 0 {
			t.Fatalf("rejection %d of the burst waits %v", i, w)
		}
		b.charge(t0)
	}
	if w := b.wait(t0); w != 50*time.Millisecond {
		t.Fatalf("after the burst: wait %v, want 50ms", w)
	}
	admitted := 0
	for now := t0; now.Before(t0.Add(time.Second)); now = now.Add(time.Millisecond) {
		if b.wait(now) == 0 {
			admitted++
			b.charge(now)
		}
	}
	if admitted < 19 || admitted > 20 {
		t.Fatalf("%d rejections admitted in a second at 20/s", admitted)
	}
	t1 := t0.Add(time.Hour)
	if w := b.wait(t1); w != 0 || b.tokens != b.burst {
		t.Fatalf("after an hour: wait %v, tokens %v", w, b.tokens)
	}
	for range 100 {
		b.charge(t1)
	}
	if b.tokens != b.burst-100 {
		t.Fatalf("tokens %v after 100 rejections from a full bucket, want %v", b.tokens, b.burst-100)
	}
	// The whole debt is repaid before the next admission.
	if w, want := b.wait(t1), time.Duration((1-(b.burst-100))/b.rate*float64(time.Second)); w != want {
		t.Fatalf("in debt: wait %v, want %v", w, want)
	}
}
