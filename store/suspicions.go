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
//
// A suspicion with Other set is an unproven divergence: two validly signed
// checkpoints of one log, of different sizes, that nobody has yet shown to
// be consistent (a push-only log, unreachable tiles). It stays open until a
// proof settles it either way (Resolved).
type Suspicion struct {
	Origin string   `json:"origin"`
	Size   uint64   `json:"size"`
	Root   [32]byte `json:"root"`
	// Cosigners are the roster witnesses known to have cosigned (Size,
	// Root) when the suspicion was last recorded.
	Cosigners []string `json:"cosigners,omitempty"`
	// Other is the smaller checkpoint of an unproven divergence.
	Other *SuspicionSide `json:"other,omitempty"`
	// Reason is the latest reason given.
	Reason string    `json:"reason"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Count  uint64    `json:"count"`
	// Resolved is empty while the suspicion is open, else how it ended:
	// ResolvedConsistent or ResolvedEvidence.
	Resolved   string    `json:"resolved,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
}

// SuspicionSide is one checkpoint of an unproven divergence.
type SuspicionSide struct {
	Size      uint64   `json:"size"`
	Root      [32]byte `json:"root"`
	Cosigners []string `json:"cosigners,omitempty"`
}

// How a suspicion ended.
const (
	// ResolvedConsistent: a proof showed the checkpoints consistent.
	ResolvedConsistent = "consistent"
	// ResolvedEvidence: a proof showed a split view; evidence holds it.
	ResolvedEvidence = "evidence"
)

// Open reports whether the suspicion is still unresolved.
func (s Suspicion) Open() bool { return s.Resolved == "" }

const suspicionPrefix = "u/"

func suspicionKey(origin string, size uint64, root [32]byte) []byte {
	k := append([]byte(suspicionPrefix), checkpointOriginPrefix(origin)[len(checkpointPrefix):]...)
	k = binary.BigEndian.AppendUint64(k, size)
	return append(k, root[:]...)
}

// RecordSuspicion adds an occurrence of a suspicion about the checkpoint
// (origin, size, root).
func (d *DB) RecordSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, reason string, at time.Time) error {
	return d.updateSuspicion(ctx, "suspicion_record", origin, size, root, at, func(s *Suspicion) {
		s.Reason, s.Last = reason, at
		s.Count++
	})
}

// RecordDivergence adds an occurrence of an unproven divergence between
// the checkpoint large (origin, large.Size, large.Root) and the smaller
// checkpoint small. The record is keyed by large, like RecordSuspicion's;
// a divergence recorded again after it was resolved is open again.
func (d *DB) RecordDivergence(ctx context.Context, origin string, small, large SuspicionSide, reason string, at time.Time) error {
	return d.updateSuspicion(ctx, "suspicion_record", origin, large.Size, large.Root, at, func(s *Suspicion) {
		other := small
		s.Other, s.Cosigners = &other, large.Cosigners
		s.Reason, s.Last = reason, at
		s.Resolved, s.ResolvedAt = "", time.Time{}
		s.Count++
	})
}

// ResolveSuspicion marks the suspicion about (origin, size, root) as
// ended with resolution (ResolvedConsistent or ResolvedEvidence). It is
// a no-op for a suspicion never recorded or already resolved.
func (d *DB) ResolveSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, resolution string, at time.Time) error {
	key := suspicionKey(origin, size, root)
	return d.commitGossip(ctx, "suspicion_resolve", func(txn *badger.Txn) error {
		v, err := get(txn, key)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var s Suspicion
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("%w: suspicion record: %v", ErrCorrupt, err)
		}
		if !s.Open() {
			return nil
		}
		s.Resolved, s.ResolvedAt = resolution, at
		nv, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return txn.Set(key, nv)
	}, nil)
}

// updateSuspicion applies fn to the suspicion record of (origin, size,
// root), a new one first seen at at if there is none.
func (d *DB) updateSuspicion(ctx context.Context, op, origin string, size uint64, root [32]byte, at time.Time, fn func(*Suspicion)) error {
	key := suspicionKey(origin, size, root)
	return d.commitGossip(ctx, op, func(txn *badger.Txn) error {
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
		fn(&s)
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
