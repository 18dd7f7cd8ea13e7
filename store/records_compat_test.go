package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// copyDir copies the files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "README.md" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// fixtureRecord is record i of testdata/json-records (see its README).
func fixtureRecord(i int) store.CheckpointRecord {
	size := uint64(10 + i)
	root := sha256.Sum256(fmt.Appendf(nil, "root %d", size))
	return store.CheckpointRecord{
		Origin: "example.com/log", Size: size, Root: root,
		Note:      fmt.Appendf(nil, "example.com/log\n%d\n%x\n\n— example.com/log AAAAAQ==\n", size, root[:4]),
		Cosigners: i, FirstSeen: time.Date(2026, 12, 7, 12, 0, i, 500, time.UTC),
		FirstObserver: fmt.Sprintf("w%d", i), FirstSource: "gossip", Sightings: uint64(i + 1),
	}
}

func sameRecord(a, b store.CheckpointRecord) bool {
	return a.Origin == b.Origin && a.Size == b.Size && a.Root == b.Root && bytes.Equal(a.Note, b.Note) &&
		a.Cosigners == b.Cosigners && a.FirstSeen.Equal(b.FirstSeen) && a.FirstObserver == b.FirstObserver &&
		a.FirstSource == b.FirstSource && a.Sightings == b.Sightings
}

// TestOpenJSONRecordStore: a store whose checkpoint records were written
// in the JSON layout opens and reads them through every read; a merge
// rewrites one in the binary layout, and after a reopen both kinds read.
func TestOpenJSONRecordStore(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "json-records"))
	ctx := context.Background()
	db, err := store.Open(dir, store.Options{GossipSyncDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	check := func(stage string, want []store.CheckpointRecord) {
		t.Helper()
		recs, next, err := db.CheckpointHistory(ctx, "example.com/log", math.MaxUint64, 10)
		if err != nil || next != 0 || len(recs) != len(want) {
			t.Fatalf("%s: history: %d records, next %d, %v", stage, len(recs), next, err)
		}
		for i, r := range recs {
			w := want[len(want)-1-i]
			if !sameRecord(r, w) {
				t.Errorf("%s: history record %d = %+v, want %+v", stage, i, r, w)
			}
			got, err := db.Checkpoint(ctx, w.Origin, w.Size, w.Root)
			if err != nil || !sameRecord(got, w) {
				t.Errorf("%s: Checkpoint(%d) = %+v, %v", stage, w.Size, got, err)
			}
			at, err := db.CheckpointsAtSize(ctx, w.Origin, w.Size)
			if err != nil || len(at) != 1 || !sameRecord(at[0], w) {
				t.Errorf("%s: CheckpointsAtSize(%d) = %+v, %v", stage, w.Size, at, err)
			}
		}
		newest, err := db.NewestCheckpoint(ctx, "example.com/log", 2)
		if err != nil || !sameRecord(newest, want[2]) {
			t.Errorf("%s: NewestCheckpoint = %+v, %v", stage, newest, err)
		}
	}
	want := []store.CheckpointRecord{fixtureRecord(0), fixtureRecord(1), fixtureRecord(2)}
	check("JSON", want)

	// A merge reads the JSON record and writes the binary one.
	w := want[1]
	err = db.MergeCheckpoint(ctx, w.Origin, w.Size, w.Root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		if !exists || !sameRecord(old, w) {
			return old, false, fmt.Errorf("merge saw %+v (exists %v)", old, exists)
		}
		old.Sightings++
		old.Note = append(bytes.Clone(old.Note), []byte("— w1.example AAAAAg==\n")...)
		return old, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want[1].Sightings++
	want[1].Note = append(bytes.Clone(want[1].Note), []byte("— w1.example AAAAAg==\n")...)
	check("mixed", want)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(dir, store.Options{GossipSyncDelay: -1}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check("reopened", want)
}
