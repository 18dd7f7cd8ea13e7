package gossip

import (
	"context"
	"errors"
	"fmt"
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

func newDetector(s *Service) *detector { return &detector{s: s, logs: map[string]*logView{}} }

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
// views it reveals.
func (d *detector) process(ctx context.Context, s *sighting) {
	start := time.Now()
	defer func() { d.s.metrics.detectLatency.Observe(time.Since(start).Seconds()) }()
	v := d.view(s.origin)
	v.mu.Lock()
	defer v.mu.Unlock()
	key := cpKey{s.origin, s.cp.Size, s.cp.Root}
	added, err := d.merge(ctx, key, s)
	if err != nil {
		if ctx.Err() == nil { // not just shutting down
			d.s.log.Error("storing sighting", "origin", s.origin, "size", s.cp.Size, "err", err)
		}
		return
	}
	d.sameSize(ctx, v, key)
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
// best-known note of its checkpoint. It reports whether cosigners were added.
func (d *detector) merge(ctx context.Context, key cpKey, s *sighting) (bool, error) {
	added := false
	body := string(s.cp.Marshal())
	err := d.s.cfg.Store.MergeCheckpoint(ctx, key.origin, key.size, key.root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		added = false
		sigs := s.sigs
		if exists {
			oldSigs, err := d.verifiedSigs(key.origin, old.Note)
			if err != nil {
				// The stored note no longer verifies (e.g. roster change):
				// replace it with the new one.
				oldSigs = nil
			}
			sigs = unionSigs(oldSigs, s.sigs)
			if len(sigs) == len(oldSigs) {
				old.Sightings++
				return old, false, nil
			}
		}
		n, err := note.Sign(&note.Note{Text: body, Sigs: sigs})
		if err != nil {
			return old, false, fmt.Errorf("encoding merged note: %w", err)
		}
		cos := d.countCosigners(sigs)
		added = !exists || cos > old.Cosigners
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
	return added, err
}

func (d *detector) verifiedSigs(origin string, n []byte) ([]note.Signature, error) {
	_, nn, err := d.s.sigs.verifyCheckpoint(d.s.cfg.Roster(), origin, n)
	if err != nil {
		return nil, err
	}
	return nn.Sigs, nil
}

func (d *detector) countCosigners(sigs []note.Signature) int {
	r := d.s.cfg.Roster()
	names := map[string]bool{}
	for _, s := range sigs {
		if w, ok := r.WitnessByKey(s.Name, s.Hash); ok {
			names[w.Name] = true
		}
	}
	return len(names)
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
	proof, rootSmall, rootLarge, err := d.proof(ctx, key.origin, small.size, large.size)
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

// proof fetches an evidence-form consistency proof m→n and the roots it
// implies.
func (d *detector) proof(ctx context.Context, origin string, m, n uint64) (proof [][]byte, rm, rn [32]byte, err error) {
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
	rm, rn, err = evidence.RootsFromConsistency(m, n, p)
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
	a, b, ok := d.notes(ctx, c)
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

// notes returns the best-known notes of both sides of c.
func (d *detector) notes(ctx context.Context, c *conflict) (a, b []byte, ok bool) {
	ra, err := d.s.cfg.Store.Checkpoint(ctx, c.a.origin, c.a.size, c.a.root)
	if err != nil {
		d.s.log.Error("reading checkpoint", "err", err)
		return nil, nil, false
	}
	rb, err := d.s.cfg.Store.Checkpoint(ctx, c.b.origin, c.b.size, c.b.root)
	if err != nil {
		d.s.log.Error("reading checkpoint", "err", err)
		return nil, nil, false
	}
	return ra.Note, rb.Note, true
}

// witnessEquivocation raises evidence against every roster witness whose
// valid cosignature is on both sides of c.
func (d *detector) witnessEquivocation(ctx context.Context, c *conflict) {
	a, b, ok := d.notes(ctx, c)
	if !ok {
		return
	}
	sa, err1 := d.verifiedSigs(c.a.origin, a)
	sb, err2 := d.verifiedSigs(c.b.origin, b)
	if err1 != nil || err2 != nil {
		return
	}
	r := d.s.cfg.Roster()
	onA := map[string]bool{}
	for _, s := range sa {
		if w, ok := r.WitnessByKey(s.Name, s.Hash); ok {
			onA[w.Name] = true
		}
	}
	for _, s := range sb {
		w, ok := r.WitnessByKey(s.Name, s.Hash)
		if !ok || !onA[w.Name] || c.witness[w.Name] {
			continue
		}
		c.witness[w.Name] = true
		d.s.raise(ctx, &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, CheckpointA: a, CheckpointB: b, ConsistencyProof: c.proof, WitnessKey: w.VKey})
	}
}
