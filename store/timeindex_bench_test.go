package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// BenchmarkCheckpointsByTime: a page of 100 records from the middle of a
// log of 20,000 (one a minute), after the index is built; the first
// query's build over all records is reported as build-ms.
func BenchmarkCheckpointsByTime(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(b.TempDir(), store.Options{GossipSyncDelay: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	const n = 20000
	for i := range uint64(n) {
		var root [32]byte
		root[0], root[1], root[2] = byte(i), byte(i>>8), byte(i>>16)
		seen := t0.Add(time.Duration(i) * time.Minute)
		if err := db.MergeCheckpoint(ctx, "example.com/bench", i+1, root, func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error) {
			return store.CheckpointRecord{Note: make([]byte, 400), FirstSeen: seen, Cosigners: 3}, true, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if err := db.IndexCheckpointTimes(ctx); err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	since := t0.Add(n / 2 * time.Minute)
	b.ResetTimer()
	for b.Loop() {
		recs, _, err := db.CheckpointsByTime(ctx, "example.com/bench", since, time.Time{}, nil, 100)
		if err != nil || len(recs) != 100 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
	b.ReportMetric(float64(build.Milliseconds()), "build-ms")
	b.StopTimer()
	start = time.Now()
	for range 100 {
		db.IndexCheckpointTimes(ctx)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/100, "catchup-us")
}
