package notify

import "time"

// Backoff is the retry schedule of one delivery.
type Backoff struct {
	Base, Max time.Duration
	// MaxAge is how long after its creation a delivery is given up.
	MaxAge time.Duration
}

// Delay is the wait after the given number of failed attempts (1 for the
// first failure): Base × 2^(attempts-1), capped at Max.
func (b Backoff) Delay(attempts int) time.Duration {
	if attempts < 1 {
		return 0
	}
	d := b.Base
	for i := 1; i < attempts; i++ {
		if d >= b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}

// Next returns when to try a delivery created at created again after its
// attempts-th failure at now, or false when it is given up: the next
// attempt would fall after created+MaxAge.
func (b Backoff) Next(created, now time.Time, attempts int) (time.Time, bool) {
	next := now.Add(b.Delay(attempts))
	if b.MaxAge > 0 && next.After(created.Add(b.MaxAge)) {
		return time.Time{}, false
	}
	return next, true
}
