package gossip

import (
	"context"
	"crypto/sha256"

	"golang.org/x/mod/sumdb/note"
)

// defaultStoredCacheSize bounds the checkpoints whose stored state the
// detector keeps in memory: about 200 bytes per cosignature each (≈ 2 MB
// at 5 witnesses, ≈ 20 MB at 50), enough for the checkpoints being spread
// of 1,000 busy logs; a miss costs a store read and cached verifies.
const defaultStoredCacheSize = 2048

// cpState is what the detector knows of one checkpoint record it stored:
// the verified signatures its note carries, the roster witnesses among them
// and the hash of the stored note. Values are never changed once in the
// cache (a merge puts a new one), so readers need no lock.
//
// It spares the detector, for each further sighting of a checkpoint, a
// store read and the re-verification of every signature already merged, and
// a store write when the sighting adds nothing. The store stays the source
// of truth: a note whose hash differs from noteHash is verified from
// scratch, and evidence is always built from the stored notes.
type cpState struct {
	noteHash  [32]byte
	sigs      []note.Signature
	cosigners map[string]bool
}

func noteHash(n []byte) [32]byte { return sha256.Sum256(n) }

// covers reports whether every signature of sigs is already in the state.
func (st *cpState) covers(sigs []note.Signature) bool {
	have := make(map[sigID]bool, len(st.sigs))
	for _, s := range st.sigs {
		have[sigID{s.Name, s.Hash}] = true
	}
	for _, s := range sigs {
		if !have[sigID{s.Name, s.Hash}] {
			return false
		}
	}
	return true
}

type sigID struct {
	name string
	hash uint32
}

// cosignersOf returns the roster witnesses whose valid cosignature the
// stored note of k carries: from memory, else from the store (verified,
// then remembered).
func (d *detector) cosignersOf(ctx context.Context, k cpKey) (map[string]bool, bool) {
	if st, ok := d.stored.get(k); ok {
		return st.cosigners, true
	}
	rec, err := d.s.cfg.Store.Checkpoint(ctx, k.origin, k.size, k.root)
	if err != nil {
		return nil, false
	}
	sigs, err := d.verifiedSigs(k.origin, rec.Note)
	if err != nil {
		return nil, false
	}
	st := &cpState{noteHash: noteHash(rec.Note), sigs: sigs, cosigners: d.cosigners(sigs)}
	d.remember(k, st)
	return st.cosigners, true
}

func (d *detector) remember(k cpKey, st *cpState) {
	d.stored.update(k, func(*cpState, bool) *cpState { return st })
}
