package detect

import (
	"context"
	"slices"

	vpb "github.com/vigilnet/vigil/proto"
)

// found raises log-equivocation evidence for c, remembers c, and checks
// whether a roster witness cosigned both sides.
func (d *Detector) found(ctx context.Context, ls *logState, c *conflict) {
	for _, old := range ls.conflicts {
		if (old.a == c.a && old.b == c.b) || (old.a == c.b && old.b == c.a) {
			d.witnessEquivocation(ctx, old)
			return
		}
	}
	c.witness = map[string]bool{}
	if len(ls.conflicts) < maxConflictsPerLog {
		ls.conflicts = append(ls.conflicts, c)
	}
	a, b, ok := d.notes(ctx, ls, c)
	if !ok {
		return
	}
	kind := vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE
	if c.proof != nil {
		kind = vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES
	}
	d.cfg.Out.Evidence(ctx, &vpb.Evidence{Kind: kind, CheckpointA: a, CheckpointB: b, ConsistencyProof: c.proof})
	d.witnessEquivocation(ctx, c)
}

// notes returns the best-known notes of both sides of c: the stored ones,
// or for the side not stored yet its sighting's note.
func (d *Detector) notes(ctx context.Context, ls *logState, c *conflict) (a, b []byte, ok bool) {
	read := func(k Key) ([]byte, bool) {
		if ls != nil && ls.unstoredNote != nil && ls.unstored == k {
			return ls.unstoredNote, true
		}
		n, err := d.cfg.Store.Note(ctx, k)
		if err != nil {
			d.log.Error("reading checkpoint", "origin", k.Origin, "size", k.Size, "err", err)
			return nil, false
		}
		return n, true
	}
	if a, ok = read(c.a); !ok {
		return nil, nil, false
	}
	if b, ok = read(c.b); !ok {
		return nil, nil, false
	}
	return a, b, true
}

// witnessEquivocation raises evidence against every roster witness whose
// valid cosignature is on both stored sides of c, once per witness.
func (d *Detector) witnessEquivocation(ctx context.Context, c *conflict) {
	ca, err := d.cfg.Store.Cosigners(ctx, c.a)
	if err != nil {
		return
	}
	cb, err := d.cfg.Store.Cosigners(ctx, c.b)
	if err != nil {
		return
	}
	var both []string
	for w := range cb {
		if ca[w] && !c.witness[w] {
			both = append(both, w)
		}
	}
	if len(both) == 0 {
		return
	}
	// Only now are the stored notes read: evidence is built from them.
	a, b, ok := d.notes(ctx, nil, c)
	if !ok {
		return
	}
	slices.Sort(both)
	r := d.cfg.Roster()
	for _, w := range both {
		rw, ok := r.Witness(w)
		if !ok {
			continue
		}
		c.witness[w] = true
		d.cfg.Out.Evidence(ctx, &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, CheckpointA: a, CheckpointB: b, ConsistencyProof: c.proof, WitnessKey: rw.VKey})
	}
}
