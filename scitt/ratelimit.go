package scitt

import (
	"context"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// clientState is the rate-limiting state of one client address.
type clientState struct {
	all      *rate.Limiter
	rejected *bucket
	// limited counts 429s to registrations not yet in the audit trail;
	// they are recorded as one rate_limited record per second at most.
	limited    int
	lastRecord time.Time
}

func (h *Handler) client(ip string) *clientState {
	c, ok := h.clients[ip]
	if !ok {
		if len(h.clients) > 10000 {
			clear(h.clients) // bounded memory; a reset only forgives
		}
		c = &clientState{}
		if h.opts.RatePerClient > 0 {
			c.all = rate.NewLimiter(h.opts.RatePerClient, int(2*h.opts.RatePerClient)+1)
		}
		if h.opts.RejectRatePerClient > 0 {
			c.rejected = newBucket(float64(h.opts.RejectRatePerClient), 2*float64(h.opts.RejectRatePerClient)+1)
		}
		h.clients[ip] = c
	}
	return c
}

func (h *Handler) allow(ip string) bool {
	h.limMu.Lock()
	defer h.limMu.Unlock()
	c := h.client(ip)
	return c.all == nil || c.all.Allow()
}

// limited applies the per-client rate limit to f.
func (h *Handler) limited(f func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !h.allow(clientIP(r)) {
			return &httpError{http.StatusTooManyRequests, &Problem{"Too Many Requests", "rate limit exceeded"}}
		}
		return f(w, r)
	}
}

// admitRegistration applies both per-client limits to a registration. It
// returns 0 to go ahead, or how long the client should wait.
func (h *Handler) admitRegistration(ctx context.Context, ip string) time.Duration {
	now := time.Now()
	h.limMu.Lock()
	c := h.client(ip)
	var wait time.Duration
	switch {
	case c.all != nil && !c.all.AllowN(now, 1):
		wait = time.Second
	case c.rejected != nil:
		// A spent rejection budget is refused before parsing. Only a
		// rejection spends it (rejectionCharged): accepted registrations
		// in flight, however many, never hold its tokens.
		wait = c.rejected.wait(now)
	}
	record := 0
	if wait > 0 {
		c.limited++
		if now.Sub(c.lastRecord) >= time.Second {
			record, c.limited, c.lastRecord = c.limited, 0, now
		}
	}
	h.limMu.Unlock()
	if record > 0 {
		h.s.RecordRateLimited(ctx, record, ip)
	}
	return wait
}

// chargeRejection spends a token of ip's rejection budget for a
// registration that was rejected.
func (h *Handler) chargeRejection(ip string) {
	h.limMu.Lock()
	defer h.limMu.Unlock()
	if c := h.client(ip); c.rejected != nil {
		c.rejected.charge(time.Now())
	}
}

// bucket is a token bucket charged after the fact: admission only checks
// that no debt is outstanding, and each rejection takes a token, going
// into debt when rejections that were admitted together finish together.
// The debt is repaid in full before the next admission, so over any time T
// it lets through at most burst + rate·T + (requests in flight at once)
// rejections; the connection caps bound the last term.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64) *bucket { return &bucket{rate: rate, burst: burst, tokens: burst} }

func (b *bucket) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
}

// wait returns 0 if a request may go ahead, or how long until it may.
func (b *bucket) wait(now time.Time) time.Duration {
	b.refill(now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	}
	return 0
}

// charge takes a token for a rejection.
func (b *bucket) charge(now time.Time) {
	b.refill(now)
	b.tokens--
}
