package scitt

import (
	"testing"
	"time"
)

// TestBucket checks the rejection budget: a burst, then the rate; a refund
// returns a token; it never holds more than the burst.
func TestBucket(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := newBucket(20, 41)
	for i := range 41 {
		if w := b.take(t0); w != 0 {
			t.Fatalf("take %d of the burst waits %v", i, w)
		}
	}
	if w := b.take(t0); w != 50*time.Millisecond {
		t.Fatalf("after the burst: wait %v, want 50ms", w)
	}
	b.refund()
	if w := b.take(t0); w != 0 {
		t.Fatalf("after a refund: wait %v", w)
	}
	took := 0
	for now := t0; now.Before(t0.Add(time.Second)); now = now.Add(time.Millisecond) {
		if b.take(now) == 0 {
			took++
		}
	}
	if took < 19 || took > 20 {
		t.Fatalf("%d tokens in a second at 20/s", took)
	}
	for range 100 {
		b.refund()
	}
	if b.tokens != b.burst {
		t.Fatalf("refunds filled the bucket to %v, burst %v", b.tokens, b.burst)
	}
	if w := b.take(t0.Add(time.Hour)); w != 0 || b.tokens != b.burst-1 {
		t.Fatalf("after an hour: wait %v, tokens %v", w, b.tokens)
	}
}
