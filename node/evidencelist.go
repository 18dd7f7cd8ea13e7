package node

import (
	"context"
	"sync"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/store"
)

// evidenceList is the feed's view of the node's evidence: the newest
// maxEvidenceListed records, summarised. The feed asks for it on every
// evidence event, every refresh interval (5 s) and every GET /v1/evidence;
// reading and summarising each record each time (JSON, then the proto,
// then both checkpoints) made that cost grow with all the evidence ever
// stored. Evidence is never changed once stored, so a summary made once
// stays true: a listing reads the IDs (keys only) and only the records it
// has not summarised before.
type evidenceList struct {
	mu      sync.Mutex
	summary map[string]feed.Evidence
}

// evidenceSource is what evidenceList reads: *store.DB.
type evidenceSource interface {
	NewestEvidenceIDs(ctx context.Context, limit int) ([]string, error)
	Evidence(ctx context.Context, id string) (store.EvidenceRecord, error)
}

// list returns the newest limit pieces of evidence in src, newest first.
func (l *evidenceList) list(ctx context.Context, src evidenceSource, limit int) ([]feed.Evidence, error) {
	ids, err := src.NewestEvidenceIDs(ctx, limit)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.summary == nil {
		l.summary = map[string]feed.Evidence{}
	}
	out := make([]feed.Evidence, 0, len(ids))
	for _, id := range ids {
		e, ok := l.summary[id]
		if !ok {
			rec, err := src.Evidence(ctx, id)
			if err != nil {
				return nil, err
			}
			e = evidenceInfo(rec)
			l.summary[id] = e
		}
		out = append(out, e)
	}
	// Forget what fell off the end of the list, so the cache stays as
	// large as the list.
	if len(l.summary) > len(ids) {
		keep := make(map[string]bool, len(ids))
		for _, id := range ids {
			keep[id] = true
		}
		for id := range l.summary {
			if !keep[id] {
				delete(l.summary, id)
			}
		}
	}
	return out, nil
}
