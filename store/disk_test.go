package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/store"
)

// TestDiskPressure: below the low watermark writes are refused with
// ErrDiskPressure without reaching Badger, the ballast is released, reads
// go on; above the high watermark writes resume without a restart; nothing
// acknowledged is lost.
func TestDiskPressure(t *testing.T) {
	dir := t.TempDir()
	var free atomic.Uint64
	free.Store(1 << 30)
	opts := store.Options{FreeSpace: func(string) (uint64, error) { return free.Load(), nil }}
	db, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(db.Metrics()...)
	ctx := context.Background()
	ballast := filepath.Join(dir, "BALLAST")
	if _, err := os.Stat(ballast); err != nil {
		t.Fatalf("no ballast reserved: %v", err)
	}
	acked := uint64(0)
	update := func() error {
		return db.UpdateWitnessState(ctx, "log", func(old store.WitnessState, _ bool) (store.WitnessState, error) {
			return store.WitnessState{Size: old.Size + 1}, nil
		})
	}
	// waitFor updates until cond holds of the result, or fails.
	waitFor := func(what string, cond func(error) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			err := update()
			if err == nil {
				acked++
			}
			if cond(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last update: %v", what, err)
			}
			<-tick.C
		}
	}
	for range 5 {
		if err := update(); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	// 1 MB left (plus the ballast): below the 16 MB low watermark.
	free.Store(1 << 20)
	waitFor("writes refused under pressure", func(err error) bool { return errors.Is(err, store.ErrDiskPressure) })
	if err := update(); !errors.Is(err, store.ErrDiskPressure) || !strings.Contains(err.Error(), "low watermark") {
		t.Fatalf("update under pressure: %v", err)
	}
	if reason, err := db.Degraded(); reason != "disk_pressure" || !errors.Is(err, store.ErrDiskPressure) {
		t.Fatalf("Degraded() = %q, %v", reason, err)
	}
	if _, err := os.Stat(ballast); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ballast kept under pressure: %v", err)
	}
	if st, err := db.WitnessState(ctx, "log"); err != nil || st.Size != acked {
		t.Fatalf("read under pressure: %+v, %v; want size %d", st, err, acked)
	}
	if n := metricSum(t, reg, "vigil_store_writes_refused_total"); n < 2 {
		t.Errorf("%v writes refused counted", n)
	}
	// Between the watermarks: still refused.
	free.Store(20 << 20)
	if err := update(); !errors.Is(err, store.ErrDiskPressure) {
		t.Fatalf("update between the watermarks: %v", err)
	}
	free.Store(1 << 30)
	waitFor("writes resumed", func(err error) bool { return err == nil })
	if reason, err := db.Degraded(); reason != "" || err != nil {
		t.Fatalf("Degraded() after recovery = %q, %v", reason, err)
	}
	if _, err := os.Stat(ballast); err != nil {
		t.Errorf("ballast not reserved again: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Start-up below the watermark fails, naming the free space.
	free.Store(1 << 20)
	if _, err := store.Open(dir, opts); !errors.Is(err, store.ErrDiskPressure) || !strings.Contains(err.Error(), "MB free") {
		t.Fatalf("opening under pressure: %v", err)
	}
	free.Store(1 << 30)
	db, err = store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if st, err := db.WitnessState(ctx, "log"); err != nil || st.Size != acked {
		t.Fatalf("after reopening: %+v, %v; want size %d", st, err, acked)
	}
}

// metricSum sums the counter or gauge named name across its labels.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
