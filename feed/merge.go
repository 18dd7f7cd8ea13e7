package feed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Verifying the notes a source holds for a log and merging the signatures
// of identical checkpoints into the entries a view serves.

// verified is the outcome of verifying one note from the source.
type verified struct {
	ok      bool
	cp      tlog.Checkpoint
	logSigs []note.Signature
	// cosigs maps a witness policy name to its cosignature.
	cosigs map[string]cosig
	own    *cosig
}

type cosig struct {
	sig note.Signature
	ts  uint64
}

// groupKey identifies one checkpoint of a log.
type groupKey struct {
	size uint64
	root [32]byte
}

// group is the union of the verified signatures the node holds for one
// checkpoint.
//
// The source holds two kinds of note: records (gossip's, kept for good,
// which may carry this node's own cosignature too) and the witness's last
// cosigned note, which it replaces when the witness cosigns a newer
// checkpoint. cosigs and own are what records hold; ws is what the
// witness's last note holds, kept apart so that moving on removes exactly
// what the source stops holding. The view serves the union: a cosignature
// this node made stays on a checkpoint for as long as a record holds it,
// as it does in a build from the source, in history and in k-of-n counts.
type group struct {
	cp      tlog.Checkpoint
	logSigs []note.Signature
	cosigs  map[string]cosig
	own     *cosig
	// ws is the witness's last note if it is of cp, nil otherwise. A
	// group may hold nothing else (no record of cp yet).
	ws *verified
	// dropped is the witness's note of cp after dropWS took it out of
	// the view: its lines are still signatures verified or made here, so
	// a note repeating them (the gossiped record of that cosignature,
	// arriving after the witness moved on) is read without verifying it
	// again.
	dropped *verified
}

func newGroup(cp tlog.Checkpoint) *group {
	return &group{cp: cp, cosigs: map[string]cosig{}}
}

// add merges a verified note of g's checkpoint into g: new signatures are
// added, and a witness's newer cosignature replaces its older one. It
// reports whether anything changed.
func (g *group) add(vn *verified) bool {
	changed := false
	for _, s := range vn.logSigs {
		if !slices.ContainsFunc(g.logSigs, func(o note.Signature) bool { return o.Name == s.Name && o.Hash == s.Hash }) {
			g.logSigs = append(g.logSigs, s)
			changed = true
		}
	}
	for name, cs := range vn.cosigs {
		if old, ok := g.cosigs[name]; !ok || cs.ts > old.ts {
			g.cosigs[name] = cs
			changed = true
		}
	}
	if vn.own != nil && (g.own == nil || vn.own.ts > g.own.ts) {
		g.own = vn.own
		changed = true
	}
	return changed
}

// setWS makes vn, the witness's last note, g's. It reports whether
// anything changed.
func (g *group) setWS(vn *verified) bool {
	changed := g.ws != vn
	g.ws, g.dropped = vn, nil
	return changed
}

// cosigOf is witness name's newest cosignature in g, from a record or the
// witness's note.
func (g *group) cosigOf(name string) (cosig, bool) {
	cs, ok := g.cosigs[name]
	if g.ws != nil {
		if w, wok := g.ws.cosigs[name]; wok && (!ok || w.ts > cs.ts) {
			return w, true
		}
	}
	return cs, ok
}

// ownOf is this node's newest own (unlisted) cosignature in g.
func (g *group) ownOf() *cosig {
	own := g.own
	if g.ws != nil && g.ws.own != nil && (own == nil || g.ws.own.ts > own.ts) {
		own = g.ws.own
	}
	return own
}

// verifiers are the cosignature verifiers a note is checked with: the
// roster witnesses' and this node's own.
func (idx *rosterIndex) verifiers() []note.Verifier {
	verifiers := idx.witnesses
	if idx.own != nil {
		// x/mod's VerifierList refuses a key listed twice.
		if _, listed := idx.r.WitnessByKey(idx.own.Name(), idx.own.KeyHash()); !listed {
			verifiers = append(slices.Clip(verifiers), idx.own)
		}
	}
	return verifiers
}

// merge verifies notes (reusing earlier results from memo) and merges the
// signatures of identical checkpoints into groups (which it fills in, if
// not nil). It returns the entries of the notes' checkpoints, newest first
// (for one size, the one with most cosigners first), and the distinct sizes
// of the notes, valid or not, in ascending order.
func (c *viewCache) merge(idx *rosterIndex, l *roster.Log, notes [][]byte, memo, keep map[[32]byte]*verified, vouched *vouchedNote, groups map[groupKey]*group) ([]*entry, []uint64) {
	if groups == nil {
		groups = map[groupKey]*group{}
	}
	var touched []*group
	var sizes []uint64
	verifiers := idx.verifiers()
	wsSeen := false
	for _, raw := range notes {
		if size, ok := peekSize(raw); ok {
			sizes = append(sizes, size)
		}
		h := sha256.Sum256(raw)
		isWS := !wsSeen && vouched != nil && vouched.log == l && bytes.Equal(vouched.note, raw)
		vn, ok := memo[h]
		switch {
		case ok:
		case isWS:
			vn = c.trust(idx, l, raw, verifiers)
		default:
			vn = c.verify(idx, l, raw, verifiers)
		}
		keep[h] = vn
		if !vn.ok {
			continue
		}
		k := groupKey{vn.cp.Size, vn.cp.Root}
		g := groups[k]
		if g == nil {
			g = newGroup(vn.cp)
			groups[k] = g
		}
		if !slices.Contains(touched, g) {
			touched = append(touched, g)
		}
		if isWS {
			// The source returns the witness's note once, besides a
			// record that may hold the same bytes.
			wsSeen = true
			g.setWS(vn)
		} else {
			g.add(vn)
		}
	}
	entries := make([]*entry, 0, len(touched))
	for _, g := range touched {
		if e := c.entryOf(idx, l, g); e != nil {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, compareEntries)
	slices.Sort(sizes)
	return entries, slices.Compact(sizes)
}

// compareEntries orders entries as a view ranks them: newest first, for one
// size the one with most cosigners first, then by root.
func compareEntries(a, b *entry) int {
	switch {
	case a.cp.Size != b.cp.Size:
		return compare(b.cp.Size, a.cp.Size)
	case len(a.cosigners) != len(b.cosigners):
		return len(b.cosigners) - len(a.cosigners)
	default:
		return bytes.Compare(a.cp.Root[:], b.cp.Root[:])
	}
}

// entryOf builds the served entry of a group: the merged note, its
// cosigners, quorum, freshness and ETag. It returns nil if the note cannot
// be encoded.
func (c *viewCache) entryOf(idx *rosterIndex, l *roster.Log, g *group) *entry {
	e := &entry{cp: g.cp}
	sigs := make([]note.Signature, 0, len(g.logSigs)+len(g.cosigs)+1)
	sigs = append(sigs, g.logSigs...)
	if g.ws != nil {
		for _, s := range g.ws.logSigs {
			if !slices.ContainsFunc(sigs, func(o note.Signature) bool { return o.Name == s.Name && o.Hash == s.Hash }) {
				sigs = append(sigs, s)
			}
		}
	}
	if len(sigs) == 0 {
		// Only a dropped witness's note held cp.
		return nil
	}
	var newest uint64
	e.cosigners = make([]string, 0, len(g.cosigs))
	for name := range g.cosigs {
		e.cosigners = append(e.cosigners, name)
	}
	if g.ws != nil {
		for name := range g.ws.cosigs {
			if _, ok := g.cosigs[name]; !ok {
				e.cosigners = append(e.cosigners, name)
			}
		}
	}
	slices.Sort(e.cosigners)
	set := make(map[string]bool, len(e.cosigners))
	for _, name := range e.cosigners {
		cs, _ := g.cosigOf(name)
		sigs = append(sigs, cs.sig)
		newest = max(newest, cs.ts)
		set[name] = true
	}
	// The node's own cosignature is served (C2SP monitoring endpoint)
	// but counts towards k only if the roster lists its key.
	own := g.ownOf()
	if own != nil && !slices.ContainsFunc(sigs, func(o note.Signature) bool { return o.Name == own.sig.Name && o.Hash == own.sig.Hash }) {
		sigs = append(sigs, own.sig)
	}
	if newest > 0 {
		e.cosignedAt = time.Unix(int64(newest), 0).UTC()
	} else if own != nil {
		e.cosignedAt = time.Unix(int64(own.ts), 0).UTC()
	}
	e.quorum = idx.r.QuorumMet(set)
	msg, err := tlog.FormatNote(g.cp.Marshal(), sigs)
	if err != nil {
		c.f.log.Error("feed: re-encoding a verified note", "origin", l.Origin, "err", err)
		return nil
	}
	e.note = msg
	sum := sha256.Sum256(msg)
	e.etag = `"` + hex.EncodeToString(sum[:16]) + `"`
	e.etagHdr, e.lengthHdr = []string{e.etag}, []string{strconv.Itoa(len(msg))}
	return e
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// verify checks one note: a valid log signature first, then every
// signature from a roster witness key (a failing one rejects the note).
// SPEC (tlog-cosignature §6): verify the log signature, then each configured
// cosigner's line; unknown lines are ignored.
func (c *viewCache) verify(idx *rosterIndex, l *roster.Log, raw []byte, verifiers []note.Verifier) *verified {
	logKey := idx.logKeys[l.Origin]
	if logKey == nil {
		logKey = l.Verifier
	}
	cp, n, err := tlog.VerifyCheckpoint(raw, l.Origin, []note.Verifier{logKey}, verifiers...)
	if err != nil {
		c.f.metrics.rejectedNotes.Inc()
		c.f.log.Debug("feed: dropping a note that does not verify", "origin", l.Origin, "err", err)
		return &verified{}
	}
	return c.classify(idx, l, cp, n.Sigs)
}

// trust reads a note this node's witness vouched for (see Feed.Cosigned):
// it is parsed as strictly as any other, but the signatures of the log's key
// and of this node's own key are taken as verified, since the witness
// verified the first with this very roster entry and made the second.
// Every other signature line is ignored, as an unknown key's would be.
func (c *viewCache) trust(idx *rosterIndex, l *roster.Log, raw []byte, verifiers []note.Verifier) *verified {
	var own []note.Verifier
	if c.own != nil {
		own = tlog.Trusted(c.own)
	}
	cp, n, err := tlog.VerifyCheckpoint(raw, l.Origin, tlog.Trusted(l.Verifier), own...)
	if err != nil {
		// Not what the witness stored after all: verify it like any other.
		return c.verify(idx, l, raw, verifiers)
	}
	return c.classify(idx, l, cp, n.Sigs)
}

// classify sorts a verified note's signatures into the log's, roster
// witnesses' cosignatures and this node's own.
func (c *viewCache) classify(idx *rosterIndex, l *roster.Log, cp tlog.Checkpoint, sigs []note.Signature) *verified {
	vn := &verified{ok: true, cp: cp, cosigs: map[string]cosig{}}
	for _, s := range sigs {
		if s.Name == l.Verifier.Name() && s.Hash == l.Verifier.KeyHash() {
			vn.logSigs = append(vn.logSigs, s)
			continue
		}
		ts, err := tlog.CosignatureTimestamp(s)
		if err != nil {
			continue
		}
		if w, ok := idx.r.WitnessByKey(s.Name, s.Hash); ok {
			vn.cosigs[w.Name] = cosig{sig: s, ts: ts}
		} else if c.own != nil && s.Name == c.own.Name() && s.Hash == c.own.KeyHash() {
			vn.own = &cosig{sig: s, ts: ts}
		}
	}
	return vn
}

// peekSize reads the tree size of an unverified note, for paging only.
func peekSize(raw []byte) (uint64, bool) {
	i := bytes.LastIndex(raw, []byte("\n\n"))
	if i < 0 {
		return 0, false
	}
	cp, err := tlog.ParseCheckpoint(raw[:i+1])
	if err != nil {
		return 0, false
	}
	return cp.Size, true
}
