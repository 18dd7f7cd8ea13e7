package store

import (
	"context"
	"errors"
	"sort"

	"github.com/dgraph-io/badger/v4"
)

// The notification outbox (package notify) keeps each webhook delivery
// until its receiver has it:
//
//	"nq/" || key -> the notifier's encoding of the delivery
//
// Writes are durable when they return, like evidence: a notification the
// node decided to send survives a crash or a restart.
const outboxPrefix = "nq/"

// OutboxPut stores items (key -> value) in one durable transaction,
// replacing values under keys that exist.
func (d *DB) OutboxPut(ctx context.Context, items map[string][]byte) error {
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		if k == "" {
			return errors.New("outbox: empty key")
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return d.commitUpdate(ctx, "outbox_put", func(txn *badger.Txn) error {
		for _, k := range keys {
			if err := txn.Set([]byte(outboxPrefix+k), items[k]); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// OutboxDelete removes key durably; a missing key is no error.
func (d *DB) OutboxDelete(ctx context.Context, key string) error {
	return d.commitUpdate(ctx, "outbox_delete", func(txn *badger.Txn) error {
		return txn.Delete([]byte(outboxPrefix + key))
	}, nil)
}

// OutboxScan calls fn for each item in key order until fn returns an error.
func (d *DB) OutboxScan(ctx context.Context, fn func(key string, v []byte) error) error {
	return d.view("outbox_scan", func(txn *badger.Txn) error {
		return scan(txn, []byte(outboxPrefix), false, func(k, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			return true, fn(string(k[len(outboxPrefix):]), v)
		})
	})
}
