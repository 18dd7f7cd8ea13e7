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
	c := newTxnCache(3, 0, recordBytes)
	c.stage("a", CheckpointRecord{Size: 1})
	if _, ok := c.get("a"); ok {
		t.Fatal("a staged record is visible before its transaction committed")
	}
	if rec, ok := c.current("a"); !ok || rec.Size != 1 {
		t.Fatalf("current: %+v %v", rec, ok)
	}
	sealed := c.seal()
	if _, ok := c.get("a"); ok {
		t.Fatal("a record committed but not synced is visible to readers")
	}
	if rec, ok := c.current("a"); !ok || rec.Size != 1 {
		t.Fatalf("current after seal: %+v %v", rec, ok)
	}
	c.beginPublish(sealed)
	c.publish("a")
	c.endPublish(sealed, true)
	if rec, ok := c.get("a"); !ok || rec.Size != 1 {
		t.Fatalf("after publish: %+v %v", rec, ok)
	}
	if len(c.unsynced) != 0 {
		t.Fatalf("%d unsynced values left after publishing", len(c.unsynced))
	}
	// Two transactions committed before either is synced: the second
	// sees the first; publishing the first leaves the second's value to
	// the committer; a failed sync of the second forgets the key.
	c.stage("a", CheckpointRecord{Size: 2})
	first := c.seal()
	if rec, _ := c.current("a"); rec.Size != 2 {
		t.Fatalf("current after a second seal: %+v", rec)
	}
	c.stage("a", CheckpointRecord{Size: 3})
	second := c.seal()
	c.beginPublish(first)
	c.publish("a")
	c.endPublish(first, true)
	if rec, _ := c.get("a"); rec.Size != 2 {
		t.Fatalf("published %+v, want the first transaction's", rec)
	}
	if rec, _ := c.current("a"); rec.Size != 3 {
		t.Fatalf("committer sees %+v after the first publish, want the second's", rec)
	}
	c.forgetTxn(second)
	if rec, ok := c.current("a"); ok {
		t.Fatalf("a record of a failed sync is still cached: %+v", rec)
	}
	c.stage("a", CheckpointRecord{Size: 1})
	publishStaged(c, "a")
	c.stage("a", CheckpointRecord{Size: 2})
	c.forgetTxn(c.seal())
	if _, ok := c.get("a"); ok {
		t.Fatal("a record of a failed transaction is still cached")
	}
	for i := range 5 {
		k := fmt.Sprint("k", i)
		c.stage(k, CheckpointRecord{Size: uint64(i)})
		publishStaged(c, k)
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
	u := newTxnCache[WitnessState](0, 0, nil)
	for i := range 100 {
		k := fmt.Sprint("log", i)
		u.stage(k, WitnessState{Size: uint64(i)})
		publishStaged(u, k)
	}
	if len(u.committed) != 100 {
		t.Fatalf("unbounded cache holds %d of 100", len(u.committed))
	}
}

// publishStaged publishes the staged values of keys as the pipeline does
// once their transaction has committed and its batch is synced.
func publishStaged[V any](c *txnCache[V], keys ...string) {
	t := c.seal()
	c.beginPublish(t)
	for _, k := range keys {
		c.publish(k)
	}
	c.endPublish(t, true)
}

// TestTxnCacheBytes fills the record cache by bytes: the oldest records
// leave first until what it holds fits the bound, a record that grows is
// counted at its new size, a failed transaction's records leave with their
// bytes, and a key published again after that is evicted once.
func TestTxnCacheBytes(t *testing.T) {
	rec := func(noteLen int) CheckpointRecord { return CheckpointRecord{Note: make([]byte, noteLen)} }
	one := recordBytes("k0", rec(1000)) // every key is 2 bytes long
	publish := func(c *txnCache[CheckpointRecord], key string, r CheckpointRecord) {
		c.stage(key, r)
		publishStaged(c, key)
	}
	type step struct {
		key  string
		note int
		fail bool // the transaction fails: forget instead of publish
	}
	tests := []struct {
		name      string
		max       int
		maxBytes  int
		steps     []step
		want      []string // cached keys
		wantBytes int
	}{
		{"oldest leave first", 0, 3 * one,
			[]step{{"k0", 1000, false}, {"k1", 1000, false}, {"k2", 1000, false}, {"k3", 1000, false}, {"k4", 1000, false}},
			[]string{"k2", "k3", "k4"}, 3 * one},
		{"a grown record pushes out the oldest", 0, 3 * one,
			[]step{{"k0", 1000, false}, {"k1", 1000, false}, {"k2", 1000, false}, {"k2", 1500, false}},
			[]string{"k1", "k2"}, one + recordBytes("k2", rec(1500))},
		{"a record larger than the bound is not kept", 0, 3 * one,
			[]step{{"k0", 1000, false}, {"k1", 4 * one, false}},
			nil, 0},
		{"count bound with bytes to spare", 2, 100 * one,
			[]step{{"k0", 1000, false}, {"k1", 1000, false}, {"k2", 1000, false}},
			[]string{"k1", "k2"}, 2 * one},
		{"a failed transaction's bytes are released", 0, 3 * one,
			[]step{{"k0", 1000, false}, {"k1", 1000, false}, {"k1", 1000, true}, {"k2", 1000, false}, {"k3", 1000, false}},
			[]string{"k0", "k2", "k3"}, 3 * one},
		{"a key published again after a failure is queued once", 0, 2 * one,
			[]step{{"k0", 1000, false}, {"k0", 1000, true}, {"k1", 1000, false}, {"k0", 1000, false}, {"k2", 1000, false}},
			[]string{"k0", "k2"}, 2 * one},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTxnCache(tc.max, tc.maxBytes, recordBytes)
			for _, s := range tc.steps {
				if s.fail {
					c.stage(s.key, rec(s.note))
					c.forgetTxn(c.seal())
					continue
				}
				publish(c, s.key, rec(s.note))
			}
			var got []string
			for _, k := range []string{"k0", "k1", "k2", "k3", "k4"} {
				if _, ok := c.get(k); ok {
					got = append(got, k)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("cached %v, want %v", got, tc.want)
			}
			if c.bytes != tc.wantBytes {
				t.Errorf("bytes %d, want %d", c.bytes, tc.wantBytes)
			}
			sum := 0
			for k, v := range c.committed {
				sum += recordBytes(k, v)
			}
			if sum != c.bytes {
				t.Errorf("bytes %d, but the cached records sum to %d", c.bytes, sum)
			}
		})
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
