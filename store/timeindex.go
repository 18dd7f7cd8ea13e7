package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The time index orders each log's checkpoint records by first sighting,
// so that queries by time read only the records of the period asked for.
//
//	"ct/" || SHA-256(origin) || uint64 first-seen unix nanos || uint64 size || root -> empty
//	"ctm"                                                     -> uint64 Badger version indexed through
//
// It is kept beside the records rather than written with them: before each
// query the index catches up with the records changed since the version it
// was built through (a Badger iterator with SinceTs skips every table older
// than that), so a store that predates the index gets it, in one pass over
// its records, on the first query by time, and afterwards each query pays
// only for the records merged since the previous one. Indexing is
// idempotent (a record's first sighting never changes), so a pass cut short
// by a crash is simply done again.
const (
	checkpointTimePrefix = "ct/"
	checkpointTimeMark   = "ctm"
	// timeIndexBatch bounds the index keys written in one transaction.
	timeIndexBatch = 1000
	timeKeyLen     = len(checkpointTimePrefix) + sha256.Size + 8 + 8 + 32
)

// timeIndexMu serialises catch-ups of the time index (of every store in
// the process: there is one per node).
var timeIndexMu sync.Mutex

func checkpointTimeKey(originHash []byte, firstSeen time.Time, size uint64, root [32]byte) []byte {
	k := make([]byte, 0, timeKeyLen)
	k = append(append(k, checkpointTimePrefix...), originHash...)
	k = binary.BigEndian.AppendUint64(k, nanos(firstSeen))
	k = binary.BigEndian.AppendUint64(k, size)
	return append(k, root[:]...)
}

// recordKeyOfTimeKey is the checkpoint record key a time index key points at.
func recordKeyOfTimeKey(k []byte) []byte {
	h := k[len(checkpointTimePrefix) : len(checkpointTimePrefix)+sha256.Size]
	rest := k[len(checkpointTimePrefix)+sha256.Size+8:]
	out := append([]byte(checkpointPrefix), h...)
	return append(out, rest...)
}

// IndexCheckpointTimes brings the time index up to date with the checkpoint
// records. Queries by time call it; a node may also call it at open to pay
// for a first build before the first query.
func (d *DB) IndexCheckpointTimes(ctx context.Context) error {
	timeIndexMu.Lock()
	defer timeIndexMu.Unlock()
	var mark uint64
	if err := d.view("checkpoint_time_mark", func(txn *badger.Txn) error {
		v, err := get(txn, []byte(checkpointTimeMark))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(v) != 8 {
			return fmt.Errorf("%w: time index mark", ErrCorrupt)
		}
		mark = binary.BigEndian.Uint64(v)
		return nil
	}); err != nil {
		return err
	}
	// Index keys are written in batches while the scan goes on, so the
	// first build over a large store holds one batch in memory, not one
	// key per record. The mark is the scan's read version, written with
	// the last batch: every record version up to it has been indexed.
	var readTs uint64
	var batch [][]byte
	wrote := false
	flush := func(last bool) error {
		if len(batch) == 0 && (!last || !wrote) {
			return nil
		}
		keys := batch
		batch = nil
		wrote = true
		return d.commitGossip(ctx, "checkpoint_time_index", func(txn *badger.Txn) error {
			for _, k := range keys {
				if err := txn.Set(k, nil); err != nil {
					return err
				}
			}
			if last {
				return txn.Set([]byte(checkpointTimeMark), binary.BigEndian.AppendUint64(nil, readTs))
			}
			return nil
		}, nil)
	}
	err := d.view("checkpoint_time_scan", func(txn *badger.Txn) error {
		readTs = txn.ReadTs()
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(checkpointPrefix), SinceTs: mark})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := it.Item().KeyCopy(nil)
			rec, ok, err := getCheckpoint(txn, key)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			h := key[len(checkpointPrefix) : len(checkpointPrefix)+sha256.Size]
			batch = append(batch, checkpointTimeKey(h, rec.FirstSeen, rec.Size, rec.Root))
			if len(batch) == timeIndexBatch {
				if err := flush(false); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		err = flush(true)
	}
	if err != nil {
		return fmt.Errorf("indexing checkpoints by time: %w", err)
	}
	// With nothing to index the mark stays: a query must not write.
	return nil
}

// TimeCursor is where a page of CheckpointsByTime ends: pass it back to
// read the next page. It is opaque bytes (callers carry it hex-encoded).
type TimeCursor []byte

// CheckpointsByTime returns up to limit records of origin first seen in
// [since, until) (a zero until bounds nothing), oldest first, continuing
// after cursor (nil for the first page), and the cursor of the next page
// (nil on the last page). The index is brought up to date first.
func (d *DB) CheckpointsByTime(ctx context.Context, origin string, since, until time.Time, after TimeCursor, limit int) ([]CheckpointRecord, TimeCursor, error) {
	if limit <= 0 {
		return nil, nil, nil
	}
	if err := d.IndexCheckpointTimes(ctx); err != nil {
		return nil, nil, err
	}
	h := sha256.Sum256([]byte(origin))
	prefix := append([]byte(checkpointTimePrefix), h[:]...)
	start := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), nanos(since))
	if len(after) > 0 {
		if len(after) != timeKeyLen-len(prefix) {
			return nil, nil, fmt.Errorf("%w: bad time cursor", ErrBadCursor)
		}
		if c := append(append([]byte(nil), prefix...), after...); string(c) >= string(start) {
			start = append(c, 0)
		}
	}
	var end []byte
	if !until.IsZero() {
		end = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), nanos(until))
	}
	var out []CheckpointRecord
	var next TimeCursor
	err := d.view("checkpoint_by_time", func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if end != nil && string(k) >= string(end) {
				return nil
			}
			if len(out) == limit {
				next = TimeCursor(out[len(out)-1].timeSuffix())
				return nil
			}
			rec, ok, err := getCheckpoint(txn, recordKeyOfTimeKey(k))
			if err != nil {
				return err
			}
			if ok {
				out = append(out, rec)
			}
		}
		return nil
	})
	return out, next, err
}

// timeSuffix is the part of rec's time index key after the origin hash.
func (rec CheckpointRecord) timeSuffix() []byte {
	k := binary.BigEndian.AppendUint64(nil, nanos(rec.FirstSeen))
	k = binary.BigEndian.AppendUint64(k, rec.Size)
	return append(k, rec.Root[:]...)
}

// ErrBadCursor means a paging cursor does not decode.
var ErrBadCursor = errors.New("bad cursor")

// nanos is t in unix nanoseconds, clamped to the index's range.
func nanos(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}
