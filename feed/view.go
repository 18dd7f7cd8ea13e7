package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Bounds on how much history one view build reads from the source.
const (
	scanPage = 64 // distinct sizes per source query
	// firstPage is the first query's size: the newest checkpoint for every
	// k is nearly always among the newest few sizes, and a view is rebuilt
	// about once a second per busy log, so reading 64 records to use one
	// or two was most of a rebuild's cost.
	firstPage    = 8
	maxScanSizes = 4096 // sizes scanned back looking for a k-cosigned checkpoint
	growthPoints = 64   // points kept for the dashboard's growth chart
)

// errUnknownLog means the logID names no log in the roster.
var errUnknownLog = errors.New("unknown log")

// entry is one verified checkpoint with the roster cosignatures the node
// holds for it, merged into one note. Entries are immutable once built.
type entry struct {
	cp tlog.Checkpoint
	// cosigners are the roster witnesses (policy names, sorted) whose
	// cosignature verified.
	cosigners []string
	// cosignedAt is the newest roster cosignature timestamp; zero if none.
	cosignedAt time.Time
	quorum     bool
	// note is the checkpoint with its verified log signature(s), the
	// verified roster cosignatures and the node's own cosignature.
	note []byte
	etag string
	// Header values of the hot path, built once.
	etagHdr, lengthHdr []string
}

// point is one sample of a log's growth.
type point struct {
	t    time.Time
	size uint64
}

// logView is everything the feed serves about one log, built from the
// source and verified against one roster. Views are immutable.
type logView struct {
	log    *roster.Log
	logID  string
	roster *roster.Roster
	built  time.Time
	// byK[k] is the newest checkpoint with at least k roster cosignatures,
	// or nil; len(byK) is the number of roster witnesses + 1.
	byK    []*entry
	growth []point
	// memo caches verification results by note hash for the next build.
	memo map[[32]byte]*verified
	err  error
}

// latest is the newest checkpoint held, or nil.
func (v *logView) latest() *entry { return v.byK[0] }

// quorumEntry is the newest checkpoint that satisfies the roster quorum.
func (v *logView) quorumEntry() *entry {
	for _, e := range v.byK {
		if e != nil && e.quorum {
			return e
		}
	}
	return nil
}

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

// rosterIndex is derived once per roster.
type rosterIndex struct {
	r         *roster.Roster
	byID      map[string]*roster.Log
	logs      []*roster.Log
	witnesses []note.Verifier
	// logKeys are the logs' verifiers by origin, and own this node's
	// cosigner verifier, as the feed checks notes with them (wrapped by
	// Config.WrapVerifiers).
	logKeys map[string]note.Verifier
	own     note.Verifier
}

type slot struct {
	build sync.Mutex // serialises builds of one log
	v     atomic.Pointer[logView]
	// vouched is the newest note this node's witness cosigned for the log,
	// whose signatures the next build need not verify again.
	vouched atomic.Pointer[vouchedNote]
	// st is the merged state behind v that updates apply to; guarded by
	// build. pending holds the announced notes not applied yet.
	st      *viewState
	pending pendingNotes
}

// vouchedNote is a note whose log signature was verified with log's key by
// this node's witness, which then added its own cosignature. The bytes are
// the witness's, shared (neither side modifies them): the witness pays no
// hashing for the vouch, and a build compares only notes it would
// otherwise verify.
type vouchedNote struct {
	note []byte
	log  *roster.Log
}

// viewCache holds one view per log, rebuilt when the source announces a
// change, when the roster changes, or when a view is older than ViewTTL.
type viewCache struct {
	f     *Feed
	own   note.Verifier
	mu    sync.Mutex
	index atomic.Pointer[rosterIndex]
	slots sync.Map // origin → *slot
}

func newViewCache(f *Feed) *viewCache {
	return &viewCache{f: f, own: f.cfg.OwnKey}
}

// roster returns the index of the source's current roster.
func (c *viewCache) roster() *rosterIndex {
	r := c.f.src.Roster()
	if idx := c.index.Load(); idx != nil && idx.r == r {
		return idx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if idx := c.index.Load(); idx != nil && idx.r == r {
		return idx
	}
	idx := &rosterIndex{r: r, byID: map[string]*roster.Log{}, logs: r.Logs(), witnesses: r.WitnessVerifiers(), logKeys: map[string]note.Verifier{}, own: c.own}
	wrap := c.f.cfg.WrapVerifiers
	if wrap == nil {
		wrap = func(_ *roster.Roster, vs ...note.Verifier) []note.Verifier { return vs }
	}
	idx.witnesses = wrap(r, idx.witnesses...)
	for _, l := range idx.logs {
		idx.byID[tlog.LogID(l.Origin)] = l
		idx.logKeys[l.Origin] = wrap(r, l.Verifier)[0]
	}
	if c.own != nil {
		idx.own = wrap(r, c.own)[0]
	}
	c.index.Store(idx)
	return idx
}

func (c *viewCache) slot(origin string) *slot {
	if s, ok := c.slots.Load(origin); ok {
		return s.(*slot)
	}
	s, _ := c.slots.LoadOrStore(origin, &slot{})
	return s.(*slot)
}

// byID returns the view of the log with the given ID, building it if it does
// not exist yet or was built for another roster.
func (c *viewCache) byID(ctx context.Context, logID string) (*logView, error) {
	idx := c.roster()
	l, ok := idx.byID[logID]
	if !ok {
		return nil, errUnknownLog
	}
	return c.view(ctx, idx, l)
}

func (c *viewCache) view(ctx context.Context, idx *rosterIndex, l *roster.Log) (*logView, error) {
	s := c.slot(l.Origin)
	if v := s.v.Load(); v != nil && v.roster == idx.r && v.log == l {
		return v, nil
	}
	v, _ := c.buildSlot(ctx, idx, l, s, false)
	return v, v.err
}

// all returns the views of every roster log, in origin order.
func (c *viewCache) all(ctx context.Context) []*logView {
	idx := c.roster()
	out := make([]*logView, 0, len(idx.logs))
	for _, l := range idx.logs {
		v, _ := c.view(ctx, idx, l)
		out = append(out, v)
	}
	return out
}

// rebuild brings the view of origin up to date (viewupdate.go) and
// publishes an event if its newest checkpoint or its cosigners changed.
func (c *viewCache) rebuild(ctx context.Context, origin string) { c.update(ctx, origin) }

// refreshStale rebuilds the views older than ViewTTL, publishing events for
// what changed.
func (c *viewCache) refreshStale(ctx context.Context) {
	idx := c.roster()
	now := c.f.now()
	for _, l := range idx.logs {
		if ctx.Err() != nil {
			return
		}
		s := c.slot(l.Origin)
		v := s.v.Load()
		if v == nil || v.roster != idx.r || now.Sub(v.built) >= c.f.cfg.ViewTTL {
			c.buildSlot(ctx, idx, l, s, true)
		}
	}
}

// buildSlot builds and stores a view; with force it rebuilds even a current
// one. It reports whether the newest checkpoint changed.
func (c *viewCache) buildSlot(ctx context.Context, idx *rosterIndex, l *roster.Log, s *slot, force bool) (*logView, bool) {
	s.build.Lock()
	defer s.build.Unlock()
	prev := s.v.Load()
	if !force && prev != nil && prev.roster == idx.r && prev.log == l {
		return prev, false
	}
	return c.buildLocked(ctx, idx, l, s, prev)
}

// buildLocked builds a view from the source and stores it, with s.build
// held. It reports whether the newest checkpoint changed.
func (c *viewCache) buildLocked(ctx context.Context, idx *rosterIndex, l *roster.Log, s *slot, prev *logView) (*logView, bool) {
	// What is pending is in the source already: the build reads it.
	s.pending.take()
	start := time.Now()
	v, st := c.build(ctx, idx, l, prev)
	c.f.metrics.viewBuilds.Observe(time.Since(start).Seconds())
	if v.err != nil && prev != nil && prev.err == nil && errors.Is(v.err, context.Canceled) {
		return prev, false
	}
	s.st = st
	s.v.Store(v)
	changed := changedEntry(prev, v)
	if changed && v.latest() != nil {
		c.f.publishCheckpoint(v)
	}
	return v, changed
}

func changedEntry(prev, v *logView) bool {
	a, b := (*entry)(nil), v.latest()
	if prev != nil {
		a = prev.latest()
	}
	switch {
	case a == nil || b == nil:
		return a != b
	default:
		// Any change counts: a bigger tree, more cosigners, or fresher
		// cosignatures of the same tree (freshness on the dashboard).
		return !bytes.Equal(a.note, b.note)
	}
}

// build reads the newest checkpoints of l from the source, newest first,
// until it has found the newest checkpoint for every k or scanned
// maxScanSizes sizes. It returns the view and the merged state later
// updates apply to (nil if the source failed).
func (c *viewCache) build(ctx context.Context, idx *rosterIndex, l *roster.Log, prev *logView) (*logView, *viewState) {
	nw := len(idx.witnesses)
	v := &logView{log: l, logID: tlog.LogID(l.Origin), roster: idx.r, built: c.f.now(), byK: make([]*entry, nw+1), memo: map[[32]byte]*verified{}}
	var memo map[[32]byte]*verified
	if prev != nil && prev.roster == idx.r {
		memo = prev.memo
	}
	vouched := c.slot(l.Origin).vouched.Load()
	st := &viewState{roster: idx.r, log: l, groups: map[groupKey]*group{}}
	need := nw + 1
	maxSize := uint64(AllSizes)
	var recent []*entry
	for page, scanned := firstPage, 0; scanned < maxScanSizes && need > 0; page, scanned = scanPage, scanned+page {
		notes, err := c.f.src.Checkpoints(ctx, l.Origin, CheckpointQuery{MaxSize: maxSize, Limit: page, Newest: true})
		if err != nil {
			v.err = fmt.Errorf("reading checkpoints of %s: %w", l.Origin, err)
			c.f.log.Warn("feed: reading checkpoints", "origin", l.Origin, "err", err)
			break
		}
		entries, sizes := c.merge(idx, l, notes, memo, v.memo, vouched, st.groups)
		if recent == nil {
			recent = entries
		}
		for _, e := range entries {
			for k := 0; k <= len(e.cosigners) && k <= nw; k++ {
				if v.byK[k] == nil {
					v.byK[k] = e
					need--
				}
			}
		}
		if len(sizes) < page || sizes[0] == 0 {
			// Every size the source holds was read.
			st.floor = 0
			break
		}
		maxSize = sizes[0] - 1
		// The groups held start at the smallest size read: one page
		// holds every note of each of its sizes.
		st.floor = sizes[0]
	}
	v.growth = growth(prev, recent, v.latest(), c.f.now())
	if v.err != nil {
		return v, nil
	}
	// This node's own unlisted cosignature is on the checkpoint of the
	// witness's last note only (what updates move it from).
	for k, g := range st.groups {
		if g.own != nil {
			st.vouchedKey = &k
		}
	}
	st.prune(v.byK)
	return v, st
}

// groupKey identifies one checkpoint of a log.
type groupKey struct {
	size uint64
	root [32]byte
}

// group is the union of the verified signatures the node holds for one
// checkpoint.
type group struct {
	cp      tlog.Checkpoint
	logSigs []note.Signature
	cosigs  map[string]cosig
	own     *cosig
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
	for _, raw := range notes {
		if size, ok := peekSize(raw); ok {
			sizes = append(sizes, size)
		}
		h := sha256.Sum256(raw)
		vn, ok := memo[h]
		switch {
		case ok:
		case vouched != nil && vouched.log == l && bytes.Equal(vouched.note, raw):
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
		g.add(vn)
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
	var newest uint64
	e.cosigners = make([]string, 0, len(g.cosigs))
	for name := range g.cosigs {
		e.cosigners = append(e.cosigners, name)
	}
	slices.Sort(e.cosigners)
	set := make(map[string]bool, len(e.cosigners))
	for _, name := range e.cosigners {
		cs := g.cosigs[name]
		sigs = append(sigs, cs.sig)
		newest = max(newest, cs.ts)
		set[name] = true
	}
	// The node's own cosignature is served (C2SP monitoring endpoint)
	// but counts towards k only if the roster lists its key.
	if g.own != nil && !slices.ContainsFunc(sigs, func(o note.Signature) bool { return o.Name == g.own.sig.Name && o.Hash == g.own.sig.Hash }) {
		sigs = append(sigs, g.own.sig)
	}
	if newest > 0 {
		e.cosignedAt = time.Unix(int64(newest), 0).UTC()
	} else if g.own != nil {
		e.cosignedAt = time.Unix(int64(g.own.ts), 0).UTC()
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

// growth merges the previous samples with the newest checkpoints read from
// the source, one point per size, at most growthPoints.
func growth(prev *logView, recent []*entry, latest *entry, now time.Time) []point {
	var pts []point
	if prev != nil {
		pts = append(pts, prev.growth...)
	}
	for _, e := range recent {
		t := e.cosignedAt
		if t.IsZero() {
			t = now
		}
		pts = append(pts, point{t: t, size: e.cp.Size})
	}
	if latest != nil && latest.cosignedAt.IsZero() {
		pts = append(pts, point{t: now, size: latest.cp.Size})
	}
	slices.SortFunc(pts, func(a, b point) int {
		if a.size != b.size {
			return compare(a.size, b.size)
		}
		return a.t.Compare(b.t)
	})
	pts = slices.CompactFunc(pts, func(a, b point) bool { return a.size == b.size })
	if len(pts) > growthPoints {
		pts = pts[len(pts)-growthPoints:]
	}
	return pts
}

// history reads checkpoints of l with size >= from, oldest first, merged and
// verified, grouped so that a page never splits one size. next is 0 when
// there is nothing after this page.
func (c *viewCache) history(ctx context.Context, idx *rosterIndex, l *roster.Log, from uint64, limit int) (entries []*entry, next uint64, err error) {
	notes, err := c.f.src.Checkpoints(ctx, l.Origin, CheckpointQuery{MinSize: from, MaxSize: AllSizes, Limit: limit + 1})
	if err != nil {
		return nil, 0, fmt.Errorf("reading checkpoints of %s: %w", l.Origin, err)
	}
	var memo map[[32]byte]*verified
	if v := c.slot(l.Origin).v.Load(); v != nil && v.roster == idx.r {
		memo = v.memo
	}
	entries, sizes := c.merge(idx, l, notes, memo, map[[32]byte]*verified{}, c.slot(l.Origin).vouched.Load(), nil)
	slices.Reverse(entries)
	// Keep at most limit distinct sizes, never splitting one size across
	// pages; the source returned up to limit+1 sizes to tell whether there
	// is more. next is the from of the next page.
	if len(sizes) <= limit {
		return entries, 0, nil
	}
	cutoff := sizes[limit-1]
	i := slices.IndexFunc(entries, func(e *entry) bool { return e.cp.Size > cutoff })
	if i >= 0 {
		entries = entries[:i]
	}
	return entries, cutoff + 1, nil
}
