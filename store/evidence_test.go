package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

func TestNewestEvidenceIDs(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ids, err := db.NewestEvidenceIDs(ctx, 10); err != nil || len(ids) != 0 {
		t.Fatalf("empty store: %v, %v", ids, err)
	}
	base := time.Unix(1700000000, 0)
	// Stored out of order (the listing follows the stored time, not the
	// order of the writes), with the extremes of the 8-byte time key:
	// the latest time there is, and one before 1970 (a key starting 0xff).
	puts := []struct {
		id     string
		stored time.Time
	}{
		{"b", base.Add(2 * time.Second)},
		{"a", base.Add(time.Second)},
		{"late", time.Unix(0, 1<<63-1)},
		{"c", base.Add(3 * time.Second)},
		{"pre1970", time.Unix(-1, 0)},
	}
	for _, p := range puts {
		if _, err := db.PutEvidence(ctx, store.EvidenceRecord{ID: p.id, Kind: "k", Stored: p.stored, Data: []byte(p.id)}); err != nil {
			t.Fatal(err)
		}
	}
	// The store records times as unsigned nanoseconds, so a time before
	// 1970 sorts after every later one.
	all := []string{"pre1970", "late", "c", "b", "a"}
	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{0, nil},
		{1, all[:1]},
		{3, all[:3]},
		{5, all},
		{100, all},
	} {
		ids, err := db.NewestEvidenceIDs(ctx, tc.limit)
		if err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("limit %d: %v, %v; want %v", tc.limit, ids, err, tc.want)
		}
	}
	// The same order as ListEvidence, reversed.
	recs, err := db.ListEvidence(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, r := range recs {
		listed = append(listed, r.ID)
	}
	slices.Reverse(listed)
	if !slices.Equal(listed, all) {
		t.Errorf("ListEvidence reversed: %v, want %v", listed, all)
	}
}
