package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// exportParams are the query parameters of GET /v1/export.
var exportParams = []string{"since", "until", "format"}

// exportPage is how many checkpoints an export reads, verifies and sends
// at a time: its memory is one page plus one counter per roster witness,
// whatever the period.
const exportPage = 500

// serveExport answers GET /v1/export?since=&until=&format=jsonl|csv: a
// period record; every checkpoint of every roster log first seen in
// [since, until), per log oldest first, with its verified roster
// cosigners; the evidence detected in the period, oldest first; each
// roster witness's availability over those checkpoints; and an end record
// (an export without one was cut short, and an error record says why).
// until defaults to the time of the request, since to the first record.
func (f *Feed) serveExport(w http.ResponseWriter, r *http.Request) {
	p, err := parseParams(r.URL.RawQuery, exportParams...)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	since, until, err := p.period()
	if err == nil && until.IsZero() {
		until = f.now().UTC()
		if !since.IsZero() && !since.Before(until) {
			err = fmt.Errorf("bad since: %s is not before now", since.Format(time.RFC3339))
		}
	}
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	format := FormatJSONL
	if p.has("format") {
		format = p.get("format")
	}
	ew, err := NewExportWriter(w, format)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if _, ok := f.src.(TimeSource); !ok {
		f.fail(w, r, http.StatusNotImplemented, errNoTimeSource)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ew.ContentType())
	h.Set("Cache-Control", "no-store")
	name := "vigil-export-" + until.Format("20060102T150405Z") + "." + format
	if !since.IsZero() {
		name = "vigil-export-" + since.Format("20060102T150405Z") + "-" + until.Format("20060102T150405Z") + "." + format
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	flush := func() error {
		if err := ew.Flush(); err != nil {
			return err
		}
		err := http.NewResponseController(w).Flush()
		if errors.Is(err, http.ErrNotSupported) {
			return nil
		}
		return err
	}
	if err := f.export(r.Context(), ew, since, until, flush); err != nil {
		f.log.Warn("feed: export cut short", "err", err)
		if r.Context().Err() == nil {
			ew.End(ExportEnd{Type: ExportTypeError, Error: "export cut short: " + err.Error()})
			flush()
		}
	}
}

// export writes the records of serveExport.
func (f *Feed) export(ctx context.Context, ew *ExportWriter, since, until time.Time, flush func() error) error {
	idx := f.views.roster()
	period := ExportPeriod{Until: until, Generated: f.now().UTC().Truncate(time.Second), Quorum: idx.r.Quorum()}
	if !since.IsZero() {
		period.Since = &since
	}
	if err := ew.Period(period); err != nil {
		return err
	}
	var names []string
	for _, w := range idx.r.Witnesses() {
		names = append(names, w.Name)
	}
	av := newAvailability(names)
	end := ExportEnd{}
	for _, l := range idx.logs {
		logID := tlog.LogID(l.Origin)
		cursor := ""
		for {
			entries, next, err := f.views.timed(ctx, idx, l, TimeQuery{Since: since, Until: until, Cursor: cursor, Limit: exportPage})
			if err != nil {
				return err
			}
			for _, te := range entries {
				if err := ew.Checkpoint(ExportCheckpoint{LogID: logID, Origin: l.Origin, CheckpointSummary: summarize(te.e), FirstSeen: te.firstSeen, Note: string(te.e.note)}); err != nil {
					return err
				}
				av.add(te.e.cosigners, te.firstSeen)
				end.Checkpoints++
			}
			if err := flush(); err != nil {
				return err
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	list, err := f.src.Evidence(ctx)
	if err != nil {
		return fmt.Errorf("reading evidence: %w", err)
	}
	ef := evidenceFilter{since: since, until: until}
	// The source lists the newest first; a report reads oldest first.
	for _, e := range slices.Backward(list) {
		e.LogID = tlog.LogID(e.Origin)
		if !ef.match(e) {
			continue
		}
		if err := ew.Evidence(e); err != nil {
			return err
		}
		end.Evidence++
	}
	for _, a := range av.rows() {
		if err := ew.Availability(a); err != nil {
			return err
		}
	}
	if err := ew.End(end); err != nil {
		return err
	}
	return flush()
}

// availability counts, per roster witness, the checkpoints it cosigned.
type availability struct {
	names []string
	by    map[string]*ExportAvailability
	total int
}

func newAvailability(names []string) *availability {
	a := &availability{names: names, by: map[string]*ExportAvailability{}}
	for _, n := range names {
		a.by[n] = &ExportAvailability{Witness: n}
	}
	return a
}

// add counts one checkpoint first seen at seen, cosigned by cosigners.
func (a *availability) add(cosigners []string, seen time.Time) {
	a.total++
	for _, n := range cosigners {
		r := a.by[n]
		if r == nil {
			continue
		}
		r.Cosigned++
		if r.FirstCosigned == nil || seen.Before(*r.FirstCosigned) {
			t := seen
			r.FirstCosigned = &t
		}
		if r.LastCosigned == nil || seen.After(*r.LastCosigned) {
			t := seen
			r.LastCosigned = &t
		}
	}
}

// rows are the witnesses' records in roster order.
func (a *availability) rows() []ExportAvailability {
	out := make([]ExportAvailability, 0, len(a.names))
	for _, n := range a.names {
		r := *a.by[n]
		r.Total = a.total
		if a.total > 0 {
			r.Share = float64(r.Cosigned) / float64(a.total)
		}
		out = append(out, r)
	}
	return out
}
