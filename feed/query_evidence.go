package feed

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// evidenceParams are the query parameters of GET /v1/evidence.
var evidenceParams = []string{"since", "until", "log", "kind", "witness", "after", "limit"}

// evidenceFilter selects evidence; zero fields select everything.
type evidenceFilter struct {
	since, until time.Time
	// logID is a log ID or an origin.
	logID, kind, witness string
}

func (ef evidenceFilter) match(e Evidence) bool {
	switch {
	case !ef.since.IsZero() && e.Detected.Before(ef.since),
		!ef.until.IsZero() && !e.Detected.Before(ef.until),
		ef.logID != "" && ef.logID != e.LogID && ef.logID != e.Origin,
		ef.kind != "" && ef.kind != e.Kind,
		ef.witness != "" && !slices.Contains(e.Witnesses, ef.witness):
		return false
	}
	return true
}

func parseEvidenceFilter(p params) (evidenceFilter, error) {
	var ef evidenceFilter
	var err error
	if ef.since, ef.until, err = p.period(); err != nil {
		return ef, err
	}
	for _, f := range []struct {
		k   string
		dst *string
	}{{"log", &ef.logID}, {"kind", &ef.kind}, {"witness", &ef.witness}} {
		if *f.dst, err = p.nonEmpty(f.k); err != nil {
			return ef, err
		}
	}
	return ef, nil
}

// EvidenceList is the body of GET /v1/evidence.
type EvidenceList struct {
	Evidence []Evidence `json:"evidence"`
	// Next is the after of the next page, absent on the last page.
	Next string `json:"next,omitempty"`
}

// serveEvidenceList answers GET /v1/evidence: the evidence the node holds,
// newest stored first, filtered by detection time (since inclusive, until
// exclusive), log (ID or origin), kind and implicated witness, in pages of
// limit (at most MaxEvidenceLimit) continuing after the evidence ID after.
func (f *Feed) serveEvidenceList(w http.ResponseWriter, r *http.Request) {
	p, err := parseParams(r.URL.RawQuery, evidenceParams...)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	limit, err := p.limit(DefaultEvidenceLimit, MaxEvidenceLimit)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ef, err := parseEvidenceFilter(p)
	if err == nil && p.has("after") && !validEvidenceID(p.get("after")) {
		err = errors.New("bad after: want an evidence ID (1 to 128 letters, digits, '-', '_' or '.')")
	}
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	list, err := f.src.Evidence(r.Context())
	if err != nil {
		f.log.Warn("feed: listing evidence", "err", err)
		f.fail(w, r, http.StatusServiceUnavailable, errors.New("reading evidence failed; try again"))
		return
	}
	start := 0
	if after := p.get("after"); after != "" {
		i := slices.IndexFunc(list, func(e Evidence) bool { return e.ID == after })
		if i < 0 {
			f.fail(w, r, http.StatusBadRequest, fmt.Errorf("bad after: no evidence with ID %s", after))
			return
		}
		start = i + 1
	}
	resp := EvidenceList{Evidence: []Evidence{}}
	for _, e := range list[start:] {
		e.LogID = tlog.LogID(e.Origin)
		if !ef.match(e) {
			continue
		}
		if len(resp.Evidence) == limit {
			resp.Next = resp.Evidence[limit-1].ID
			q := linkQuery(p, "after", resp.Next, limit)
			w.Header().Set("Link", nextLink("/v1/evidence", q))
			break
		}
		resp.Evidence = append(resp.Evidence, e)
	}
	f.writeJSON(w, r, listMaxAge, true, resp)
}
