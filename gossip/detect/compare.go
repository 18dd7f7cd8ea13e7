package detect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
)

// pending is a checkpoint of another size than the head that could not yet
// be shown consistent with it or not.
type pending struct {
	key Key
	// from is the peer that published key; it may serve a proof.
	from string
	// other is the head key was last compared with.
	other Key
	// since is when key was first found unproven; next when to try again.
	since, next time.Time
	backoff     time.Duration
	reason      string
	// noSource: the log's tree cannot be read (push-only log).
	noSource bool
	// recorded are the larger sides under which a divergence of key is
	// recorded, to resolve when key is settled.
	recorded []Key
}

type outcome int

const (
	unproven outcome = iota
	consistent
	split
)

// compareHead checks k against the log's head. A checkpoint that cannot be
// checked now is kept and checked again whenever the head moves, its
// cosigners change, or its retry is due (Tick): a node that is shown view
// B but hears of view A first still proves the split once it can.
func (d *Detector) compareHead(ctx context.Context, ls *logState, k Key, from string) {
	if k.Size == 0 {
		// The empty tree is a prefix of every tree: there is nothing to
		// compare, and it is never a head (a head of size 0 would need a
		// proof from 0, which does not exist). A size-0 checkpoint with
		// another root is not adopted either (a witness refuses it);
		// sameSize still compares it with any other size-0 checkpoint.
		return
	}
	if !ls.haveHead {
		nk, ok, err := d.cfg.Store.Newest(ctx, k.Origin)
		if err != nil || !ok || nk.Size <= k.Size {
			d.setHead(ls, k)
			return
		}
		ls.head, ls.haveHead = nk, true
	}
	if k.Size == ls.head.Size {
		return // sameSize compared the roots
	}
	if d.check(ctx, ls, k, from, true) {
		d.recheck(ctx, ls, false)
	}
}

func (d *Detector) setHead(ls *logState, k Key) {
	ls.head, ls.haveHead = k, true
	d.cfg.Out.Head(k)
}

// check compares k with the head and reports whether the head moved to k.
// ask says whether other nodes may be asked for a proof.
func (d *Detector) check(ctx context.Context, ls *logState, k Key, from string, ask bool) bool {
	head := ls.head
	if k == head {
		d.settled(ctx, ls, k, ResolvedConsistent)
		return false
	}
	if k.Size == head.Size {
		// Same size as the head, another root: sameSize raised evidence
		// when the second of the two arrived.
		d.settled(ctx, ls, k, ResolvedEvidence)
		return false
	}
	small, large := k, head
	if k.Size > head.Size {
		small, large = head, k
	}
	pub := ""
	if large == k {
		pub = from
	}
	v := d.settle(ctx, small, large, pub, ask)
	switch v.res {
	case consistent:
		d.settled(ctx, ls, k, ResolvedConsistent)
		if k.Size > head.Size {
			d.setHead(ls, k)
			return true
		}
	case split:
		d.settled(ctx, ls, k, ResolvedEvidence)
		d.found(ctx, ls, &conflict{a: small, b: large, proof: v.proof})
	default:
		if !v.noSource && (ask || v.tilesServed) && d.againstPending(ctx, ls, k, v.tilesServed && large == k) {
			return false
		}
		d.keep(ctx, ls, k, from, v.noSource, v.reason)
	}
	return false
}

// maxPairChecks bounds the pending checkpoints one unproven checkpoint is
// compared with through the tiles.
const maxPairChecks = 6

// againstPending compares k, unproven against the head, with the other
// pending checkpoints through the log's tiles, and reports whether that
// proved k part of a split view. The head may itself be a checkpoint the
// tiles cannot reach (a fork the log shows others, larger than the log's
// tree as this node is served it); the split is then between two
// checkpoints that are both pending.
//
// Pairs where k is the smaller side go first (the tiles prove the larger
// one's root, and k's against it), then those where k is the larger, which
// are skipped when the tiles already showed they do not hold k's root
// (notInTiles); the first group smallest first (the likeliest within the
// tiles' reach), the second nearest first. At most maxPairChecks are tried, and the first fetch that fails
// ends the attempt: tiles that cannot answer one pair are down or do not
// reach that far.
func (d *Detector) againstPending(ctx context.Context, ls *logState, k Key, notInTiles bool) bool {
	type pair struct{ small, large Key }
	var above, below []pair
	for _, p := range ls.pending {
		switch {
		case p.key.Size == k.Size || p.key.Size == 0:
		case p.key.Size > k.Size:
			above = append(above, pair{k, p.key})
		case !notInTiles:
			below = append(below, pair{p.key, k})
		}
	}
	bySize := func(a, b pair) int { return cmp.Compare(a.large.Size, b.large.Size) }
	slices.SortFunc(above, bySize)
	slices.SortFunc(below, func(a, b pair) int { return -cmp.Compare(a.small.Size, b.small.Size) })
	for i, pr := range append(above, below...) {
		if i == maxPairChecks {
			break
		}
		proof, rm, rn, err := d.cfg.Proofs.Consistency(ctx, k.Origin, pr.small.Size, pr.large.Size, pr.large.Root)
		if err != nil {
			return false
		}
		if res, ok := decideRoots(pr.small, pr.large, rm, rn); ok && res == split {
			d.settled(ctx, ls, k, ResolvedEvidence)
			d.found(ctx, ls, &conflict{a: pr.small, b: pr.large, proof: proof})
			return true
		}
	}
	return false
}

// settle tries to show small and large (small.Size < large.Size, both
// validly signed by the log) consistent or not: with a proof from the
// log's tiles; for a log without tiles (push-only), by a roster witness's
// cosignature on both (see attested); then (ask) with a proof from the
// peer that published large or the witnesses that cosigned it.
//
// Attestation settles only pairs no proof can be read for: where the
// log's tree can be read, a proof is waited for, since an equivocating
// witness's attestation could otherwise move the head onto a fork and
// hide a split view that the tiles would prove.
func (d *Detector) settle(ctx context.Context, small, large Key, pub string, ask bool) (v verdict) {
	origin := small.Origin
	v.noSource = d.cfg.Proofs == nil
	if !v.noSource {
		p, rm, rn, err := d.cfg.Proofs.Consistency(ctx, origin, small.Size, large.Size, large.Root)
		switch {
		case errors.Is(err, ErrNoSource):
			v.noSource = true
		case err != nil:
			v.reason = fmt.Sprintf("no consistency proof %d→%d from the log's tiles: %v", small.Size, large.Size, err)
		default:
			if res, ok := decideRoots(small, large, rm, rn); ok {
				return verdict{res: res, proof: p}
			}
			// The tiles served to this node are not the tree the log
			// signed at that size: it shows this node another view.
			v.tilesServed = true
			v.reason = fmt.Sprintf("the log's tiles at size %d do not reproduce the checkpoint it signed", large.Size)
		}
	}
	if v.noSource {
		v.reason = fmt.Sprintf("the log serves no tiles to prove %d→%d", small.Size, large.Size)
		if d.attested(ctx, small, large) != "" {
			return verdict{res: consistent, noSource: true}
		}
	}
	if ask && d.cfg.Peers != nil {
		asked := 0
		for _, peer := range d.askList(ctx, pub, large) {
			asked++
			p, _, err := d.cfg.Peers.PeerProof(ctx, peer, origin, small.Size, large.Size, large.Root)
			if err != nil {
				continue
			}
			if res, ok := decide(small, large, p); ok {
				return verdict{res: res, proof: p, noSource: v.noSource}
			}
		}
		if asked > 0 {
			v.reason += fmt.Sprintf("; none of %d peers asked served a proof", asked)
		}
	}
	return v
}

// verdict is what settle found out about a pair.
type verdict struct {
	res   outcome
	proof [][]byte // for consistent or split, when proven
	// noSource: the log's tree cannot be read (push-only log).
	noSource bool
	// tilesServed: the tiles answered, but not for the larger checkpoint's
	// signed tree.
	tilesServed bool
	reason      string
}

// decide checks proof (evidence form, m = small.Size, n = large.Size): it
// must reproduce large's signed root; then small is consistent with large
// if and only if the proof yields small's root.
func decide(small, large Key, proof [][]byte) (outcome, bool) {
	rm, rn, err := evidence.RootsFromConsistency(small.Size, large.Size, proof)
	if err != nil {
		return unproven, false
	}
	return decideRoots(small, large, rm, rn)
}

// decideRoots is decide given the roots a proof implies (as the proof
// source computed them: the proofs it caches are those it checked).
func decideRoots(small, large Key, rm, rn [32]byte) (outcome, bool) {
	if rn != large.Root {
		return unproven, false
	}
	if rm != small.Root {
		return split, true
	}
	return consistent, true
}

// attested returns a roster witness whose valid cosignature is on both a
// and b, or "". A witness cosigns a checkpoint only if it is consistent
// with the witness's own latest one (it checked a proof, or the empty
// tree); so a witness that cosigned both has checked that the smaller is a
// prefix of the larger, unless it equivocates.
func (d *Detector) attested(ctx context.Context, a, b Key) string {
	ca, err := d.cfg.Store.Cosigners(ctx, a)
	if err != nil {
		return ""
	}
	cb, err := d.cfg.Store.Cosigners(ctx, b)
	if err != nil {
		return ""
	}
	var names []string
	for w := range ca {
		if cb[w] {
			names = append(names, w)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return slices.Min(names)
}

// askList returns the peers to ask for a proof bound to large's root: the
// one that published it, then those of the witnesses that cosigned it.
func (d *Detector) askList(ctx context.Context, pub string, large Key) []string {
	var out []string
	if pub != "" {
		out = append(out, pub)
	}
	cos, err := d.cfg.Store.Cosigners(ctx, large)
	if err == nil {
		names := make([]string, 0, len(cos))
		for w := range cos {
			names = append(names, w)
		}
		slices.Sort(names)
		for _, w := range names {
			if p, ok := d.cfg.Peers.WitnessPeer(w); ok && p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	if len(out) > d.cfg.MaxPeerAsks {
		out = out[:d.cfg.MaxPeerAsks]
	}
	return out
}

// keep remembers k as unproven against the head, and records the
// divergence once it has stayed unproven for the grace period.
func (d *Detector) keep(ctx context.Context, ls *logState, k Key, from string, noSource bool, reason string) {
	now := d.cfg.Now()
	i := slices.IndexFunc(ls.pending, func(p *pending) bool { return p.key == k })
	var p *pending
	if i >= 0 {
		p = ls.pending[i]
	} else {
		p = &pending{key: k, since: now, backoff: d.cfg.RetryMin, next: now.Add(d.cfg.RetryMin)}
		if len(ls.pending) < maxPendingPerLog {
			ls.pending = append(ls.pending, p)
		} else {
			// No room to keep trying: the divergence is at least visible.
			p.since = now.Add(-d.cfg.Grace)
		}
	}
	if from != "" {
		p.from = from
	}
	p.other, p.noSource, p.reason = ls.head, noSource, reason
	if now.Sub(p.since) >= d.cfg.Grace {
		d.record(ctx, p)
	}
}

// record records p's divergence with the head it was compared with, once
// per pair.
func (d *Detector) record(ctx context.Context, p *pending) {
	small, large := p.key, p.other
	if small.Size > large.Size {
		small, large = large, small
	}
	side := func(k Key) Side {
		s := Side{Size: k.Size, Root: k.Root}
		if cos, err := d.cfg.Store.Cosigners(ctx, k); err == nil {
			for w := range cos {
				s.Cosigners = append(s.Cosigners, w)
			}
			slices.Sort(s.Cosigners)
		}
		return s
	}
	if slices.Contains(p.recorded, large) {
		return // recorded once; it stays open until key is settled
	}
	d.cfg.Out.Divergence(ctx, small.Origin, side(small), side(large), p.reason)
	p.recorded = append(p.recorded, large)
}

// settled ends the pending check of k, if any, resolving the divergences
// recorded for it.
func (d *Detector) settled(ctx context.Context, ls *logState, k Key, how string) {
	i := slices.IndexFunc(ls.pending, func(p *pending) bool { return p.key == k })
	if i < 0 {
		return
	}
	p := ls.pending[i]
	ls.pending = slices.Delete(ls.pending, i, i+1)
	for _, large := range p.recorded {
		d.cfg.Out.Resolved(ctx, large, how)
	}
}

// recheck checks every pending checkpoint against the head again, until
// the head stops moving.
func (d *Detector) recheck(ctx context.Context, ls *logState, ask bool) {
	for moved := true; moved; {
		moved = false
		for _, p := range slices.Clone(ls.pending) {
			if slices.Contains(ls.pending, p) && d.check(ctx, ls, p.key, p.from, ask) {
				moved = true
			}
		}
	}
}

// cosignersAdded re-checks, by attestation only, the pending checkpoints
// of a push-only log paired with k, which just gained cosigners.
func (d *Detector) cosignersAdded(ctx context.Context, ls *logState, k Key) {
	if !ls.haveHead {
		return
	}
	moved := false
	for _, p := range slices.Clone(ls.pending) {
		if !p.noSource || (p.key != k && ls.head != k) || p.key.Size == ls.head.Size {
			continue
		}
		if d.attested(ctx, p.key, ls.head) == "" {
			continue
		}
		d.settled(ctx, ls, p.key, ResolvedConsistent)
		if p.key.Size > ls.head.Size {
			d.setHead(ls, p.key)
			moved = true
		}
	}
	if moved {
		d.recheck(ctx, ls, false)
	}
}

// Tick retries the pending checks that are due (with backoff between
// RetryMin and RetryMax), asking peers too, and records the divergences
// whose grace period ended. The caller calls it periodically.
func (d *Detector) Tick(ctx context.Context) {
	d.mu.Lock()
	states := make([]*logState, 0, len(d.logs))
	for _, ls := range d.logs {
		states = append(states, ls)
	}
	d.mu.Unlock()
	for _, ls := range states {
		ls.mu.Lock()
		d.tick(ctx, ls)
		ls.mu.Unlock()
	}
}

// maxRetriesPerTick bounds the retries of one log per Tick, which hold the
// log (each may wait for tiles and peers).
const maxRetriesPerTick = 4

func (d *Detector) tick(ctx context.Context, ls *logState) {
	moved := false
	retries := 0
	for _, p := range slices.Clone(ls.pending) {
		if ctx.Err() != nil {
			return
		}
		if !slices.Contains(ls.pending, p) {
			continue
		}
		now := d.cfg.Now()
		if now.Before(p.next) || retries >= maxRetriesPerTick {
			if now.Sub(p.since) >= d.cfg.Grace {
				d.record(ctx, p)
			}
			continue
		}
		retries++
		if d.check(ctx, ls, p.key, p.from, true) {
			moved = true
		}
		if slices.Contains(ls.pending, p) {
			p.backoff = min(2*p.backoff, d.cfg.RetryMax)
			p.next = d.cfg.Now().Add(p.backoff)
		}
	}
	if moved {
		d.recheck(ctx, ls, false)
	}
}
