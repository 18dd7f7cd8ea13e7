package store

import (
	"context"
	"fmt"
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

// PutWitnessTimeline writes records in one transaction, replacing those
// with the same keys.
func (d *DB) PutWitnessTimeline(ctx context.Context, records map[string][]byte) error {
	for k := range records {
		if k == "" || len(k) > maxTimelineKey {
			return fmt.Errorf("witness timeline record key %q: empty or longer than %d bytes", k, maxTimelineKey)
		}
	}
	return d.commitGossip(ctx, "witness_timeline_put", func(txn *badger.Txn) error {
		for k, v := range records {
			if err := txn.Set([]byte(witnessTimelinePrefix+k), v); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}
