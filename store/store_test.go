package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/store/storetest"
)

func openBadger(t *testing.T, dir string) storetest.WitnessStateStore {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestBadgerConformance(t *testing.T) {
	storetest.RunWitnessStateTests(t, openBadger)
}

func TestLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = store.Open(dir, store.Options{})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestClosed(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.WitnessState(context.Background(), "x"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// BenchmarkWitnessUpdate measures durable updates/s with many concurrent
// writers over 1,000 origins: fsyncs are shared by Badger's write batching.
func BenchmarkWitnessUpdate(b *testing.B) {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var mu sync.Mutex
	n := 0
	b.SetParallelism(128)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			origin := fmt.Sprintf("log%d", n%1000)
			n++
			mu.Unlock()
			err := db.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
				return store.WitnessState{Size: old.Size + 1, Checkpoint: make([]byte, 300)}, nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

// TestOpenAfterKillInMemtableCreation: a process killed while Badger
// creates a memtable log leaves it empty; the store still opens, with
// everything it held.
func TestOpenAfterKillInMemtableCreation(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := store.EvidenceRecord{ID: "e1", Kind: "log_equivocation", Origin: "example.com/log", Data: []byte("{}")}
	if _, err := db.PutEvidence(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What SIGKILL right after Badger's create leaves behind.
	if err := os.WriteFile(filepath.Join(dir, "00009.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer db.Close()
	if _, err := db.Evidence(ctx, "e1"); err != nil {
		t.Errorf("evidence after reopening: %v", err)
	}
	// A store that is open is left alone: its newest memtable log may be
	// empty only because Badger is about to size it.
	live := filepath.Join(dir, "00010.mem")
	if err := os.WriteFile(live, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("opening a store in use: %v, want ErrLocked", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("an empty memtable log of a store in use: %v", err)
	}
	os.Remove(live)
}
