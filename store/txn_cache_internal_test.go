package store

import (
	"context"
	"fmt"
	"testing"
)

// TestTxnCache: staged records are seen only by the committer until
// published, a failed transaction's records are forgotten, and the cache
// keeps at most its bound, dropping the oldest first.
func TestTxnCache(t *testing.T) {
	c := newTxnCache[CheckpointRecord](3)
	c.stage("a", CheckpointRecord{Size: 1})
	if _, ok := c.get("a"); ok {
		t.Fatal("a staged record is visible before its transaction committed")
	}
	if rec, ok := c.current("a"); !ok || rec.Size != 1 {
		t.Fatalf("current: %+v %v", rec, ok)
	}
	c.publish("a")
	c.endTxn()
	if rec, ok := c.get("a"); !ok || rec.Size != 1 {
		t.Fatalf("after publish: %+v %v", rec, ok)
	}
	c.stage("a", CheckpointRecord{Size: 2})
	c.forget()
	c.endTxn()
	if _, ok := c.get("a"); ok {
		t.Fatal("a record of a failed transaction is still cached")
	}
	for i := range 5 {
		k := fmt.Sprint("k", i)
		c.stage(k, CheckpointRecord{Size: uint64(i)})
		c.publish(k)
		c.endTxn()
	}
	if len(c.committed) > 3 {
		t.Fatalf("%d records cached, bound 3", len(c.committed))
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := c.get(fmt.Sprint("k", i)); ok != want {
			t.Errorf("k%d cached %v, want %v", i, ok, want)
		}
	}
	// A bound of 0 keeps everything (the witness states).
	u := newTxnCache[WitnessState](0)
	for i := range 100 {
		k := fmt.Sprint("log", i)
		u.stage(k, WitnessState{Size: uint64(i)})
		u.publish(k)
		u.endTxn()
	}
	if len(u.committed) != 100 {
		t.Fatalf("unbounded cache holds %d of 100", len(u.committed))
	}
}

// TestMergeThroughCache: merges read the record they build on from the
// cache once it holds it, and the result is what Badger holds, after a
// reopen too.
func TestMergeThroughCache(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root := [32]byte{7}
	for i := 1; i <= 20; i++ {
		if err := db.MergeCheckpoint(ctx, "log", 5, root, func(old CheckpointRecord, exists bool) (CheckpointRecord, bool, error) {
			if exists != (i > 1) || old.Sightings != uint64(i-1) {
				return old, false, fmt.Errorf("merge %d saw exists=%v sightings=%d", i, exists, old.Sightings)
			}
			old.Sightings++
			old.Note = fmt.Appendf(nil, "note %d\n", i)
			return old, true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := db.records.get(string(checkpointKey("log", 5, root))); !ok {
		t.Fatal("the merged record is not cached")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.Checkpoint(ctx, "log", 5, root)
	if err != nil || rec.Sightings != 20 || string(rec.Note) != "note 20\n" {
		t.Fatalf("after reopen: %+v, %v", rec, err)
	}
}
