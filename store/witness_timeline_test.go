package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// TestWitnessTimelineRecords: records written survive a reopen of the same
// Badger directory, a later write replaces one by key, keys outside the
// timeline's prefix are not listed, and a bad key is refused writing
// nothing.
func TestWitnessTimelineRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.WitnessTimeline(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	if err := db.PutWitnessTimeline(ctx, map[string][]byte{"heads": []byte(`{"a":1}`), "witness/w1": []byte("one")}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutWitnessTimeline(ctx, map[string][]byte{"witness/w1": []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutWitnessTimeline(ctx, map[string][]byte{"witness/w2": []byte("x"), "": []byte("bad")}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("empty key: %v", err)
	}
	if err := db.PutWitnessTimeline(ctx, map[string][]byte{strings.Repeat("k", 2000): nil}); err == nil {
		t.Fatal("a 2000-byte key was accepted")
	}
	// Witness state lives beside it under "w/" and must not show.
	if err := db.UpdateWitnessState(ctx, "example.com/log", func(store.WitnessState, bool) (store.WitnessState, error) {
		return store.WitnessState{Size: 1}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.WitnessTimeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["heads"]) != `{"a":1}` || string(got["witness/w1"]) != "two" {
		t.Fatalf("after reopen: %q", got)
	}
}

// TestWitnessTimelineManyRecords: a save of many records whose sum is far
// beyond Badger's per-transaction cap (15 % of the memtable) is written in
// full. A node with 10 roster witnesses and a few hundred logs saves about
// this much every 30 s (a record per witness holds a line per log).
func TestWitnessTimelineManyRecords(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := map[string][]byte{}
	for i := range 11 {
		recs[fmt.Sprintf("witness/w%d", i)] = bytes.Repeat([]byte{byte('a' + i)}, 100<<10)
	}
	if err := db.PutWitnessTimeline(ctx, recs); err != nil {
		t.Fatalf("11 records of 100 KiB: %v", err)
	}
	got, err := db.WitnessTimeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records stored, want %d", len(got), len(recs))
	}
	for k, v := range recs {
		if !bytes.Equal(got[k], v) {
			t.Errorf("record %s: %d bytes stored, want %d", k, len(got[k]), len(v))
		}
	}
}

// TestWitnessTimelineDelete: deleted records are gone, others stay, a key
// with no record is no error, and a bad key is refused deleting nothing.
func TestWitnessTimelineDelete(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutWitnessTimeline(ctx, map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteWitnessTimeline(ctx, []string{"c", ""}); err == nil {
		t.Fatal("an empty key was accepted")
	}
	if err := db.DeleteWitnessTimeline(ctx, []string{"a", "c", "never"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.WitnessTimeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got["b"]) != "2" {
		t.Fatalf("after deleting a and c: %q", got)
	}
}
