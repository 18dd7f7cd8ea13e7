package feed

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Views are built from the source once (at start, after a roster reload,
// after an announcement that names no note, or when a view is older than
// ViewTTL) and otherwise updated in memory: each announced note is verified
// (the witness's own ones trusted), merged into its checkpoint's group and
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

// dropOwn removes this node's own (unlisted) cosignature from the group of
// k, replacing its entry in v.byK.
func (st *viewState) dropOwn(c *viewCache, idx *rosterIndex, l *roster.Log, v *logView, k groupKey) {
	g := st.groups[k]
	if g == nil || g.own == nil {
		return
	}
	g.dropped, g.own = g.own, nil
	e := c.entryOf(idx, l, g)
	for i, cur := range v.byK {
		if cur != nil && cur.cp.Size == k.size && cur.cp.Root == k.root {
			v.byK[i] = e
		}
	}
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
	notes [][]byte
	// stale means the source changed in a way no note describes, or more
	// was announced than maxPending: the next round builds from it.
	stale bool
}

// add queues a note, unless the same note is queued already.
func (p *pendingNotes) add(msg []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		return
	}
	for _, n := range p.notes {
		if bytes.Equal(n, msg) {
			return
		}
	}
	if len(p.notes) >= maxPending {
		p.notes, p.stale = nil, true
		return
	}
	p.notes = append(p.notes, msg)
}

func (p *pendingNotes) markStale() {
	p.mu.Lock()
	p.notes, p.stale = nil, true
	p.mu.Unlock()
}

// take empties the queue, returning the notes and whether it was stale.
func (p *pendingNotes) take() ([][]byte, bool) {
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
	f.views.slot(origin).pending.add(signedNote)
	f.markDirty(origin)
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
	var vns []*verified
	if vouched := s.vouched.Load(); vouched != nil && vouched != st.vouched && vouched.log == l {
		vn := c.trust(idx, l, vouched.note, verifiers)
		if vn.ok {
			// The source holds the witness's last note only, so this
			// node's cosignature (unless the roster lists its key, making
			// it a cosigner like any other) leaves the checkpoint it
			// cosigned before.
			if old := st.vouchedKey; old != nil && *old != (groupKey{vn.cp.Size, vn.cp.Root}) {
				st.dropOwn(c, idx, l, v, *old)
			}
			st.vouchedKey = &groupKey{vn.cp.Size, vn.cp.Root}
		}
		st.vouched = vouched
		vns = append(vns, vn)
	}
	for _, raw := range notes {
		switch adds := st.adds(raw, v); {
		case adds == addsNothing:
			continue
		case adds == addsOwn, st.vouched != nil && bytes.Equal(st.vouched.note, raw):
			vns = append(vns, c.trust(idx, l, raw, verifiers))
		default:
			vns = append(vns, c.verify(idx, l, raw, verifiers))
		}
	}
	for _, vn := range vns {
		if vn.ok && !st.apply(c, idx, l, v, vn) {
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

// apply merges one verified note into st and ranks its checkpoint's new
// entry in v.byK. It reports false if st does not hold what the note's
// checkpoint needs (a build must decide).
func (st *viewState) apply(c *viewCache, idx *rosterIndex, l *roster.Log, v *logView, vn *verified) bool {
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
	if !g.add(vn) {
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

const (
	addsNothing = iota
	mayAdd
	// addsOwn: raw adds only this node's own cosignature that dropOwn
	// took out, every other line being one st holds; nothing in it needs
	// verifying.
	addsOwn
)

// adds tells, without verifying anything, whether raw can change v: not if
// its checkpoint is older than one every witness cosigned (which outranks
// it for every k), nor if every signature line of raw is, byte for byte, a
// verified signature st holds for the same checkpoint text (a gossiped
// record of what this node's witness cosigned, typically). If the only
// line st does not hold is this node's own cosignature it dropped from the
// checkpoint's group, raw is addsOwn.
func (st *viewState) adds(raw []byte, v *logView) int {
	i := bytes.Index(raw, []byte("\n\n"))
	if i < 0 {
		return mayAdd
	}
	cp, err := tlog.ParseCheckpoint(raw[:i+1])
	if err != nil {
		return mayAdd
	}
	if all := v.byK[len(v.byK)-1]; all != nil && cp.Size < all.cp.Size {
		return addsNothing
	}
	return st.covers(raw[i+2:], cp)
}

// covers tells whether every line of rest (a note's signature lines) is a
// signature st holds for cp (addsNothing), or one it holds or this node's
// dropped own cosignature (addsOwn), or neither (mayAdd).
func (st *viewState) covers(rest []byte, cp tlog.Checkpoint) int {
	g := st.groups[groupKey{cp.Size, cp.Root}]
	if g == nil || g.cp != cp {
		return mayAdd
	}
	if len(rest) == 0 {
		return mayAdd
	}
	covered := addsNothing
	for len(rest) > 0 {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			return mayAdd
		}
		line := rest[:j]
		rest = rest[j+1:]
		sig, ok := bytes.CutPrefix(line, []byte("\u2014 "))
		if !ok {
			return mayAdd
		}
		name, b64, ok := bytes.Cut(sig, []byte(" "))
		if !ok {
			return mayAdd
		}
		switch {
		case g.holds(string(name), string(b64)):
		case g.dropped != nil && g.dropped.sig.Name == string(name) && g.dropped.sig.Base64 == string(b64):
			covered = addsOwn
		default:
			return mayAdd
		}
	}
	return covered
}

// holds reports whether g holds the signature line (name, b64).
func (g *group) holds(name, b64 string) bool {
	for _, s := range g.logSigs {
		if s.Name == name && s.Base64 == b64 {
			return true
		}
	}
	for _, cs := range g.cosigs {
		if cs.sig.Name == name && cs.sig.Base64 == b64 {
			return true
		}
	}
	return g.own != nil && g.own.sig.Name == name && g.own.sig.Base64 == b64
}
