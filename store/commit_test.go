package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/store"
)

func bump(old store.WitnessState, _ bool) (store.WitnessState, error) {
	return store.WitnessState{Size: old.Size + 1, Checkpoint: fmt.Appendf(nil, "checkpoint %d\n", old.Size+1)}, nil
}

// TestLingerSparesALoneWriter: with a linger far longer than the test's
// timeout, one writer's sequential updates still go straight through: a
// batch of one is no sign of load.
func TestLingerSparesALoneWriter(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{CommitLinger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for range 50 {
		if err := db.UpdateWitnessState(ctx, "a", bump); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := db.WitnessState(ctx, "a"); err != nil || st.Size != 50 {
		t.Fatalf("got %+v, %v", st, err)
	}
}

// TestLingerUnderLoad: concurrent writers with lingering on lose no update,
// and Close ends a linger at once (a linger of an hour would otherwise hold
// the last batch): every update is either durable or refused with ErrClosed.
func TestLingerUnderLoad(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{CommitLinger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const writers = 32 // enough for batches past lingerMin
	var done, applied atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			origin := fmt.Sprint("log", w)
			for {
				err := db.UpdateWitnessState(ctx, origin, bump)
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				applied.Add(1)
				if done.Add(1) == 200 {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	<-enough
	reg := prometheus.NewRegistry()
	reg.MustRegister(db.Metrics()...)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Lingering happened: with an hour's linger, batches after the first
	// large one wait for all writers.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if h := mf.GetMetric()[0].GetHistogram(); mf.GetName() == "vigil_store_commit_batch_size" {
			if mean := h.GetSampleSum() / float64(h.GetSampleCount()); mean < 10 {
				t.Errorf("mean batch %.1f updates with %d writers lingering", mean, writers)
			}
		}
	}
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var total uint64
	if err := db.WitnessStates(ctx, func(_ string, st store.WitnessState) error {
		total += st.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if total != uint64(applied.Load()) {
		t.Fatalf("%d updates acknowledged, %d durable", applied.Load(), total)
	}
}

// TestClosedCachedRead: a log whose state is cached reads as closed too.
func TestClosedCachedRead(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.UpdateWitnessState(ctx, "a", bump); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.WitnessState(ctx, "a"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}
