package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// historyParams are the query parameters of GET /v1/logs/{logID}/checkpoints.
var historyParams = []string{"from", "since", "until", "cursor", "limit", "witness"}

// serveHistory answers GET /v1/logs/{logID}/checkpoints: by tree size
// (?from=SIZE, oldest first, pages never split a size) or, with since,
// until or cursor, by the time this node first saw each checkpoint (oldest
// first). witness keeps the checkpoints that roster witness cosigned; it
// filters within each page, so a page may hold fewer than limit entries
// while a Link to the next one follows.
func (f *Feed) serveHistory(w http.ResponseWriter, r *http.Request) {
	p, err := parseParams(r.URL.RawQuery, historyParams...)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	limit, err := p.limit(DefaultHistoryLimit, MaxHistoryLimit)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	idx := f.views.roster()
	witness, err := p.nonEmpty("witness")
	if err == nil && witness != "" && !slices.ContainsFunc(idx.r.Witnesses(), func(w *roster.Witness) bool { return w.Name == witness }) {
		err = fmt.Errorf("bad witness: %q is not a roster witness", witness)
	}
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	byTime := p.has("since") || p.has("until") || p.has("cursor")
	var from uint64
	if p.has("from") {
		s := p.get("from")
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != s {
			f.fail(w, r, http.StatusBadRequest, fmt.Errorf("bad from: %q is not a tree size (a non-negative decimal integer)", s))
			return
		}
		if byTime {
			f.fail(w, r, http.StatusBadRequest, errors.New("bad from: from selects by size and cannot be combined with since, until or cursor"))
			return
		}
		from = n
	}
	since, until, err := p.period()
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	l, ok := idx.byID[r.PathValue("logID")]
	if !ok {
		f.fail(w, r, http.StatusNotFound, fmt.Errorf("unknown log: no log in the roster has ID %s", r.PathValue("logID")))
		return
	}
	resp := HistoryResponse{Origin: l.Origin, LogID: tlog.LogID(l.Origin), Checkpoints: []HistoryEntry{}}
	path := "/v1/logs/" + resp.LogID + "/checkpoints"
	keep := func(e *entry) bool { return witness == "" || slices.Contains(e.cosigners, witness) }
	if !byTime {
		entries, next, err := f.views.history(r.Context(), idx, l, from, limit)
		if err != nil {
			f.log.Warn("feed: reading history", "origin", l.Origin, "err", err)
			f.fail(w, r, http.StatusServiceUnavailable, errors.New("reading checkpoints failed; try again"))
			return
		}
		for _, e := range entries {
			if keep(e) {
				resp.Checkpoints = append(resp.Checkpoints, HistoryEntry{CheckpointSummary: summarize(e), Note: string(e.note)})
			}
		}
		if next != 0 {
			resp.Next = &next
			w.Header().Set("Link", nextLink(path, linkQuery(p, "from", strconv.FormatUint(next, 10), limit)))
		}
		f.writeJSON(w, r, checkpointMaxAge, true, resp)
		return
	}
	entries, next, err := f.views.timed(r.Context(), idx, l, TimeQuery{Since: since, Until: until, Cursor: p.get("cursor"), Limit: limit})
	switch {
	case errors.Is(err, errNoTimeSource):
		f.fail(w, r, http.StatusNotImplemented, err)
		return
	case errors.Is(err, ErrBadCursor):
		f.fail(w, r, http.StatusBadRequest, fmt.Errorf("bad cursor: %q was not issued by this node", p.get("cursor")))
		return
	case err != nil:
		f.log.Warn("feed: reading history by time", "origin", l.Origin, "err", err)
		f.fail(w, r, http.StatusServiceUnavailable, errors.New("reading checkpoints failed; try again"))
		return
	}
	for _, te := range entries {
		if keep(te.e) {
			seen := te.firstSeen
			resp.Checkpoints = append(resp.Checkpoints, HistoryEntry{CheckpointSummary: summarize(te.e), Note: string(te.e.note), FirstSeen: &seen})
		}
	}
	if next != "" {
		resp.NextCursor = next
		w.Header().Set("Link", nextLink(path, linkQuery(p, "cursor", next, limit)))
	}
	f.writeJSON(w, r, checkpointMaxAge, true, resp)
}

// linkQuery is p with k set to v and limit made explicit.
func linkQuery(p params, k, v string, limit int) url.Values {
	q := url.Values{}
	for name, vs := range p.v {
		q[name] = slices.Clone(vs)
	}
	q.Set(k, v)
	q.Set("limit", strconv.Itoa(limit))
	return q
}

// errNoTimeSource means the Source cannot select by time.
var errNoTimeSource = errors.New("this node's source cannot select checkpoints by time")

// timedEntry is a verified, merged checkpoint and its first sighting.
type timedEntry struct {
	e         *entry
	firstSeen time.Time
}

// timed reads a page of l's checkpoints by time, each verified against
// the roster; notes that do not verify are left out.
func (c *viewCache) timed(ctx context.Context, idx *rosterIndex, l *roster.Log, q TimeQuery) ([]timedEntry, string, error) {
	ts, ok := c.f.src.(TimeSource)
	if !ok {
		return nil, "", errNoTimeSource
	}
	page, err := ts.CheckpointsByTime(ctx, l.Origin, q)
	if err != nil {
		return nil, "", fmt.Errorf("reading checkpoints of %s by time: %w", l.Origin, err)
	}
	// A source may hold one note per cosigner of a checkpoint: merge the
	// notes of one checkpoint into one entry, first seen when the
	// earliest of them was.
	type key struct {
		size uint64
		root [32]byte
	}
	seen := map[key]time.Time{}
	notes := make([][]byte, 0, len(page.Notes))
	for _, n := range page.Notes {
		cp, ok := peekCheckpoint(n.Note)
		if !ok {
			continue
		}
		k := key{cp.Size, cp.Root}
		if t, ok := seen[k]; !ok || n.FirstSeen.Before(t) {
			seen[k] = n.FirstSeen
		}
		notes = append(notes, n.Note)
	}
	var memo map[[32]byte]*verified
	if v := c.slot(l.Origin).v.Load(); v != nil && v.roster == idx.r {
		memo = v.memo
	}
	entries, _ := c.merge(idx, l, notes, memo, map[[32]byte]*verified{}, nil, nil)
	out := make([]timedEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, timedEntry{e: e, firstSeen: seen[key{e.cp.Size, e.cp.Root}].UTC()})
	}
	slices.SortStableFunc(out, func(a, b timedEntry) int {
		if c := a.firstSeen.Compare(b.firstSeen); c != 0 {
			return c
		}
		return compare(a.e.cp.Size, b.e.cp.Size)
	})
	return out, page.Next, nil
}

// peekCheckpoint parses the checkpoint of an unverified note, for grouping only.
func peekCheckpoint(raw []byte) (tlog.Checkpoint, bool) {
	i := bytes.LastIndex(raw, []byte("\n\n"))
	if i < 0 {
		return tlog.Checkpoint{}, false
	}
	cp, err := tlog.ParseCheckpoint(raw[:i+1])
	return cp, err == nil
}
