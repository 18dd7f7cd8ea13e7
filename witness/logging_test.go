package witness_test

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// countingHandler counts the records logged at or above Info.
type countingHandler struct {
	n          atomic.Int64
	suppressed atomic.Int64
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.n.Add(1)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			h.suppressed.Add(a.Value.Int64())
		}
		return true
	})
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestRejectLoggingIsRateLimited floods the witness with bad requests of
// several kinds: each gets its status, but the log grows by a bounded number
// of lines, and the suppressed count is reported.
func TestRejectLoggingIsRateLimited(t *testing.T) {
	const requests = 300
	a := newTestLog(t, "example.com/a", nil)
	u := newTestLog(t, "example.com/unknown", nil)
	a.grow(8, "a")
	h := &countingHandler{}
	f := newFixture(t, fixtureOptions{logger: slog.New(h)}, a)
	f.push(a, 0, 8, http.StatusOK) // cosignatures are not logged
	if n := h.n.Load(); n != 0 {
		t.Fatalf("%d log lines before the flood", n)
	}
	bad := []struct {
		body []byte
		code int
	}{
		{[]byte("garbage"), 400},
		{requestBody(0, nil, u.checkpoint(t, 0)), 404},
		{requestBody(0, nil, a.checkpoint(t, 8)), 409},
	}
	start := time.Now()
	sent := 0
	send := func() {
		b := bad[sent%len(bad)]
		if r := f.post(b.body); r.code != b.code {
			t.Fatalf("request %d: status %d, want %d", sent, r.code, b.code)
		}
		sent++
	}
	for sent < requests {
		send()
	}
	// Keep flooding until the limiter lets one more line through (bounded),
	// which must report how many were suppressed.
	deadline := start.Add(10 * time.Second)
	for h.n.Load() <= 10 && sent < 100_000 && time.Now().Before(deadline) {
		send()
	}
	elapsed := time.Since(start)
	// The limiter allows a burst of 10 and 5 lines a second after that.
	limit := int64(10 + math.Ceil(5*elapsed.Seconds()) + 1)
	n := h.n.Load()
	t.Logf("%d rejections in %v produced %d log lines (limit %d), %d reported suppressed", sent, elapsed, n, limit, h.suppressed.Load())
	if n == 0 || n > limit {
		t.Fatalf("%d log lines for %d rejections in %v, want 1..%d", n, sent, elapsed, limit)
	}
	if n > 10 && (h.suppressed.Load() == 0 || h.suppressed.Load() > int64(sent)-n) {
		t.Fatalf("suppressed count %d after %d rejections and %d lines", h.suppressed.Load(), sent, n)
	}
}
