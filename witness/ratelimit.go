package witness

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigilnet/vigil/roster"
)

// RateLimits bounds add-checkpoint requests per log. A log whose roster entry
// has a qpd budget (from a logs/v0 list) is also held to that budget
// (qpd.go).
type RateLimits struct {
	// PerLog is the sustained rate per log, in requests per second; 0 means
	// unlimited.
	PerLog float64
	// Burst is the bucket size; 0 means max(1, PerLog).
	Burst int
}

// limiters holds one token bucket per origin.
type limiters struct {
	cfg RateLimits
	mu  sync.Mutex
	m   map[string]*rate.Limiter
}

func newLimiters(cfg RateLimits) *limiters {
	return &limiters{cfg: cfg, m: map[string]*rate.Limiter{}}
}

func (l *limiters) allow(lg *roster.Log) error {
	perSec, burst := l.cfg.PerLog, l.cfg.Burst
	if perSec <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(perSec))
	}
	l.mu.Lock()
	lim, ok := l.m[lg.Origin]
	if !ok || lim.Limit() != rate.Limit(perSec) || lim.Burst() != burst {
		lim = rate.NewLimiter(rate.Limit(perSec), burst)
		l.m[lg.Origin] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &RateLimitError{RetryAfter: d}
	}
	return nil
}
