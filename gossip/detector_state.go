package gossip

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/detect"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
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

// detectorStore is the core's checkpoint store: the node's store, with the
// detector's memory of the records it stored (cpState).
type detectorStore struct{ d *detector }

var _ detect.Store = detectorStore{}

func keyOf(k detect.Key) cpKey { return cpKey{k.Origin, k.Size, k.Root} }

func (ds detectorStore) Known(k detect.Key) bool {
	_, ok := ds.d.stored.get(keyOf(k))
	return ok
}

func (ds detectorStore) AtSize(ctx context.Context, origin string, size uint64) ([]detect.Key, error) {
	recs, err := ds.d.s.cfg.Store.CheckpointsAtSize(ctx, origin, size)
	if err != nil {
		return nil, err
	}
	keys := make([]detect.Key, len(recs))
	for i, r := range recs {
		keys[i] = detect.Key{Origin: origin, Size: r.Size, Root: r.Root}
	}
	return keys, nil
}

func (ds detectorStore) Newest(ctx context.Context, origin string) (detect.Key, bool, error) {
	rec, err := ds.d.s.cfg.Store.NewestCheckpoint(ctx, origin, 0)
	if err != nil {
		return detect.Key{}, false, nil // none stored (or unreadable): start from the sighting
	}
	return detect.Key{Origin: origin, Size: rec.Size, Root: rec.Root}, true, nil
}

func (ds detectorStore) Note(ctx context.Context, k detect.Key) ([]byte, error) {
	rec, err := ds.d.s.cfg.Store.Checkpoint(ctx, k.Origin, k.Size, k.Root)
	if err != nil {
		return nil, err
	}
	return rec.Note, nil
}

// Cosigners returns the roster witnesses whose valid cosignature the
// stored note of k carries: from memory, else from the store (verified,
// then remembered).
func (ds detectorStore) Cosigners(ctx context.Context, k detect.Key) (map[string]bool, error) {
	d := ds.d
	if st, ok := d.stored.get(keyOf(k)); ok {
		return st.cosigners, nil
	}
	rec, err := d.s.cfg.Store.Checkpoint(ctx, k.Origin, k.Size, k.Root)
	if err != nil {
		return nil, err
	}
	sigs, err := d.verifiedSigs(k.Origin, rec.Note)
	if err != nil {
		return nil, err
	}
	st := &cpState{noteHash: noteHash(rec.Note), sigs: sigs, cosigners: d.cosigners(sigs)}
	d.remember(keyOf(k), st)
	return st.cosigners, nil
}

// Merge stores the sighting, adding its verified cosignatures to the
// best-known note of its checkpoint. It reports whether cosigners were
// added.
func (ds detectorStore) Merge(ctx context.Context, s detect.Sighting) (added bool, err error) {
	d := ds.d
	key := keyOf(s.Key)
	prev, known := d.stored.get(key)
	if known && prev.covers(s.Sigs) {
		// Nothing to add: the record is as it would be after the merge.
		return false, nil
	}
	var next *cpState
	wrote := false
	err = d.s.cfg.Store.MergeCheckpoint(ctx, key.origin, key.size, key.root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		added = false
		sigs := s.Sigs
		if exists {
			var oldSigs []note.Signature
			if known && noteHash(old.Note) == prev.noteHash {
				oldSigs = prev.sigs
			} else if vs, verr := d.verifiedSigs(key.origin, old.Note); verr == nil {
				oldSigs = vs
			} // else the stored note no longer verifies (e.g. roster
			// change): replace it with the new one.
			sigs = unionSigs(oldSigs, s.Sigs)
			if len(sigs) == len(oldSigs) {
				next = &cpState{noteHash: noteHash(old.Note), sigs: oldSigs, cosigners: d.cosigners(oldSigs)}
				return old, false, nil
			}
		}
		n, err := tlog.FormatNote(s.Body, sigs)
		if err != nil {
			return old, false, fmt.Errorf("encoding merged note: %w", err)
		}
		cosigners := d.cosigners(sigs)
		cos := len(cosigners)
		added = !exists || cos > old.Cosigners
		next = &cpState{noteHash: noteHash(n), sigs: sigs, cosigners: cosigners}
		wrote = true
		rec := old
		rec.Note, rec.Cosigners = n, cos
		rec.Sightings++
		if !exists {
			rec.FirstSeen, rec.FirstObserver, rec.FirstSource = s.Seen, s.Observer, s.Source
		}
		return rec, true, nil
	})
	if err == nil && next != nil {
		d.remember(key, next)
	}
	if err == nil && wrote {
		d.s.logChanged(key.origin)
	}
	return added, err
}

func (d *detector) remember(k cpKey, st *cpState) {
	d.stored.update(k, func(*cpState, bool) *cpState { return st })
}

func (d *detector) verifiedSigs(origin string, n []byte) ([]note.Signature, error) {
	_, nn, err := d.s.sigs.verifyCheckpoint(d.s.cfg.Roster(), origin, n)
	if err != nil {
		return nil, err
	}
	return nn.Sigs, nil
}

// cosigners returns the roster witnesses among sigs.
func (d *detector) cosigners(sigs []note.Signature) map[string]bool {
	r := d.s.cfg.Roster()
	names := map[string]bool{}
	for _, s := range sigs {
		if w, ok := r.WitnessByKey(s.Name, s.Hash); ok {
			names[w.Name] = true
		}
	}
	return names
}

func unionSigs(a, b []note.Signature) []note.Signature {
	seen := map[sigID]bool{}
	out := make([]note.Signature, 0, len(a)+len(b))
	for _, list := range [][]note.Signature{a, b} {
		for _, s := range list {
			if !seen[sigID{s.Name, s.Hash}] {
				seen[sigID{s.Name, s.Hash}] = true
				out = append(out, s)
			}
		}
	}
	// Deterministic order: the log's signature(s) first as received, then
	// the rest by name.
	sort.SliceStable(out[1:], func(i, j int) bool { return out[1+i].Name < out[1+j].Name })
	return out
}
