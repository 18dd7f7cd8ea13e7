package store_test

import (
	"bytes"
	"context"
	"testing"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// TestLargestRecordsFit writes the largest evidence and checkpoint records
// gossip admits, each in a transaction of its own, and reads them back after
// a reopen. Badger caps a transaction at 15 % of its memtable (store.go sizes
// the memtable small for RSS), so shrinking it must not make a valid record
// unstorable.
func TestLargestRecordsFit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xa5}, vpb.MaxEvidenceSize)
	if _, err := db.PutEvidence(ctx, store.EvidenceRecord{ID: "big", Kind: "k", Origin: "log", Data: data}); err != nil {
		t.Fatalf("PutEvidence with %d bytes of evidence: %v", len(data), err)
	}
	note := bytes.Repeat([]byte("n"), vpb.MaxNoteSize)
	var root [32]byte
	if err := db.MergeCheckpoint(ctx, "log", 7, root, func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error) {
		return store.CheckpointRecord{Note: note}, true, nil
	}); err != nil {
		t.Fatalf("MergeCheckpoint with a %d-byte note: %v", len(note), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(dir, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev, err := db.Evidence(ctx, "big")
	if err != nil || !bytes.Equal(ev.Data, data) {
		t.Fatalf("evidence after reopen: %d bytes, err %v; want %d bytes", len(ev.Data), err, len(data))
	}
	cp, err := db.Checkpoint(ctx, "log", 7, root)
	if err != nil || !bytes.Equal(cp.Note, note) {
		t.Fatalf("checkpoint after reopen: %d-byte note, err %v; want %d", len(cp.Note), err, len(note))
	}
}
