package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func sameRecord(a, b CheckpointRecord) bool {
	return a.Origin == b.Origin && a.Size == b.Size && a.Root == b.Root && bytes.Equal(a.Note, b.Note) &&
		a.Cosigners == b.Cosigners && a.FirstSeen.Equal(b.FirstSeen) && a.FirstObserver == b.FirstObserver &&
		a.FirstSource == b.FirstSource && a.Sightings == b.Sightings
}

var codecRecords = []CheckpointRecord{
	{},
	{Origin: "example.com/log", Size: 12, Root: [32]byte{1, 2, 3}, Note: []byte("example.com/log\n12\nAQID\n\n— example.com/log AAAAAQ==\n"), Cosigners: 3,
		FirstSeen: time.Date(2026, 12, 7, 12, 0, 1, 500, time.UTC), FirstObserver: "w0", FirstSource: "gossip", Sightings: 7},
	{Origin: "o", Size: math.MaxUint64, Root: [32]byte{31: 0xff}, Cosigners: 0, FirstSeen: time.Unix(-5, 999_999_999).UTC(), Sightings: math.MaxUint64},
}

// TestCheckpointRecordLayout: each record survives the binary layout and
// the JSON one (what older stores hold); the binary one is much smaller.
func TestCheckpointRecordLayout(t *testing.T) {
	for i, rec := range codecRecords {
		b := encodeCheckpointRecord(rec)
		if b[0] != checkpointRecordV1 {
			t.Fatalf("record %d: layout byte %#x", i, b[0])
		}
		got, err := decodeCheckpointRecord(b)
		if err != nil || !sameRecord(got, rec) {
			t.Errorf("record %d: binary round trip = %+v, %v", i, got, err)
		}
		j, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeCheckpointRecord(j); err != nil || !sameRecord(got, rec) {
			t.Errorf("record %d: JSON = %+v, %v", i, got, err)
		}
		if i == 1 && len(b)*2 > len(j) {
			t.Errorf("binary record %d bytes, JSON %d: want less than half", len(b), len(j))
		}
	}
}

// TestCheckpointRecordMalformed: a damaged record is an error, never a
// panic or a huge allocation.
func TestCheckpointRecordMalformed(t *testing.T) {
	good := encodeCheckpointRecord(codecRecords[1])
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"empty", nil},
		{"unknown layout", append([]byte{0x02}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"huge field", []byte{checkpointRecordV1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"short root", []byte{checkpointRecordV1, 1, 'o', 5, 1, 2}},
		{"bad JSON", []byte(`{"size":"x"}`)},
		{"bad time flag", func() []byte {
			b := encodeCheckpointRecord(CheckpointRecord{Origin: "o"})
			b[len(b)-4] = 7 // the flag, before the two empty strings and the sightings
			return b
		}()},
	} {
		if _, err := decodeCheckpointRecord(tc.v); !errors.Is(err, errRecord) {
			t.Errorf("%s: err = %v, want errRecord", tc.name, err)
		}
	}
}

// TestMergeWritesBinaryRecords: MergeCheckpoint stores the binary layout.
func TestMergeWritesBinaryRecords(t *testing.T) {
	db, err := Open(t.TempDir(), Options{GossipSyncDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := codecRecords[1]
	if err := db.MergeCheckpoint(context.Background(), rec.Origin, rec.Size, rec.Root, func(CheckpointRecord, bool) (CheckpointRecord, bool, error) {
		return rec, true, nil
	}); err != nil {
		t.Fatal(err)
	}
	err = db.view("test", func(txn *badger.Txn) error {
		v, err := get(txn, checkpointKey(rec.Origin, rec.Size, rec.Root))
		if err != nil {
			return err
		}
		if !bytes.Equal(v, encodeCheckpointRecord(rec)) {
			t.Errorf("stored %q, want the binary layout", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzCheckpointRecord: decoding any bytes errs or yields a record that
// survives the binary layout unchanged.
func FuzzCheckpointRecord(f *testing.F) {
	for _, rec := range codecRecords {
		f.Add(encodeCheckpointRecord(rec))
		j, _ := json.Marshal(rec)
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeCheckpointRecord(v)
		if err != nil {
			if !errors.Is(err, errRecord) {
				t.Fatalf("error %v does not wrap errRecord", err)
			}
			return
		}
		again, err := decodeCheckpointRecord(encodeCheckpointRecord(rec))
		if err != nil || !sameRecord(again, rec) {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", rec, again, err)
		}
	})
}
