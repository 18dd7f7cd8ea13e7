package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// The witness timeline (the feed's record of what each roster witness
// cosigned, in hourly counters over 30 days) is kept as opaque records by
// key: the feed owns their encoding. They are observations, not witness
// state: they are written through the gossip commit path (synced within
// the gossip sync delay), and a lost record costs history, never safety.

const witnessTimelinePrefix = "wt/"

// maxTimelineKey bounds a timeline record's key.
const maxTimelineKey = 1024

// WitnessTimeline returns every witness timeline record by key.
func (d *DB) WitnessTimeline(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := d.view("witness_timeline_list", func(txn *badger.Txn) error {
		return scan(txn, []byte(witnessTimelinePrefix), false, func(k, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			out[strings.TrimPrefix(string(k), witnessTimelinePrefix)] = append([]byte(nil), v...)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutWitnessTimeline writes records, replacing those with the same keys.
// Each record is its own update: the records are independent, and together
// (one per roster witness, each with a line per log) they outgrow Badger's
// per-transaction cap long before any one of them does. On an error the
// records before it in key order are written, the rest are not.
func (d *DB) PutWitnessTimeline(ctx context.Context, records map[string][]byte) error {
	for k := range records {
		if k == "" || len(k) > maxTimelineKey {
			return fmt.Errorf("witness timeline record key %q: empty or longer than %d bytes", k, maxTimelineKey)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(records)) {
		v := records[k]
		if err := d.commitGossip(ctx, "witness_timeline_put", func(txn *badger.Txn) error {
			return txn.Set([]byte(witnessTimelinePrefix+k), v)
		}, nil); err != nil {
			return fmt.Errorf("witness timeline record %q (%d bytes): %w", k, len(v), err)
		}
	}
	return nil
}

// maxTimelineDeletes bounds the deletions of one update.
const maxTimelineDeletes = 1024

// DeleteWitnessTimeline deletes the records with the given keys (a key
// with no record is no error), in updates of at most maxTimelineDeletes.
func (d *DB) DeleteWitnessTimeline(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if k == "" || len(k) > maxTimelineKey {
			return fmt.Errorf("witness timeline record key %q: empty or longer than %d bytes", k, maxTimelineKey)
		}
	}
	for batch := range slices.Chunk(keys, maxTimelineDeletes) {
		if err := d.commitGossip(ctx, "witness_timeline_delete", func(txn *badger.Txn) error {
			for _, k := range batch {
				if err := txn.Delete([]byte(witnessTimelinePrefix + k)); err != nil {
					return err
				}
			}
			return nil
		}, nil); err != nil {
			return fmt.Errorf("deleting %d witness timeline records: %w", len(batch), err)
		}
	}
	return nil
}
