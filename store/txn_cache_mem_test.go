package store

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sync/errgroup"
)

// TestRecordCacheHeapWithinBound fills a real store's checkpoint-record
// cache through MergeCheckpoint, with notes the size of an Ed25519-cosigned
// checkpoint's and of one also cosigned with ML-DSA-44, and weighs the heap
// the cache holds (the live heap with it, less the live heap once it is
// emptied, both with the store closed): what recordBytes counts must be what the cache takes, so that
// recordCacheBytes bounds the heap and not only the notes.
func TestRecordCacheHeapWithinBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		note int
	}{
		{"ed25519", 330},
		{"ed25519+mldsa44", 3600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// A third more records than the bound holds, merged by 16
			// writers so that the committer batches them.
			n := min(recordCacheSize, recordCacheBytes/(tc.note+recordOverhead)) * 4 / 3
			var g errgroup.Group
			for w := range 16 {
				g.Go(func() error {
					for i := w; i < n; i += 16 {
						origin := fmt.Sprintf("log%04d.example/tlog", i%1000)
						root := [32]byte{byte(i), byte(i >> 8)}
						err := db.MergeCheckpoint(ctx, origin, uint64(i), root, func(old CheckpointRecord, exists bool) (CheckpointRecord, bool, error) {
							old.Origin, old.Size, old.Root = origin, uint64(i), root
							// Built as tlog.FormatNote builds notes: capacity exact.
							old.Note = append(make([]byte, 0, tc.note), bytes.Repeat([]byte{'n'}, tc.note)...)
							old.Cosigners, old.Sightings = 1, 1
							old.FirstObserver = "witness.example/w1"
							return old, true, nil
						})
						if err != nil {
							return err
						}
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			// Weighed with the store closed, so that no flush or
			// compaction allocates between the two weighings.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			c := db.records
			c.mu.RLock()
			held, counted := len(c.committed), c.bytes
			c.mu.RUnlock()
			with := liveHeap()
			c.mu.Lock()
			c.committed, c.order, c.head, c.bytes = map[string]CheckpointRecord{}, nil, 0, 0
			c.mu.Unlock()
			without := liveHeap()
			took := int(with) - int(without)
			t.Logf("%d records cached, counted %d bytes (%d each), took %d (%d each)",
				held, counted, counted/held, took, took/held)
			if held == 0 || took > recordCacheBytes+recordCacheBytes/8 {
				t.Errorf("the cache took %d bytes of heap for %d records, bound %d", took, held, recordCacheBytes)
			}
			if lo, hi := counted*3/4, counted*5/4; took < lo || took > hi {
				t.Errorf("the cache took %d bytes, its count says %d", took, counted)
			}
		})
	}
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
