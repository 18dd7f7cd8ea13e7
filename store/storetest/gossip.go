package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// GossipStore is the durable state of the gossip layer under test:
// checkpoints with merged cosignatures, evidence and suspicions.
type GossipStore interface {
	MergeCheckpoint(ctx context.Context, origin string, size uint64, root [32]byte, fn func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error)) error
	Checkpoint(ctx context.Context, origin string, size uint64, root [32]byte) (store.CheckpointRecord, error)
	CheckpointsAtSize(ctx context.Context, origin string, size uint64) ([]store.CheckpointRecord, error)
	NewestCheckpoint(ctx context.Context, origin string, minCosigners int) (store.CheckpointRecord, error)
	CheckpointHistory(ctx context.Context, origin string, beforeSize uint64, limit int) ([]store.CheckpointRecord, uint64, error)
	PutEvidence(ctx context.Context, rec store.EvidenceRecord) (bool, error)
	Evidence(ctx context.Context, id string) (store.EvidenceRecord, error)
	ListEvidence(ctx context.Context, after string, limit int) ([]store.EvidenceRecord, error)
	RecordSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, reason string, at time.Time) error
	RecordDivergence(ctx context.Context, origin string, small, large store.SuspicionSide, reason string, at time.Time) error
	ResolveSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, resolution string, at time.Time) error
	Suspicions(ctx context.Context, fn func(store.Suspicion) error) error
	Close() error
}

// GossipOpener opens the store kept in dir.
type GossipOpener func(t *testing.T, dir string) GossipStore

// RunGossipStoreTests runs the conformance suite for GossipStore.
func RunGossipStoreTests(t *testing.T, open GossipOpener) {
	ctx := context.Background()
	root := func(b byte) (r [32]byte) { r[0] = b; return r }
	put := func(t *testing.T, s GossipStore, origin string, size uint64, r [32]byte, cosigners int) {
		t.Helper()
		err := s.MergeCheckpoint(ctx, origin, size, r, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
			if exists && old.Cosigners >= cosigners {
				return old, false, nil
			}
			old.Cosigners = cosigners
			old.Note = fmt.Appendf(nil, "%s\n%d\n%d cosigners\n", origin, size, cosigners)
			old.Sightings++
			return old, true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("merge keeps the union and persists", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		put(t, s, "log", 10, root(1), 1)
		put(t, s, "log", 10, root(1), 3)
		put(t, s, "log", 10, root(1), 2) // fewer: no write
		s.Close()
		s = open(t, dir)
		defer s.Close()
		rec, err := s.Checkpoint(ctx, "log", 10, root(1))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Cosigners != 3 || rec.Sightings != 2 || rec.Origin != "log" || rec.Size != 10 || rec.Root != root(1) {
			t.Fatalf("got %+v", rec)
		}
		if _, err := s.Checkpoint(ctx, "log", 10, root(2)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing root: %v", err)
		}
	})

	t.Run("merge error writes nothing", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		boom := errors.New("boom")
		err := s.MergeCheckpoint(ctx, "log", 1, root(1), func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error) {
			return store.CheckpointRecord{Cosigners: 9}, true, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		if _, err := s.Checkpoint(ctx, "log", 1, root(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("failed merge wrote: %v", err)
		}
	})

	t.Run("split view at one size", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		put(t, s, "log", 5, root(1), 0)
		put(t, s, "log", 5, root(2), 0)
		put(t, s, "log", 6, root(3), 0)
		put(t, s, "other", 5, root(4), 0)
		recs, err := s.CheckpointsAtSize(ctx, "log", 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].Root == recs[1].Root {
			t.Fatalf("got %d records at size 5", len(recs))
		}
	})

	t.Run("newest with k cosignatures", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		put(t, s, "log", 3, root(1), 3)
		put(t, s, "log", 7, root(2), 2)
		put(t, s, "log", 9, root(3), 0)
		put(t, s, "log\x00", 99, root(3), 9) // another origin, must not leak
		for _, tt := range []struct {
			k    int
			want uint64
		}{{0, 9}, {1, 7}, {2, 7}, {3, 3}} {
			rec, err := s.NewestCheckpoint(ctx, "log", tt.k)
			if err != nil || rec.Size != tt.want {
				t.Errorf("k=%d: got size %d, %v; want %d", tt.k, rec.Size, err, tt.want)
			}
		}
		if _, err := s.NewestCheckpoint(ctx, "log", 4); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("k=4: %v", err)
		}
		if _, err := s.NewestCheckpoint(ctx, "nolog", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown origin: %v", err)
		}
	})

	t.Run("history pages", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		for i := uint64(1); i <= 25; i++ {
			put(t, s, "log", i, root(byte(i)), 0)
		}
		put(t, s, "log", 20, root(99), 0) // two roots at size 20
		var sizes []uint64
		before := uint64(math.MaxUint64)
		for page := 0; page < 10 && before != 0; page++ {
			recs, next, err := s.CheckpointHistory(ctx, "log", before, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				sizes = append(sizes, r.Size)
			}
			before = next
		}
		if len(sizes) != 26 || sizes[0] != 25 || sizes[len(sizes)-1] != 1 {
			t.Fatalf("history: %v", sizes)
		}
		for i := 1; i < len(sizes); i++ {
			if sizes[i] > sizes[i-1] {
				t.Fatalf("history not descending: %v", sizes)
			}
		}
	})

	t.Run("evidence is kept forever and first write wins", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		base := time.Unix(1700000000, 0)
		for i := 0; i < 5; i++ {
			added, err := s.PutEvidence(ctx, store.EvidenceRecord{ID: fmt.Sprintf("id%d", i), Kind: "k", Stored: base.Add(time.Duration(i) * time.Second), Data: []byte{byte(i)}})
			if err != nil || !added {
				t.Fatalf("put %d: %v %v", i, added, err)
			}
		}
		added, err := s.PutEvidence(ctx, store.EvidenceRecord{ID: "id2", Kind: "other", Data: []byte("x")})
		if err != nil || added {
			t.Fatalf("duplicate put: added=%v err=%v", added, err)
		}
		s.Close()
		s = open(t, dir)
		defer s.Close()
		rec, err := s.Evidence(ctx, "id2")
		if err != nil || rec.Kind != "k" || string(rec.Data) != "\x02" {
			t.Fatalf("got %+v, %v", rec, err)
		}
		page1, err := s.ListEvidence(ctx, "", 3)
		if err != nil || len(page1) != 3 || page1[0].ID != "id0" {
			t.Fatalf("page 1: %v %v", page1, err)
		}
		page2, err := s.ListEvidence(ctx, page1[2].ID, 3)
		if err != nil || len(page2) != 2 || page2[0].ID != "id3" || page2[1].ID != "id4" {
			t.Fatalf("page 2: %v %v", page2, err)
		}
		if _, err := s.Evidence(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	})

	t.Run("concurrent evidence puts add once", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		var wg sync.WaitGroup
		var mu sync.Mutex
		adds := 0
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				added, err := s.PutEvidence(ctx, store.EvidenceRecord{ID: "same", Kind: "k"})
				if err != nil {
					t.Error(err)
				}
				if added {
					mu.Lock()
					adds++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if adds != 1 {
			t.Fatalf("%d adds, want 1", adds)
		}
	})

	t.Run("suspicions accumulate", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		at := time.Unix(1700000000, 0)
		for i := 0; i < 3; i++ {
			if err := s.RecordSuspicion(ctx, "log", 9, root(1), fmt.Sprintf("reason %d", i), at.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		var got []store.Suspicion
		if err := s.Suspicions(ctx, func(su store.Suspicion) error { got = append(got, su); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Count != 3 || got[0].Reason != "reason 2" || !got[0].First.Equal(at) || got[0].Size != 9 {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("divergences open, resolve and persist", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		at := time.Unix(1700000000, 0)
		small := store.SuspicionSide{Size: 8, Root: root(8), Cosigners: []string{"w1"}}
		large := store.SuspicionSide{Size: 15, Root: root(15), Cosigners: []string{"w2", "w3"}}
		if err := s.RecordDivergence(ctx, "log", small, large, "push-only log", at); err != nil {
			t.Fatal(err)
		}
		// Resolving another checkpoint changes nothing.
		if err := s.ResolveSuspicion(ctx, "log", 15, root(99), store.ResolvedConsistent, at); err != nil {
			t.Fatal(err)
		}
		list := func(s GossipStore) []store.Suspicion {
			t.Helper()
			var got []store.Suspicion
			if err := s.Suspicions(ctx, func(su store.Suspicion) error { got = append(got, su); return nil }); err != nil {
				t.Fatal(err)
			}
			return got
		}
		got := list(s)
		if len(got) != 1 || !got[0].Open() || got[0].Other == nil || got[0].Other.Size != 8 || got[0].Other.Root != root(8) ||
			len(got[0].Other.Cosigners) != 1 || len(got[0].Cosigners) != 2 || got[0].Size != 15 {
			t.Fatalf("open divergence: %+v", got)
		}
		if err := s.ResolveSuspicion(ctx, "log", 15, root(15), store.ResolvedEvidence, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = open(t, dir)
		defer s.Close()
		got = list(s)
		if len(got) != 1 || got[0].Open() || got[0].Resolved != store.ResolvedEvidence || !got[0].ResolvedAt.Equal(at.Add(time.Minute)) {
			t.Fatalf("resolved divergence after reopen: %+v", got)
		}
		// Seen again, it is open again.
		if err := s.RecordDivergence(ctx, "log", small, large, "again", at.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got = list(s); !got[0].Open() || got[0].Count != 2 {
			t.Fatalf("reopened divergence: %+v", got)
		}
	})
}
