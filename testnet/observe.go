package testnet

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilnet/vigil/store"
)

// Suspicions returns member i's vigil_suspicions_total, read from its
// /metrics as a scraper would (in process mode and in process alike).
func (nw *Network) Suspicions(ctx context.Context, i int) (float64, error) {
	m := nw.Members[i]
	if !m.Running() {
		return 0, fmt.Errorf("%s is not running", m.Name)
	}
	return scrapeCounter(ctx, m.URL, "vigil_suspicions_total")
}

// EvidenceFile returns the evidence file member i serves for id
// (GET /v1/evidence/{id}?format=raw): what `vigil verify` reads.
func (nw *Network) EvidenceFile(ctx context.Context, i int, id string) ([]byte, error) {
	m := nw.Members[i]
	if !m.Running() {
		return nil, fmt.Errorf("%s is not running", m.Name)
	}
	return get(ctx, m.URL+"/v1/evidence/"+id+"?format=raw")
}

// WaitEvidenceOf waits until every running member holds evidence of kind
// (e.g. "log-equivocation-different-sizes") about origin, and returns, per
// member index, the first such record each holds.
func (nw *Network) WaitEvidenceOf(ctx context.Context, origin, kind string, d time.Duration) (map[int]store.EvidenceRecord, error) {
	found := map[int]store.EvidenceRecord{}
	missing := ""
	err := pollUntil(ctx, d, 50*time.Millisecond, func() (bool, error) {
		for i, m := range nw.Members {
			if _, ok := found[i]; ok || !m.Running() {
				continue
			}
			ev, err := nw.Evidence(ctx, i)
			if err != nil {
				return false, err
			}
			for _, e := range ev {
				if e.Origin == origin && e.Kind == kind {
					found[i] = e
					break
				}
			}
			if _, ok := found[i]; !ok {
				missing = m.Name
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && missing != "" {
		return found, fmt.Errorf("%s holds no %s evidence about %s: %w", missing, kind, origin, err)
	}
	return found, err
}
