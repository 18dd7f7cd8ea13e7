package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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
	// Updates move the witness's note from the checkpoint the build found
	// it on. Without a vouched note the build cannot tell the witness's
	// note from a record, so the first update that has one builds again.
	if vouched != nil && vouched.log == l {
		st.vouched = vouched
		for k, g := range st.groups {
			if g.ws != nil {
				st.vouchedKey = &k
			}
		}
	}
	st.prune(v.byK)
	return v, st
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
