package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// EvidenceRecord is one piece of verified split-view evidence. Evidence is
// never deleted or overwritten: the first copy stored under an ID stays.
type EvidenceRecord struct {
	// ID is the evidence's stable identifier (gossip/evidence.ID).
	ID string `json:"id"`
	// Kind is the evidence kind's textual name.
	Kind   string `json:"kind"`
	Origin string `json:"origin"`
	// Witness is the equivocating witness's roster name, if any.
	Witness string `json:"witness,omitempty"`
	// Statement says what the evidence proves.
	Statement string    `json:"statement"`
	Stored    time.Time `json:"stored"`
	// Data is the encoded proto Evidence message.
	Data []byte `json:"data"`
}

const (
	evidencePrefix      = "e/"
	evidenceOrderPrefix = "eo/" // "eo/" || uint64 stored unix nanos || id -> empty
)

func evidenceKey(id string) []byte { return append([]byte(evidencePrefix), id...) }

func evidenceOrderKey(t time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte(evidenceOrderPrefix), uint64(t.UnixNano()))
	return append(k, id...)
}

// evidenceOrderID is the evidence ID in an evidenceOrderKey.
func evidenceOrderID(key []byte) string { return string(key[len(evidenceOrderPrefix)+8:]) }

// PutEvidence stores rec under rec.ID unless evidence with that ID exists.
// It reports whether rec was added; the write is durable when it returns.
func (d *DB) PutEvidence(ctx context.Context, rec EvidenceRecord) (bool, error) {
	if rec.ID == "" {
		return false, errors.New("storing evidence: empty ID")
	}
	if rec.Stored.IsZero() {
		rec.Stored = time.Now()
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	added := false
	err = d.commitUpdate(ctx, "evidence_put", func(txn *badger.Txn) error {
		added = false
		_, err := get(txn, evidenceKey(rec.ID))
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := txn.Set(evidenceKey(rec.ID), v); err != nil {
			return err
		}
		added = true
		return txn.Set(evidenceOrderKey(rec.Stored, rec.ID), nil)
	}, nil)
	return added, err
}

// Evidence returns the evidence with the given ID, or ErrNotFound.
func (d *DB) Evidence(ctx context.Context, id string) (EvidenceRecord, error) {
	var rec EvidenceRecord
	err := d.view("evidence_get", func(txn *badger.Txn) error {
		v, err := get(txn, evidenceKey(id))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("%w: evidence record: %v", ErrCorrupt, err)
		}
		return nil
	})
	return rec, err
}

// ListEvidence returns up to limit evidence records in the order they were
// stored, starting after the record with ID after ("" for the first page).
func (d *DB) ListEvidence(ctx context.Context, after string, limit int) ([]EvidenceRecord, error) {
	var out []EvidenceRecord
	err := d.view("evidence_list", func(txn *badger.Txn) error {
		start := []byte(evidenceOrderPrefix)
		if after != "" {
			v, err := get(txn, evidenceKey(after))
			if err != nil {
				return fmt.Errorf("evidence cursor %q: %w", after, err)
			}
			var rec EvidenceRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: evidence record: %v", ErrCorrupt, err)
			}
			start = append(evidenceOrderKey(rec.Stored, rec.ID), 0)
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(evidenceOrderPrefix)})
		defer it.Close()
		for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := evidenceOrderID(it.Item().Key())
			v, err := get(txn, evidenceKey(id))
			if err != nil {
				return err
			}
			var rec EvidenceRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: evidence record: %v", ErrCorrupt, err)
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// NewestEvidenceIDs returns the IDs of the limit most recently stored
// evidence records, newest first. It reads keys only: a caller that keeps
// what it has already read (evidence never changes) pays for the IDs, not
// for every record, each time it looks for new evidence.
func (d *DB) NewestEvidenceIDs(ctx context.Context, limit int) ([]string, error) {
	var out []string
	err := d.view("evidence_ids", func(txn *badger.Txn) error {
		prefix := []byte(evidenceOrderPrefix)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		// A reverse seek lands on the greatest key not above its target,
		// and the prefix with its last byte incremented is above every key
		// that has the prefix.
		end := append([]byte(nil), prefix...)
		end[len(end)-1]++
		for it.Seek(end); it.Valid() && len(out) < limit; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			out = append(out, evidenceOrderID(it.Item().Key()))
		}
		return nil
	})
	return out, err
}
