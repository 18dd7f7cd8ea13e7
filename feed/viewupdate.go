package feed

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/vigilnet/vigil/roster"
)

// Views are built from the source once (at start, after a roster reload,
// after an announcement that names no note, or when a view is older than
// ViewTTL) and otherwise updated in memory: each announced note is verified
// (the witness's own ones trusted; lines the view holds or gossip verified
// taken as they are, viewcover.go), merged into its checkpoint's group and
// ranked against the view's entries, at a cost proportional to that note's
// signatures, with no source read. An update yields the view a build from
// the source would (view_internal_test.go checks it); where it cannot know
// that, for a note older than the groups held, it falls back to a build.

const (
	// maxHeldSizes bounds the checkpoint sizes whose groups a log's state
	// keeps besides those that can no longer matter (below its
	// every-witness checkpoint); an update below them rebuilds the view.
	maxHeldSizes = 64
	// maxPending bounds the notes announced for one log between two
	// rounds; past it the round rebuilds the view from the source.
	maxPending = 256
)

// viewState is the merged state behind a log's view, built with it.
type viewState struct {
	roster *roster.Roster
	log    *roster.Log
	// groups are the checkpoints held with size >= floor, each with
	// every signature the source held for it and the updates since.
	groups map[groupKey]*group
	floor  uint64
	// vouched is the vouched note merged last, vouchedKey its checkpoint.
	vouched    *vouchedNote
	vouchedKey *groupKey
}

// dropWS removes what the witness's note adds to the group of k (the
// source no longer holds that note; records of the checkpoint stay),
// replacing the group's entry in v.byK. It reports false if the entry then
// has too few cosigners for a k it held (a build must find that k's
// checkpoint).
func (st *viewState) dropWS(c *viewCache, idx *rosterIndex, l *roster.Log, v *logView, k groupKey) bool {
	g := st.groups[k]
	if g == nil || g.ws == nil {
		return true
	}
	g.dropped, g.ws = g.ws, nil
	// e is nil if the witness's note was all the source held of k.
	e := c.entryOf(idx, l, g)
	for i, cur := range v.byK {
		if cur != nil && cur.cp.Size == k.size && cur.cp.Root == k.root {
			if e == nil || i > len(e.cosigners) {
				return false
			}
			v.byK[i] = e
		}
	}
	return true
}

// prune drops the groups that can no longer become an entry of byK (older
// than the newest checkpoint every witness cosigned, which outranks them
// for every k), then the oldest beyond maxHeldSizes, raising floor.
func (st *viewState) prune(byK []*entry) {
	if all := byK[len(byK)-1]; all != nil && all.cp.Size > st.floor {
		st.floor = all.cp.Size
		for k := range st.groups {
			if k.size < st.floor {
				delete(st.groups, k)
			}
		}
	}
	if len(st.groups) <= 2*maxHeldSizes {
		return
	}
	sizes := make([]uint64, 0, len(st.groups))
	for k := range st.groups {
		sizes = append(sizes, k.size)
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	if len(sizes) <= maxHeldSizes {
		return
	}
	st.floor = sizes[len(sizes)-maxHeldSizes]
	for k := range st.groups {
		if k.size < st.floor {
			delete(st.groups, k)
		}
	}
}

// pendingNotes are notes announced for one log and not applied yet.
type pendingNotes struct {
	mu    sync.Mutex
	notes []pendingNote
	// stale means the source changed in a way no note describes, or more
	// was announced than maxPending: the next round builds from it.
	stale bool
}

// pendingNote is an announced note; by is the roster entry whose log key
// and witness keys its caller verified it with, nil if it did not.
type pendingNote struct {
	raw []byte
	by  *roster.Log
}

// add queues a note, unless the same note is queued already.
func (p *pendingNotes) add(msg []byte, by *roster.Log) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		return
	}
	for i, n := range p.notes {
		if bytes.Equal(n.raw, msg) {
			if by != nil {
				p.notes[i].by = by
			}
			return
		}
	}
	if len(p.notes) >= maxPending {
		p.notes, p.stale = nil, true
		return
	}
	p.notes = append(p.notes, pendingNote{msg, by})
}

func (p *pendingNotes) markStale() {
	p.mu.Lock()
	p.notes, p.stale = nil, true
	p.mu.Unlock()
}

// take empties the queue, returning the notes and whether it was stale.
func (p *pendingNotes) take() ([]pendingNote, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	notes, stale := p.notes, p.stale
	p.notes, p.stale = nil, false
	return notes, stale
}

// CheckpointAdded tells the feed that the source now holds signedNote for
// origin (a checkpoint record gossip merged, with every signature the
// record has). Like CheckpointUpdated it never blocks, but the view is
// then updated with that note alone instead of rebuilt from the source.
// The feed keeps signedNote, so the caller must not modify it afterwards.
func (f *Feed) CheckpointAdded(origin string, signedNote []byte) {
	f.views.slot(origin).pending.add(signedNote, nil)
	f.markDirty(origin)
}

// CheckpointVerified is CheckpointAdded for a record whose every signature
// line the caller verified against the roster l came from: the log's
// signature with l's key and each cosignature with a roster witness's key
// (gossip's validator, for the records it merges, keeps no other line).
// The feed takes those lines as verified instead of verifying them again;
// any other line (this node's own cosignature, if the roster does not
// list its key) it verifies as usual, and if l is no longer the roster's
// entry for its log (a roster reload) the whole note is verified.
func (f *Feed) CheckpointVerified(l *roster.Log, signedNote []byte) {
	f.views.slot(l.Origin).pending.add(signedNote, l)
	f.markDirty(l.Origin)
}

// update brings the view of origin up to date with what was announced
// since the last round, and publishes an event if its newest checkpoint
// changed: in memory if it can, else by a build from the source.
func (c *viewCache) update(ctx context.Context, origin string) {
	idx := c.roster()
	l, ok := idx.r.Log(origin)
	if !ok {
		return
	}
	s := c.slot(origin)
	s.build.Lock()
	defer s.build.Unlock()
	prev := s.v.Load()
	notes, stale := s.pending.take()
	st := s.st
	if stale || prev == nil || prev.err != nil || prev.roster != idx.r || prev.log != l || st == nil || st.roster != idx.r || st.log != l {
		c.buildLocked(ctx, idx, l, s, prev)
		return
	}
	// No memo: the notes the last build verified will not be read again
	// (updates keep the view current), and at a thousand logs the memo is
	// megabytes of live heap.
	v := &logView{log: l, logID: prev.logID, roster: idx.r, built: c.f.now(), byK: slices.Clone(prev.byK), growth: prev.growth}
	verifiers := idx.verifiers()
	var ws *verified
	if vouched := s.vouched.Load(); vouched != nil && vouched != st.vouched && vouched.log == l {
		if st.vouched == nil {
			// The last build could not tell the witness's note from a
			// record (see build).
			c.buildLocked(ctx, idx, l, s, prev)
			return
		}
		ws = c.trust(idx, l, vouched.note, verifiers)
		if ws.ok && !st.apply(c, idx, l, v, ws, true) {
			c.buildLocked(ctx, idx, l, s, prev)
			return
		}
		// The source holds the witness's last note only: what it added
		// leaves the checkpoint the witness cosigned before (records of
		// that checkpoint, own cosignature included, stay). It leaves
		// after the new note is ranked, which outranks it for every k
		// unless the witness cosigned two checkpoints of one size.
		if old := st.vouchedKey; old != nil && (!ws.ok || *old != (groupKey{ws.cp.Size, ws.cp.Root})) {
			if !st.dropWS(c, idx, l, v, *old) {
				c.buildLocked(ctx, idx, l, s, prev)
				return
			}
		}
		st.vouchedKey = nil
		if ws.ok {
			st.vouchedKey = &groupKey{ws.cp.Size, ws.cp.Root}
		}
		st.vouched = vouched
	}
	for _, pn := range notes {
		raw := pn.raw
		var by *rosterIndex
		if pn.by == l {
			by = idx
		}
		var vn *verified
		switch adds, held := st.adds(raw, v, l, by); {
		case adds == addsNothing:
			continue
		case adds == addsKnown:
			vn = c.classify(idx, l, held.cp, held.sigs)
		case st.vouched != nil && bytes.Equal(st.vouched.note, raw):
			vn = c.trust(idx, l, raw, verifiers)
		default:
			vn = c.verify(idx, l, raw, verifiers)
		}
		if vn.ok && !st.apply(c, idx, l, v, vn, false) {
			c.buildLocked(ctx, idx, l, s, prev)
			return
		}
	}
	st.prune(v.byK)
	if latest := v.latest(); latest != nil && (prev.latest() == nil || latest != prev.latest()) {
		v.growth = growth(prev, []*entry{latest}, latest, v.built)
	}
	s.v.Store(v)
	if changedEntry(prev, v) && v.latest() != nil {
		c.f.publishCheckpoint(v)
	}
}

// apply merges one verified note into st (as the witness's last note if
// ws, else as a record) and ranks its checkpoint's new entry in v.byK. It
// reports false if st does not hold what the note's checkpoint needs (a
// build must decide).
func (st *viewState) apply(c *viewCache, idx *rosterIndex, l *roster.Log, v *logView, vn *verified, ws bool) bool {
	nw := len(v.byK) - 1
	k := groupKey{vn.cp.Size, vn.cp.Root}
	if k.size < st.floor {
		// Below the groups held: irrelevant if a checkpoint every witness
		// cosigned outranks it, else unknown.
		all := v.byK[nw]
		return all != nil && k.size < all.cp.Size
	}
	g := st.groups[k]
	if g == nil {
		g = newGroup(vn.cp)
		st.groups[k] = g
	}
	changed := false
	if ws {
		changed = g.setWS(vn)
	} else {
		changed = g.add(vn)
	}
	if !changed {
		return true
	}
	e := c.entryOf(idx, l, g)
	if e == nil {
		return true
	}
	for i := 0; i <= len(e.cosigners) && i <= nw; i++ {
		cur := v.byK[i]
		if cur == nil || (cur.cp.Size == e.cp.Size && cur.cp.Root == e.cp.Root) || compareEntries(e, cur) < 0 {
			v.byK[i] = e
		}
	}
	return true
}
