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

// Suspicion records that a log did not let a node check a checkpoint it
// signed, e.g. it would not serve a consistency proof. It is shown to
// operators but is never evidence.
type Suspicion struct {
	Origin string   `json:"origin"`
	Size   uint64   `json:"size"`
	Root   [32]byte `json:"root"`
	// Reason is the latest reason given.
	Reason string    `json:"reason"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Count  uint64    `json:"count"`
}

const suspicionPrefix = "u/"

func suspicionKey(origin string, size uint64, root [32]byte) []byte {
	k := append([]byte(suspicionPrefix), checkpointOriginPrefix(origin)[len(checkpointPrefix):]...)
	k = binary.BigEndian.AppendUint64(k, size)
	return append(k, root[:]...)
}

// RecordSuspicion adds an occurrence of a suspicion about the checkpoint
// (origin, size, root).
func (d *DB) RecordSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, reason string, at time.Time) error {
	key := suspicionKey(origin, size, root)
	return d.commitGossip(ctx, "suspicion_record", func(txn *badger.Txn) error {
		s := Suspicion{Origin: origin, Size: size, Root: root, First: at}
		v, err := get(txn, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("%w: suspicion record: %v", ErrCorrupt, err)
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		s.Reason, s.Last = reason, at
		s.Count++
		nv, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return txn.Set(key, nv)
	}, nil)
}

// Suspicions calls fn for every recorded suspicion.
func (d *DB) Suspicions(ctx context.Context, fn func(Suspicion) error) error {
	return d.view("suspicion_list", func(txn *badger.Txn) error {
		return scan(txn, []byte(suspicionPrefix), false, func(_, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			var s Suspicion
			if err := json.Unmarshal(v, &s); err != nil {
				return false, fmt.Errorf("%w: suspicion record: %v", ErrCorrupt, err)
			}
			return true, fn(s)
		})
	})
}
