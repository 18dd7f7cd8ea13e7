package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// putRecord merges a record of origin at size first seen at t.
func putRecord(t *testing.T, db *store.DB, origin string, size uint64, seen time.Time) {
	t.Helper()
	var root [32]byte
	root[0], root[1] = byte(size), byte(size>>8)
	err := db.MergeCheckpoint(context.Background(), origin, size, root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		if exists {
			old.Cosigners++
			return old, true, nil
		}
		return store.CheckpointRecord{Note: []byte("note"), FirstSeen: seen, Cosigners: 1}, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sizesOf(recs []store.CheckpointRecord) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Size)
	}
	return out
}

func TestCheckpointsByTime(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	// Written before any query: the index is built by the first one.
	for i := range uint64(10) {
		putRecord(t, db, "a", i+1, t0.Add(time.Duration(i)*time.Hour))
		putRecord(t, db, "b", i+1, t0.Add(time.Duration(i)*time.Minute))
	}
	cases := []struct {
		name         string
		since, until time.Time
		want         []uint64
	}{
		{"all", time.Time{}, time.Time{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"window", t0.Add(2 * time.Hour), t0.Add(5 * time.Hour), []uint64{3, 4, 5}},
		{"until exclusive", time.Time{}, t0.Add(time.Hour), []uint64{1}},
		{"after all", t0.Add(24 * time.Hour), time.Time{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, next, err := db.CheckpointsByTime(ctx, "a", c.since, c.until, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			if got := sizesOf(recs); !slices.Equal(got, c.want) || next != nil {
				t.Fatalf("got %v next %x, want %v and no next page", got, next, c.want)
			}
		})
	}

	// Pages of 3 cover the window exactly once, in order.
	var all []uint64
	var cursor store.TimeCursor
	for pages := 0; ; pages++ {
		recs, next, err := db.CheckpointsByTime(ctx, "b", t0, t0.Add(8*time.Minute), cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sizesOf(recs)...)
		if next == nil {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(all, want) {
		t.Fatalf("pages gave %v, want %v", all, want)
	}

	// A cosignature merged later does not move a record in time, and
	// records added after the first build are indexed by the next query.
	putRecord(t, db, "a", 3, t0.Add(100*time.Hour))
	putRecord(t, db, "a", 11, t0.Add(10*time.Hour))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, _, err := db.CheckpointsByTime(ctx, "a", t0.Add(2*time.Hour), time.Time{}, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sizesOf(recs), []uint64{3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(got, want) {
		t.Fatalf("after reopen got %v, want %v", got, want)
	}
	if recs[0].Cosigners != 2 {
		t.Fatalf("record 3 has %d cosigners, want the merged 2", recs[0].Cosigners)
	}
	if _, _, err := db.CheckpointsByTime(ctx, "a", time.Time{}, time.Time{}, store.TimeCursor("short"), 1); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}
