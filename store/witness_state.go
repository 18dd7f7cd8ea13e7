package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// WitnessState is what a witness keeps per log: the latest checkpoint it
// cosigned (size and root) and that checkpoint as a signed note carrying the
// log's signature and the witness's own cosignature.
type WitnessState struct {
	Size       uint64
	Root       [32]byte
	Checkpoint []byte
}

const witnessPrefix = "w/"

func witnessKey(origin string) []byte { return append([]byte(witnessPrefix), origin...) }

// WitnessState returns the stored state for origin, or ErrNotFound. It
// returns only states that are synced: one whose batch is still being
// synced is not, though Badger shows it (DESIGN invariant 1: its
// cosignature must not leave the node yet); the read then waits for it.
func (d *DB) WitnessState(ctx context.Context, origin string) (WitnessState, error) {
	var st WitnessState
	var err error
	for {
		if cached, ok := d.witness.get(origin); ok {
			select {
			case <-d.closing:
				return WitnessState{}, ErrClosed
			default:
				return cached, nil
			}
		}
		err = d.view("witness_get", func(txn *badger.Txn) error {
			v, err := get(txn, witnessKey(origin))
			if err != nil {
				return err
			}
			st, err = decodeWitnessState(v)
			return err
		})
		settled, ok, wait := d.witness.settledValue(origin)
		if ok {
			return settled, nil
		}
		if wait == nil {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return WitnessState{}, ctx.Err()
		case <-d.closing:
			return WitnessState{}, ErrClosed
		}
	}
	if errors.Is(err, ErrNotFound) {
		if adopted, ok := d.rb.adoptedState(origin); ok {
			return adopted, nil
		}
	}
	return st, err
}

// UpdateWitnessState atomically replaces the state of origin with what fn
// returns given the current state (exists is false for a log never cosigned).
// If fn returns an error nothing is written and the error is returned as is.
// A log whose state Open found rolled back is refused with ErrRolledBack; a
// store short of disk or failing to write refuses with ErrDiskPressure or
// ErrDiskFault.
// The write is durable when UpdateWitnessState returns nil. fn may run more
// than once if concurrent updates race; only its last run takes effect.
func (d *DB) UpdateWitnessState(ctx context.Context, origin string, fn func(old WitnessState, exists bool) (WitnessState, error)) error {
	key := witnessKey(origin)
	return d.commitUpdate(ctx, "witness_update", func(txn *badger.Txn) error {
		// DESIGN invariant 1: never cosign from a rolled-back state.
		if err := d.rb.refuse(origin); err != nil {
			return err
		}
		old, exists := d.witness.current(origin)
		adopted := false
		if !exists {
			v, err := get(txn, key)
			exists = err == nil
			switch {
			case exists:
				if old, err = decodeWitnessState(v); err != nil {
					return err
				}
			case !errors.Is(err, ErrNotFound):
				return err
			default:
				// Recovered from the journal, not yet rewritten.
				old, exists = d.rb.adoptedState(origin)
				adopted = exists
			}
		}
		next, err := fn(old, exists)
		if err != nil {
			return err
		}
		if err := txn.Set(key, encodeWitnessState(next)); err != nil {
			return err
		}
		if adopted {
			if err := txn.Delete(adoptedKey(logHash(origin))); err != nil {
				return err
			}
		}
		d.witness.stage(origin, next)
		return nil
	}, func() { d.witness.publish(origin) })
}

// WitnessStates calls fn for every stored witness state, in origin order.
func (d *DB) WitnessStates(ctx context.Context, fn func(origin string, st WitnessState) error) error {
	return d.view("witness_list", func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(witnessPrefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			st, err := decodeWitnessState(v)
			if err != nil {
				return err
			}
			origin := string(it.Item().Key()[len(witnessPrefix):])
			if err := fn(origin, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// Encoding: version byte 1 || uint64 size || 32-byte root || checkpoint.
func encodeWitnessState(s WitnessState) []byte {
	b := make([]byte, 0, 1+8+32+len(s.Checkpoint))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, s.Size)
	b = append(b, s.Root[:]...)
	return append(b, s.Checkpoint...)
}

func decodeWitnessState(b []byte) (WitnessState, error) {
	var s WitnessState
	if len(b) < 41 || b[0] != 1 {
		return s, fmt.Errorf("%w: witness state of %d bytes", ErrCorrupt, len(b))
	}
	s.Size = binary.BigEndian.Uint64(b[1:9])
	copy(s.Root[:], b[9:41])
	s.Checkpoint = b[41:]
	return s, nil
}
