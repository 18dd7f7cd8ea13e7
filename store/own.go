package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// OwnFloor is, per log, the newest checkpoint the node has seen carrying
// its own witness's valid cosignature, from any source (gossip, the
// catch-up sync, evidence, its peers' answers after a start). A witness
// never cosigns below it or beside it (witness.OwnHistory).
type OwnFloor struct {
	Size uint64
	Root [32]byte
	// Note is the signed note: the log's signature and the witness's
	// cosignature (others too, as seen).
	Note []byte
	// Conflict is set once two own-cosigned checkpoints of one size with
	// different roots were seen: ConflictSize and ConflictRoot name the
	// other one. It stays set; the log needs an operator.
	Conflict     bool
	ConflictSize uint64
	ConflictRoot [32]byte
}

const ownPrefix = "o/"

func ownKey(origin string) []byte { return append([]byte(ownPrefix), origin...) }

// OwnFloor returns the own-cosigned floor of origin, or ErrNotFound.
func (d *DB) OwnFloor(ctx context.Context, origin string) (OwnFloor, error) {
	var f OwnFloor
	err := d.view("own_get", func(txn *badger.Txn) error {
		v, err := get(txn, ownKey(origin))
		if err != nil {
			return err
		}
		f, err = decodeOwnFloor(v)
		return err
	})
	return f, err
}

// RaiseOwnFloor records that (size, root) of origin, whose signed note is
// note, carries the witness's own cosignature: it becomes the floor if it
// is newer than the stored one, and it marks a conflict if it has the
// floor's size and another root. It returns the floor as stored after the
// call. The write is gossip-durable (synced within the gossip sync delay,
// sync.go): the witness state a floor is adopted into is synced, and a
// sync covers every write before it.
func (d *DB) RaiseOwnFloor(ctx context.Context, origin string, size uint64, root [32]byte, note []byte) (OwnFloor, error) {
	key := ownKey(origin)
	var out OwnFloor
	err := d.commitGossip(ctx, "own_raise", func(txn *badger.Txn) error {
		cur, exists := OwnFloor{}, false
		v, err := get(txn, key)
		switch {
		case err == nil:
			if cur, err = decodeOwnFloor(v); err != nil {
				return err
			}
			exists = true
		case !errors.Is(err, ErrNotFound):
			return err
		}
		next := cur
		switch {
		case !exists || size > cur.Size:
			next.Size, next.Root, next.Note = size, root, note
		case size == cur.Size && root != cur.Root && !cur.Conflict:
			next.Conflict, next.ConflictSize, next.ConflictRoot = true, size, root
		default:
			out = cur
			return nil
		}
		if err := txn.Set(key, encodeOwnFloor(next)); err != nil {
			return err
		}
		out = next
		return nil
	}, nil)
	return out, err
}

// Encoding: version byte 1 || uint64 size || root || flags (1: conflict) ||
// uint64 conflict size || conflict root || note.
func encodeOwnFloor(f OwnFloor) []byte {
	b := make([]byte, 0, 1+8+32+1+8+32+len(f.Note))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, f.Size)
	b = append(b, f.Root[:]...)
	var flags byte
	if f.Conflict {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, f.ConflictSize)
	b = append(b, f.ConflictRoot[:]...)
	return append(b, f.Note...)
}

const ownHeader = 1 + 8 + 32 + 1 + 8 + 32

func decodeOwnFloor(b []byte) (OwnFloor, error) {
	var f OwnFloor
	if len(b) < ownHeader || b[0] != 1 || b[41] > 1 {
		return f, fmt.Errorf("%w: own floor of %d bytes", ErrCorrupt, len(b))
	}
	f.Size = binary.BigEndian.Uint64(b[1:9])
	copy(f.Root[:], b[9:41])
	f.Conflict = b[41] == 1
	f.ConflictSize = binary.BigEndian.Uint64(b[42:50])
	copy(f.ConflictRoot[:], b[50:82])
	f.Note = append([]byte(nil), b[ownHeader:]...)
	return f, nil
}
