package node

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/store"
)

// maxSuspicionsListed bounds the resolved suspicions the feed reads; open
// ones are always all read, as they are what the feed must show.
const maxSuspicionsListed = 10000

// Suspicions lists every open suspicion and the maxSuspicionsListed most
// recently resolved ones.
func (s feedSource) Suspicions(ctx context.Context) ([]feed.Suspicion, error) {
	var open, resolved []store.Suspicion
	trim := func() {
		slices.SortFunc(resolved, func(a, b store.Suspicion) int { return b.ResolvedAt.Compare(a.ResolvedAt) })
		resolved = resolved[:min(len(resolved), maxSuspicionsListed)]
	}
	err := s.n.store.Suspicions(ctx, func(su store.Suspicion) error {
		if su.Open() {
			open = append(open, su)
			return nil
		}
		resolved = append(resolved, su)
		if len(resolved) >= 2*maxSuspicionsListed {
			trim()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	trim()
	out := make([]feed.Suspicion, 0, len(open)+len(resolved))
	for _, su := range append(open, resolved...) {
		out = append(out, suspicionInfo(su))
	}
	return out, nil
}

func suspicionInfo(su store.Suspicion) feed.Suspicion {
	fs := feed.Suspicion{
		Origin: su.Origin, Size: su.Size, Root: base64.StdEncoding.EncodeToString(su.Root[:]),
		Cosigners: slices.Clone(su.Cosigners), Reason: su.Reason,
		FirstSeen: su.First.UTC(), LastSeen: su.Last.UTC(), Count: su.Count, Resolved: su.Resolved,
	}
	if o := su.Other; o != nil {
		fs.Other = &feed.SuspicionSide{Size: o.Size, Root: base64.StdEncoding.EncodeToString(o.Root[:]), Cosigners: slices.Clone(o.Cosigners)}
	}
	if !su.Open() && !su.ResolvedAt.IsZero() {
		t := su.ResolvedAt.UTC()
		fs.ResolvedAt = &t
	}
	return fs
}

// RecordSuspicion records through the wrapped store and tells the feed.
func (s notifyingStore) RecordSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, reason string, at time.Time) error {
	err := s.Store.RecordSuspicion(ctx, origin, size, root, reason, at)
	s.suspicionUpdated(err)
	return err
}

// divergenceStore is the part of *store.DB that records and resolves
// unproven divergences, which the detector reaches through its store.
type divergenceStore interface {
	RecordDivergence(ctx context.Context, origin string, small, large store.SuspicionSide, reason string, at time.Time) error
	ResolveSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, resolution string, at time.Time) error
}

var _ divergenceStore = notifyingStore{}

// errNoDivergences is returned when the wrapped store cannot record
// divergences.
var errNoDivergences = errors.New("store does not record divergences")

// RecordDivergence records through the wrapped store and tells the feed.
func (s notifyingStore) RecordDivergence(ctx context.Context, origin string, small, large store.SuspicionSide, reason string, at time.Time) error {
	ds, ok := s.Store.(divergenceStore)
	if !ok {
		return errNoDivergences
	}
	err := ds.RecordDivergence(ctx, origin, small, large, reason, at)
	s.suspicionUpdated(err)
	return err
}

// ResolveSuspicion resolves through the wrapped store and tells the feed.
func (s notifyingStore) ResolveSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, resolution string, at time.Time) error {
	ds, ok := s.Store.(divergenceStore)
	if !ok {
		return errNoDivergences
	}
	err := ds.ResolveSuspicion(ctx, origin, size, root, resolution, at)
	s.suspicionUpdated(err)
	return err
}

func (s notifyingStore) suspicionUpdated(err error) {
	if err == nil && s.n.feed != nil {
		s.n.feed.SuspicionUpdated()
	}
}
