package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// CheckpointRecord is the best-known copy of one checkpoint, identified by
// (origin, size, root), together with how it was first sighted. Nodes merge
// every valid cosignature they see into Note, so any node can serve a
// checkpoint with k of n roster cosignatures.
type CheckpointRecord struct {
	Origin string   `json:"origin"`
	Size   uint64   `json:"size"`
	Root   [32]byte `json:"root"`
	// Note is the signed note: the log's signature(s) and the union of the
	// valid roster cosignatures known so far.
	Note []byte `json:"note"`
	// Cosigners counts the distinct roster witnesses with a valid
	// cosignature in Note.
	Cosigners int `json:"cosigners"`
	// FirstSeen, FirstObserver and FirstSource describe the first sighting.
	FirstSeen     time.Time `json:"first_seen"`
	FirstObserver string    `json:"first_observer,omitempty"`
	FirstSource   string    `json:"first_source,omitempty"`
	// Sightings counts the sightings merged into this record.
	Sightings uint64 `json:"sightings"`
}

const checkpointPrefix = "c/"

// checkpointOriginPrefix is "c/" || SHA-256(origin): fixed length, so any
// origin bytes sort and scan correctly.
func checkpointOriginPrefix(origin string) []byte {
	h := sha256.Sum256([]byte(origin))
	return append([]byte(checkpointPrefix), h[:]...)
}

func checkpointKey(origin string, size uint64, root [32]byte) []byte {
	k := binary.BigEndian.AppendUint64(checkpointOriginPrefix(origin), size)
	return append(k, root[:]...)
}

// MergeCheckpoint atomically creates or updates the record of (origin, size,
// root). fn receives the current record (exists is false if there is none)
// and returns the record to store and whether to write it; returning false
// writes nothing. fn must not modify old's byte slices. When MergeCheckpoint
// returns nil the record is written, and synced to disk within the gossip
// sync delay (sync.go). The record's identity fields are forced to the
// arguments.
func (d *DB) MergeCheckpoint(ctx context.Context, origin string, size uint64, root [32]byte, fn func(old CheckpointRecord, exists bool) (CheckpointRecord, bool, error)) error {
	key := checkpointKey(origin, size, root)
	ckey := string(key)
	// Most sightings change nothing; decide that without the committer.
	skip := false
	if old, ok := d.records.get(ckey); ok {
		_, write, err := fn(old, true)
		skip = err == nil && !write
	} else if err := d.view("checkpoint_merge_check", func(txn *badger.Txn) error {
		old, exists, err := getCheckpoint(txn, key)
		if err != nil || !exists {
			return err
		}
		_, write, err := fn(old, true)
		skip = err == nil && !write
		return nil
	}); err != nil {
		return err
	}
	if skip {
		return nil
	}
	return d.commitGossip(ctx, "checkpoint_merge", func(txn *badger.Txn) error {
		old, exists := d.records.current(ckey)
		if !exists {
			var err error
			if old, exists, err = getCheckpoint(txn, key); err != nil {
				return err
			}
		}
		next, write, err := fn(old, exists)
		if err != nil || !write {
			return err
		}
		next.Origin, next.Size, next.Root = origin, size, root
		if err := txn.Set(key, encodeCheckpointRecord(next)); err != nil {
			return err
		}
		d.records.stage(ckey, next)
		return nil
	}, func() { d.records.publish(ckey) })
}

func getCheckpoint(txn *badger.Txn, key []byte) (CheckpointRecord, bool, error) {
	var rec CheckpointRecord
	v, err := get(txn, key)
	if errors.Is(err, ErrNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	if rec, err = decodeCheckpointRecord(v); err != nil {
		return rec, false, fmt.Errorf("%w: checkpoint record: %v", ErrCorrupt, err)
	}
	return rec, true, nil
}

// Checkpoint returns the record of (origin, size, root), or ErrNotFound.
func (d *DB) Checkpoint(ctx context.Context, origin string, size uint64, root [32]byte) (CheckpointRecord, error) {
	var rec CheckpointRecord
	err := d.view("checkpoint_get", func(txn *badger.Txn) error {
		r, ok, err := getCheckpoint(txn, checkpointKey(origin, size, root))
		if err == nil && !ok {
			err = ErrNotFound
		}
		rec = r
		return err
	})
	return rec, err
}

// CheckpointsAtSize returns every record of origin at size: more than one
// means the log signed different roots for one size.
func (d *DB) CheckpointsAtSize(ctx context.Context, origin string, size uint64) ([]CheckpointRecord, error) {
	prefix := binary.BigEndian.AppendUint64(checkpointOriginPrefix(origin), size)
	var out []CheckpointRecord
	err := d.view("checkpoint_at_size", func(txn *badger.Txn) error {
		return scan(txn, prefix, false, func(_ []byte, v []byte) (bool, error) {
			rec, err := decodeCheckpointRecord(v)
			if err != nil {
				return false, fmt.Errorf("%w: checkpoint record: %v", ErrCorrupt, err)
			}
			out = append(out, rec)
			return true, nil
		})
	})
	return out, err
}

// NewestCheckpoint returns the record of origin with the largest size that
// carries at least minCosigners roster cosignatures, or ErrNotFound.
// If several roots share that size (a split view) the one with more
// cosignatures wins.
func (d *DB) NewestCheckpoint(ctx context.Context, origin string, minCosigners int) (CheckpointRecord, error) {
	var best CheckpointRecord
	found := false
	err := d.view("checkpoint_newest", func(txn *badger.Txn) error {
		return scan(txn, checkpointOriginPrefix(origin), true, func(_ []byte, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			rec, err := decodeCheckpointRecord(v)
			if err != nil {
				return false, fmt.Errorf("%w: checkpoint record: %v", ErrCorrupt, err)
			}
			if found && rec.Size < best.Size {
				return false, nil
			}
			if rec.Cosigners >= minCosigners && (!found || rec.Cosigners > best.Cosigners) {
				best, found = rec, true
			}
			return true, nil
		})
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return best, err
}

// CheckpointHistory returns up to limit records of origin with size below
// beforeSize (use math.MaxUint64 for the newest), largest size first, and the
// beforeSize to pass for the next page (0 when there is none). Records of
// one size are never split across pages.
func (d *DB) CheckpointHistory(ctx context.Context, origin string, beforeSize uint64, limit int) ([]CheckpointRecord, uint64, error) {
	if limit <= 0 {
		return nil, 0, nil
	}
	var out []CheckpointRecord
	var next uint64
	prefix := checkpointOriginPrefix(origin)
	err := d.view("checkpoint_history", func(txn *badger.Txn) error {
		// No prefetching: values are small and live in the LSM tree, so
		// prefetch only copies them, and callers often stop early.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		if beforeSize == 0 {
			return nil
		}
		// Reverse iteration seeks to the largest key <= seek.
		seek := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), beforeSize-1)
		seek = append(seek, bytes32ff[:]...)
		for it.Seek(seek); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var rec CheckpointRecord
			if err := it.Item().Value(func(v []byte) (err error) {
				rec, err = decodeCheckpointRecord(v)
				return err
			}); err != nil {
				return fmt.Errorf("%w: checkpoint record: %v", ErrCorrupt, err)
			}
			if len(out) >= limit && rec.Size != out[len(out)-1].Size {
				next = out[len(out)-1].Size
				break
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, next, err
}

var bytes32ff = [32]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// scan calls fn for each key under prefix (in reverse order if reverse) until
// fn returns false or an error.
func scan(txn *badger.Txn, prefix []byte, reverse bool, fn func(k, v []byte) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse})
	defer it.Close()
	start := prefix
	if reverse {
		start = append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		start = append(start, bytes32ff[:]...)
	}
	for it.Seek(start); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		more, err := fn(it.Item().Key(), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}
