package gossip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// maxConflictsPerLog bounds the split views remembered per log for
// witness-equivocation re-checks when new cosignatures arrive.
const maxConflictsPerLog = 64

// detector compares every accepted sighting with what the node holds.
type detector struct {
	s *Service

	mu   sync.Mutex
	logs map[string]*logView

	// stored is the state of checkpoint records this detector stored.
	stored *lru[cpKey, *cpState]
	// proofs are consistency proofs already obtained and checked.
	proofs *proofCache
}

// logView is the detector's per-log state; its mutex serialises the work
// on one log.
type logView struct {
	mu sync.Mutex
	// head is the largest checkpoint this node holds whose consistency with
	// the previous head it checked (or, without a proof source, the largest
	// it has seen).
	head     tlog.Checkpoint
	haveHead bool
	// conflicts are the split views found, kept to detect witnesses that
	// cosign both sides later.
	conflicts []*conflict
	// pending are checkpoints not yet checked against the head, with the
	// peer that published each (it may serve a proof).
	pending []pendingCheck

	// unstored is the checkpoint being looked at before it is stored
	// (processOne), with the note its sighting carries.
	unstored *unstoredNote

	// inbox holds sightings waiting for the goroutine that is working on
	// this log (draining); see detector.process.
	inMu     sync.Mutex
	inbox    []*sighting
	draining bool
}

type unstoredNote struct {
	key  cpKey
	note []byte
}

type pendingCheck struct {
	key  cpKey
	from peer.ID
}

type conflict struct {
	a, b    cpKey
	proof   [][]byte // evidence form; nil for same size
	witness map[string]bool
}

// maxInbox bounds the sightings queued for one log; beyond it the
// delivering goroutine waits for the log and processes its own.
const maxInbox = 1024

func newDetector(s *Service) *detector {
	return &detector{
		s:      s,
		logs:   map[string]*logView{},
		stored: newLRU[cpKey, *cpState](defaultStoredCacheSize),
		proofs: newProofCache(defaultProofCacheSize),
	}
}

func (d *detector) view(origin string) *logView {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.logs[origin]
	if !ok {
		v = &logView{}
		d.logs[origin] = v
	}
	return v
}

// process merges a validated sighting into the store and looks for split
// views it reveals. Sightings of one log that arrive while it is being
// worked on are queued and then handled together: every cosignature of one
// checkpoint that arrived meanwhile goes into one store write (one fsync)
// instead of one each. Nothing is dropped and the checks are the same per
// checkpoint; only the write is shared.
func (d *detector) process(ctx context.Context, s *sighting) {
	v := d.view(s.origin)
	v.inMu.Lock()
	if len(v.inbox) >= maxInbox {
		v.inMu.Unlock()
		d.s.gate.wait(ctx)
		v.mu.Lock()
		d.processBatch(ctx, v, []*sighting{s})
		v.mu.Unlock()
		return
	}
	v.inbox = append(v.inbox, s)
	if v.draining {
		v.inMu.Unlock()
		return
	}
	v.draining = true
	v.inMu.Unlock()
	for {
		v.inMu.Lock()
		batch := v.inbox
		v.inbox = nil
		if len(batch) == 0 {
			v.draining = false
			v.inMu.Unlock()
			return
		}
		v.inMu.Unlock()
		d.s.gate.wait(ctx)
		v.mu.Lock()
		d.processBatch(ctx, v, batch)
		v.mu.Unlock()
	}
}

// processBatch handles sightings of one log, combining those of the same
// checkpoint. v.mu is held.
func (d *detector) processBatch(ctx context.Context, v *logView, batch []*sighting) {
	var order []cpKey
	byKey := map[cpKey]*sighting{}
	for _, s := range batch {
		key := cpKey{s.origin, s.cp.Size, s.cp.Root}
		prev, ok := byKey[key]
		if !ok {
			byKey[key] = s
			order = append(order, key)
			continue
		}
		// The first sighting keeps its metadata (first seen, observer,
		// source); the cosignatures of all are merged.
		comb := *prev
		comb.sigs = unionSigs(prev.sigs, s.sigs)
		comb.cosigners = make(map[string]bool, len(prev.cosigners)+len(s.cosigners))
		for _, m := range []map[string]bool{prev.cosigners, s.cosigners} {
			for w := range m {
				comb.cosigners[w] = true
			}
		}
		byKey[key] = &comb
	}
	// Checkpoints new to this detector first: only they can reveal a
	// split view (another root at their size, an inconsistent size), so
	// evidence is not held up behind routine merges of more cosignatures.
	known := make(map[cpKey]bool, len(order))
	for _, k := range order {
		_, known[k] = d.stored.get(k)
	}
	slices.SortStableFunc(order, func(a, b cpKey) int {
		switch {
		case known[a] == known[b]:
			return 0
		case !known[a]:
			return -1
		}
		return 1
	})
	for _, key := range order {
		d.processOne(ctx, v, key, byKey[key])
	}
}

func (d *detector) processOne(ctx context.Context, v *logView, key cpKey, s *sighting) {
	start := time.Now()
	defer func() { d.s.metrics.detectLatency.Observe(time.Since(start).Seconds()) }()
	// Another root at this size can only appear with a checkpoint new to
	// this detector (the store has it from before, or it is about to be
	// stored); later sightings of either side are handled through
	// v.conflicts. When that list is full the store is asked every time, as
	// it cannot help. The check runs before the (durable, so slow) write:
	// evidence then carries the sighting's own verified note for this side.
	if _, known := d.stored.get(key); !known || len(v.conflicts) >= maxConflictsPerLog {
		if n, err := tlog.FormatNote(s.cp.Marshal(), s.sigs); err == nil {
			v.unstored = &unstoredNote{key: key, note: n}
			d.sameSize(ctx, v, key)
			v.unstored = nil
		}
	}
	added, err := d.merge(ctx, key, s)
	if err != nil {
		if ctx.Err() == nil { // not just shutting down
			d.s.log.Error("storing sighting", "origin", s.origin, "size", s.cp.Size, "err", err)
		}
		return
	}
	d.compareHead(ctx, v, key, s.from)
	if added {
		for _, c := range v.conflicts {
			if c.a == key || c.b == key {
				d.witnessEquivocation(ctx, c)
			}
		}
	}
}

// merge stores the sighting, adding its verified cosignatures to the
// best-known note of its checkpoint. It reports whether cosigners were
// added.
func (d *detector) merge(ctx context.Context, key cpKey, s *sighting) (added bool, err error) {
	prev, known := d.stored.get(key)
	if known && prev.covers(s.sigs) {
		// Nothing to add: the record is as it would be after the merge.
		return false, nil
	}
	body := s.cp.Marshal()
	var next *cpState
	err = d.s.cfg.Store.MergeCheckpoint(ctx, key.origin, key.size, key.root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		added = false
		sigs := s.sigs
		if exists {
			var oldSigs []note.Signature
			if known && noteHash(old.Note) == prev.noteHash {
				oldSigs = prev.sigs
			} else if vs, verr := d.verifiedSigs(key.origin, old.Note); verr == nil {
				oldSigs = vs
			} // else the stored note no longer verifies (e.g. roster
			// change): replace it with the new one.
			sigs = unionSigs(oldSigs, s.sigs)
			if len(sigs) == len(oldSigs) {
				next = &cpState{noteHash: noteHash(old.Note), sigs: oldSigs, cosigners: d.cosigners(oldSigs)}
				return old, false, nil
			}
		}
		n, err := tlog.FormatNote(body, sigs)
		if err != nil {
			return old, false, fmt.Errorf("encoding merged note: %w", err)
		}
		cosigners := d.cosigners(sigs)
		cos := len(cosigners)
		added = !exists || cos > old.Cosigners
		next = &cpState{noteHash: noteHash(n), sigs: sigs, cosigners: cosigners}
		rec := old
		rec.Note, rec.Cosigners = n, cos
		rec.Sightings++
		if !exists {
			rec.FirstSeen = time.UnixMilli(s.msg.SeenUnixMs)
			if s.msg.SeenUnixMs == 0 {
				rec.FirstSeen = time.Now()
			}
			rec.FirstObserver = s.msg.Observer
			rec.FirstSource = sourceName(s.msg.Source)
		}
		return rec, true, nil
	})
	if err == nil && next != nil {
		d.remember(key, next)
	}
	return added, err
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
	type k struct {
		name string
		hash uint32
	}
	seen := map[k]bool{}
	out := make([]note.Signature, 0, len(a)+len(b))
	for _, list := range [][]note.Signature{a, b} {
		for _, s := range list {
			if !seen[k{s.Name, s.Hash}] {
				seen[k{s.Name, s.Hash}] = true
				out = append(out, s)
			}
		}
	}
	// Deterministic order: the log's signature(s) first as received, then
	// the rest by name.
	sort.SliceStable(out[1:], func(i, j int) bool { return out[1+i].Name < out[1+j].Name })
	return out
}

// sameSize raises evidence for every stored checkpoint of the same size
// with another root.
func (d *detector) sameSize(ctx context.Context, v *logView, key cpKey) {
	recs, err := d.s.cfg.Store.CheckpointsAtSize(ctx, key.origin, key.size)
	if err != nil {
		d.s.log.Error("reading checkpoints", "origin", key.origin, "err", err)
		return
	}
	for _, rec := range recs {
		if rec.Root == key.root {
			continue
		}
		a, b := cpKey{key.origin, rec.Size, rec.Root}, key
		d.found(ctx, v, &conflict{a: a, b: b})
	}
}

// maxPendingPerLog bounds the checkpoints per log kept for a re-check
// because they could not be checked against the head when they arrived.
const maxPendingPerLog = 32

// compareHead checks the sighting against the log's head with a
// consistency proof from the node's proof source. A checkpoint that cannot
// be checked now (the tiles this node is served do not cover it) is kept
// and checked again whenever the head moves: a node that is shown view B
// but hears of view A first still proves the split once it holds B.
func (d *detector) compareHead(ctx context.Context, v *logView, key cpKey, from peer.ID) {
	if !v.haveHead {
		if rec, err := d.s.cfg.Store.NewestCheckpoint(ctx, key.origin, 0); err == nil && rec.Size > key.size {
			v.head, v.haveHead = tlog.Checkpoint{Origin: key.origin, Size: rec.Size, Root: rec.Root}, true
		} else {
			v.head, v.haveHead = tlog.Checkpoint{Origin: key.origin, Size: key.size, Root: key.root}, true
			return
		}
	}
	if !d.check(ctx, v, key, from, true) {
		return
	}
	// The head moved: re-check what could not be checked before.
	pending := v.pending
	v.pending = nil
	for _, p := range pending {
		if p.key != key {
			d.check(ctx, v, p.key, p.from, false)
		}
	}
}

// check compares key with the head; it reports whether the head moved to
// key. Checkpoints that cannot be checked are kept in v.pending.
func (d *detector) check(ctx context.Context, v *logView, key cpKey, from peer.ID, first bool) bool {
	head := cpKey{key.origin, v.head.Size, v.head.Root}
	if key.size == head.size || key.size == 0 {
		return false // same size: sameSize compares roots
	}
	if head.size == 0 {
		// The empty tree is a prefix of every tree: any larger
		// checkpoint replaces it, with no proof to check.
		v.head = tlog.Checkpoint{Origin: key.origin, Size: key.size, Root: key.root}
		return true
	}
	small, large := key, head
	if key.size > head.size {
		small, large = head, key
	}
	advance := func() bool {
		if key.size > head.size {
			v.head = tlog.Checkpoint{Origin: key.origin, Size: key.size, Root: key.root}
			return true
		}
		return false
	}
	keep := func(reason string) bool {
		// Before suspecting the log, ask the peer that published the
		// larger checkpoint for a proof bound to its root.
		if large == key && first {
			if proof, rm, err := d.s.peerProof(ctx, from, key.origin, small.size, large.size, large.root); err == nil {
				if rm != small.root {
					d.found(ctx, v, &conflict{a: small, b: large, proof: proof})
					return false
				}
				return advance()
			}
		}
		if len(v.pending) < maxPendingPerLog {
			v.pending = append(v.pending, pendingCheck{key, from})
		}
		if first {
			d.suspect(ctx, large, reason)
		}
		return false
	}
	if d.s.cfg.Proofs == nil {
		return advance()
	}
	proof, rootSmall, rootLarge, err := d.proof(ctx, key.origin, small.size, large.size, large.root)
	switch {
	case errors.Is(err, ErrNoProofSource):
		return advance()
	case err != nil:
		return keep(fmt.Sprintf("no consistency proof %d→%d from the log's tiles: %v", small.size, large.size, err))
	case rootLarge != large.root:
		// The tiles the log serves us are not the tree it signed at that
		// size: it shows us another view. Not provable from here yet.
		return keep(fmt.Sprintf("the log's tiles at size %d do not reproduce the checkpoint it signed", large.size))
	case rootSmall != small.root:
		d.found(ctx, v, &conflict{a: small, b: large, proof: proof})
		return false
	}
	return advance()
}

// proof returns an evidence-form consistency proof m→n and the roots it
// implies: from the cache when one is held for the tree with root want
// (the signed size-n root the caller expects), else fetched from the log's
// tiles (and cached if it reproduces want).
func (d *detector) proof(ctx context.Context, origin string, m, n uint64, want [32]byte) (proof [][]byte, rm, rn [32]byte, err error) {
	k := proofKey{origin: origin, m: m, n: n, rootN: want}
	if p, rm, ok := d.proofs.get(k); ok {
		d.s.metrics.proofFetch.WithLabelValues("cache", "ok").Inc()
		return p, rm, want, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.s.cfg.ProofTimeout)
	defer cancel()
	defer func() { d.s.metrics.proofFetch.WithLabelValues("tiles", result(err)).Inc() }()
	p, err := d.s.cfg.Proofs.ConsistencyProof(ctx, origin, m, n)
	if err != nil {
		return nil, rm, rn, err
	}
	if evidence.IsPowerOfTwo(m) {
		sub, err := d.s.cfg.Proofs.SubtreeRoot(ctx, origin, m)
		if err != nil {
			return nil, rm, rn, err
		}
		p = evidence.EvidenceProof(m, sub, p)
	}
	if rm, rn, err = evidence.RootsFromConsistency(m, n, p); err == nil {
		d.proofs.put(k, p, rm, rn)
	}
	return p, rm, rn, err
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (d *detector) suspect(ctx context.Context, k cpKey, reason string) {
	d.s.metrics.suspicions.Inc()
	d.s.log.Info("suspicion", "origin", k.origin, "size", k.size, "reason", reason)
	if err := d.s.cfg.Store.RecordSuspicion(ctx, k.origin, k.size, k.root, reason, time.Now()); err != nil && ctx.Err() == nil {
		d.s.log.Error("recording suspicion", "err", err)
	}
}

// found raises log-equivocation evidence for c, remembers c, and checks
// whether a roster witness cosigned both sides.
func (d *detector) found(ctx context.Context, v *logView, c *conflict) {
	for _, old := range v.conflicts {
		if (old.a == c.a && old.b == c.b) || (old.a == c.b && old.b == c.a) {
			d.witnessEquivocation(ctx, old)
			return
		}
	}
	c.witness = map[string]bool{}
	if len(v.conflicts) < maxConflictsPerLog {
		v.conflicts = append(v.conflicts, c)
	}
	a, b, ok := d.notes(ctx, c, v.unstored)
	if !ok {
		return
	}
	kind := vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE
	if c.proof != nil {
		kind = vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES
	}
	d.s.raise(ctx, &vpb.Evidence{Kind: kind, CheckpointA: a, CheckpointB: b, ConsistencyProof: c.proof})
	d.witnessEquivocation(ctx, c)
}

// notes returns the best-known notes of both sides of c: the stored ones,
// or for a side that is unstored (not yet written) its sighting's note.
func (d *detector) notes(ctx context.Context, c *conflict, unstored *unstoredNote) (a, b []byte, ok bool) {
	read := func(k cpKey) ([]byte, bool) {
		if unstored != nil && unstored.key == k {
			return unstored.note, true
		}
		rec, err := d.s.cfg.Store.Checkpoint(ctx, k.origin, k.size, k.root)
		if err != nil {
			d.s.log.Error("reading checkpoint", "err", err)
			return nil, false
		}
		return rec.Note, true
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
// valid cosignature is on both sides of c. The detector's memory of both
// records says whether there is a new one; only then are the stored notes
// read and verified (evidence is built from them).
func (d *detector) witnessEquivocation(ctx context.Context, c *conflict) {
	onA, okA := d.cosignersOf(ctx, c.a)
	onB, okB := d.cosignersOf(ctx, c.b)
	if !okA || !okB {
		return
	}
	fresh := false
	for w := range onB {
		if onA[w] && !c.witness[w] {
			fresh = true
			break
		}
	}
	if !fresh {
		return
	}
	// Both sides are stored (cosignersOf found them).
	a, b, ok := d.notes(ctx, c, nil)
	if !ok {
		return
	}
	sa, err1 := d.verifiedSigs(c.a.origin, a)
	sb, err2 := d.verifiedSigs(c.b.origin, b)
	if err1 != nil || err2 != nil {
		return
	}
	r := d.s.cfg.Roster()
	onA = d.cosigners(sa)
	for _, s := range sb {
		w, ok := r.WitnessByKey(s.Name, s.Hash)
		if !ok || !onA[w.Name] || c.witness[w.Name] {
			continue
		}
		c.witness[w.Name] = true
		d.s.raise(ctx, &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, CheckpointA: a, CheckpointB: b, ConsistencyProof: c.proof, WitnessKey: w.VKey})
	}
}
