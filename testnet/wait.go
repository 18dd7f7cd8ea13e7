package testnet

import (
	"context"
	"fmt"
	"time"
)

// pollUntil checks cond every `every` until it holds, cond fails, ctx ends
// or d passes. The network is asynchronous: a condition with a deadline is
// how the harness waits for it.
func pollUntil(ctx context.Context, d, every time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met within %s: %w", d, ctx.Err())
		case <-tick.C:
		}
	}
}

// measureWaitEvery is measureWait with a chosen poll interval.
func measureWaitEvery(ctx context.Context, d, every time.Duration, cond func() bool) error {
	return pollUntil(ctx, d, every, func() (bool, error) { return cond(), nil })
}

// WaitEvidence waits until every running member holds evidence.
func (nw *Network) WaitEvidence(ctx context.Context, d time.Duration) error {
	missing := ""
	err := pollUntil(ctx, d, 20*time.Millisecond, func() (bool, error) {
		for i, m := range nw.Members {
			if !m.Running() {
				continue
			}
			ev, err := nw.Evidence(ctx, i)
			if err != nil {
				return false, err
			}
			if len(ev) == 0 {
				missing = m.Name
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && missing != "" {
		return fmt.Errorf("%s holds no evidence: %w", missing, err)
	}
	return err
}
