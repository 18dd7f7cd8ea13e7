package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/store"
)

// syncCount reads vigil_store_syncs_total{reason} from the store's metrics.
func syncCount(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_store_syncs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func mergeOne(ctx context.Context, db *store.DB, i int) error {
	root := [32]byte{byte(i)}
	return db.MergeCheckpoint(ctx, "log", uint64(i), root, func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error) {
		return store.CheckpointRecord{Origin: "log", Size: uint64(i), Root: root, Note: fmt.Appendf(nil, "note %d\n", i), FirstSeen: time.Now()}, true, nil
	})
}

// TestGossipWritesSync: merged sightings are not synced one by one but
// together in the background, within the delay; witness state and evidence
// are synced before their calls return; everything is readable after a
// reopen.
func TestGossipWritesSync(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{GossipSyncDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(db.Metrics()...)
	ctx := context.Background()
	for i := 1; i <= 20; i++ {
		if err := mergeOne(ctx, db, i); err != nil {
			t.Fatal(err)
		}
	}
	if n := syncCount(t, reg, "durable"); n != 0 {
		t.Fatalf("%v durable syncs for gossip writes", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for syncCount(t, reg, "background") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("gossip writes were never synced")
		}
		<-tick.C
	}
	// 20 writes in well under the delay share one or a few syncs.
	if n := syncCount(t, reg, "background"); n > 10 {
		t.Errorf("%v background syncs for 20 writes", n)
	}
	if err := db.UpdateWitnessState(ctx, "log", bump); err != nil {
		t.Fatal(err)
	}
	if n := syncCount(t, reg, "durable"); n != 1 {
		t.Fatalf("%v durable syncs after one witness update, want 1", n)
	}
	if _, err := db.PutEvidence(ctx, store.EvidenceRecord{ID: "e1", Kind: "k", Origin: "log", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n := syncCount(t, reg, "durable"); n != 2 {
		t.Fatalf("%v durable syncs after evidence, want 2", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 1; i <= 20; i++ {
		if _, err := db.Checkpoint(ctx, "log", uint64(i), [32]byte{byte(i)}); err != nil {
			t.Fatalf("checkpoint %d after reopen: %v", i, err)
		}
	}
	if st, err := db.WitnessState(ctx, "log"); err != nil || st.Size != 1 {
		t.Fatalf("witness state after reopen: %+v, %v", st, err)
	}
}

// TestSyncEveryWrite: a negative delay leaves syncing to Badger, per
// write, as before; the committer runs none of its own.
func TestSyncEveryWrite(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{GossipSyncDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(db.Metrics()...)
	ctx := context.Background()
	if err := mergeOne(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateWitnessState(ctx, "log", bump); err != nil {
		t.Fatal(err)
	}
	if d, b := syncCount(t, reg, "durable"), syncCount(t, reg, "background"); d+b != 0 {
		t.Fatalf("committer synced %v + %v times with every write synced by Badger", d, b)
	}
}
