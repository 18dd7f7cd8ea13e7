package witness

import (
	"errors"
	"testing"
	"time"
)

func TestQPDBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := newQPDBudgets(func() time.Time { return now })
	type step struct {
		advance time.Duration
		qpd     float64
		ok      bool
		retry   time.Duration // when refused
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"no budget", []step{{0, 0, true, 0}, {0, 0, true, 0}}},
		{"spent then refilled", []step{
			{0, 2, true, 0}, {0, 2, true, 0},
			{0, 2, false, 12 * time.Hour},
			{6 * time.Hour, 2, false, 6 * time.Hour},
			{6 * time.Hour, 2, true, 0},
			{0, 2, false, 12 * time.Hour},
		}},
		{"never more than a day's budget banked", []step{
			{0, 1, true, 0},
			{30 * 24 * time.Hour, 1, true, 0},
			{0, 1, false, 24 * time.Hour},
		}},
		{"a lowered budget keeps what was spent", []step{
			{0, 100, true, 0},
			{0, 1, true, 0}, // the new budget: min(1, 99 left)
			{0, 1, false, 24 * time.Hour},
		}},
		{"a tiny Retry-After is at least a second", []step{
			{0, 86400 * 1000, true, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := tc.name
			for i, s := range tc.steps {
				now = now.Add(s.advance)
				err := b.allow(origin, s.qpd)
				if s.ok != (err == nil) {
					t.Fatalf("step %d: err = %v, want ok %v", i, err, s.ok)
				}
				if err != nil {
					var rl *RateLimitError
					if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) {
						t.Fatalf("step %d: %v is not a RateLimitError", i, err)
					}
					if d := rl.RetryAfter - s.retry; d < -time.Second || d > time.Second {
						t.Fatalf("step %d: retry after %s, want %s", i, rl.RetryAfter, s.retry)
					}
				}
			}
		})
	}
}
