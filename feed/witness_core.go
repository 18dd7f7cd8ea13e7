package feed

import (
	"slices"
	"time"
)

// The witness timeline's pure core: what each roster witness cosigned and
// when, folded into per-log heads and hourly counters. It does no I/O and
// reads no clock; the tracker (witness_timeline.go) feeds it observations
// and ticks, persists it and publishes what changes.

// Witness states (the "state" of /v1/witnesses and of witness events).
const (
	// WitnessAlive: the witness has cosigned every log's newest cosigned
	// checkpoint, or fell behind for less than the late threshold.
	WitnessAlive = "alive"
	// WitnessLate: behind on some log for longer than LateFactor times
	// that log's expected interval.
	WitnessLate = "late"
	// WitnessMissing: behind on some log for longer than MissingFactor
	// times its expected interval, or no cosignature of it was ever seen.
	WitnessMissing = "missing"
)

// Default witness thresholds.
const (
	// LateFactor and MissingFactor multiply a log's expected interval.
	LateFactor    = 1
	MissingFactor = 3
	// timelineRetention is how long hourly counters are kept.
	timelineRetention = 30 * 24 * time.Hour
)

// Share windows of /v1/witnesses.
var shareWindows = []struct {
	name string
	d    time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"30d", timelineRetention}}

// seenCosig is one roster witness's cosignature, as found in a note.
type seenCosig struct {
	witness string
	// at is the cosignature's own timestamp; zero if it carries none.
	at time.Time
}

// logHead is the newest checkpoint of a log that carried at least one
// roster cosignature.
type logHead struct {
	Size uint64    `json:"size"`
	Seen time.Time `json:"seen"`
}

// witnessLog is what one witness did on one log.
type witnessLog struct {
	// Size is the largest tree size it cosigned; At its cosignature's
	// timestamp; Seen when this node saw that cosignature. Seen is zero if
	// it never cosigned this log.
	Size uint64    `json:"size"`
	At   time.Time `json:"at,omitzero"`
	Seen time.Time `json:"seen,omitzero"`
	// BehindSince is when the head it has not cosigned appeared; zero
	// while it is up to date. When it cosigns a size below the head it is
	// the head's Seen, so the lag it shows errs short, never long.
	BehindSince time.Time `json:"behind_since,omitzero"`
}

// witnessRecord is the timeline of one roster witness.
type witnessRecord struct {
	Logs map[string]*witnessLog `json:"logs"`
	// Hours counts, per Unix hour (seconds / 3600), the checkpoints whose
	// cosignature by this witness this node first saw in that hour.
	Hours map[int64]uint32 `json:"hours"`
	// State and Since are the last state computed and when it began.
	State string    `json:"state,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

// timeline is the state of every witness. Not safe for concurrent use.
type timeline struct {
	heads map[string]*logHead
	// totals counts, per Unix hour, the new heads: checkpoints that grew a
	// log and carried at least one roster cosignature (the share's
	// denominator).
	totals    map[int64]uint32
	witnesses map[string]*witnessRecord
	// dirty names what changed since the last save ("" for heads and
	// totals).
	dirty map[string]bool
}

func newTimeline() *timeline {
	return &timeline{heads: map[string]*logHead{}, totals: map[int64]uint32{}, witnesses: map[string]*witnessRecord{}, dirty: map[string]bool{}}
}

func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

func (tl *timeline) record(name string) *witnessRecord {
	w := tl.witnesses[name]
	if w == nil {
		w = &witnessRecord{Logs: map[string]*witnessLog{}, Hours: map[int64]uint32{}}
		tl.witnesses[name] = w
	}
	return w
}

// observe folds in a checkpoint of origin at size, seen at seen, with the
// roster cosignatures cosigs that this node had not seen on it before.
// roster lists every roster witness. A cosignature of a size at or below
// the largest its witness already cosigned on the log counts nothing, so
// one cosignature seen through two hooks counts once.
func (tl *timeline) observe(origin string, size uint64, cosigs []seenCosig, roster []string, seen time.Time) {
	if len(cosigs) == 0 {
		return
	}
	h := tl.heads[origin]
	if h == nil || size > h.Size {
		h = &logHead{Size: size, Seen: seen}
		tl.heads[origin] = h
		tl.totals[hourOf(seen)]++
		tl.dirty[""] = true
		for _, name := range roster {
			wl := tl.record(name).Logs[origin]
			if wl == nil {
				wl = &witnessLog{}
				tl.record(name).Logs[origin] = wl
			}
			if wl.Size < size && wl.BehindSince.IsZero() {
				wl.BehindSince = seen
				tl.dirty[name] = true
			}
		}
	}
	for _, c := range cosigs {
		w := tl.record(c.witness)
		wl := w.Logs[origin]
		if wl == nil {
			wl = &witnessLog{}
			w.Logs[origin] = wl
		}
		if size <= wl.Size && !wl.Seen.IsZero() {
			continue
		}
		wl.Size, wl.At, wl.Seen = size, c.at, seen
		if wl.At.IsZero() {
			wl.At = seen
		}
		if size >= h.Size {
			wl.BehindSince = time.Time{}
		} else {
			wl.BehindSince = h.Seen
		}
		w.Hours[hourOf(seen)]++
		tl.dirty[c.witness] = true
	}
}

// intervalFunc returns a log's expected publication interval, or 0 for a
// log that is not watched (no longer in the roster), which then counts
// for no witness's state.
type intervalFunc func(origin string) time.Duration

// state computes a witness's state at now over the logs with a head.
func (tl *timeline) state(name string, interval intervalFunc, now time.Time) string {
	w := tl.witnesses[name]
	if w == nil || !w.cosigned() {
		return WitnessMissing
	}
	st := WitnessAlive
	for origin, h := range tl.heads {
		iv := interval(origin)
		if iv <= 0 {
			continue
		}
		since := h.Seen
		if wl := w.Logs[origin]; wl != nil {
			if wl.BehindSince.IsZero() {
				continue
			}
			since = wl.BehindSince
		}
		behind := now.Sub(since)
		switch {
		case behind > MissingFactor*iv:
			return WitnessMissing
		case behind > LateFactor*iv:
			st = WitnessLate
		}
	}
	return st
}

// cosigned reports whether any cosignature of the witness was seen.
func (w *witnessRecord) cosigned() bool {
	for _, wl := range w.Logs {
		if !wl.Seen.IsZero() {
			return true
		}
	}
	return false
}

// last returns the witness's newest cosignature over all logs (by the
// time this node saw it) and its log; ok is false if it has none.
func (w *witnessRecord) last() (origin string, wl *witnessLog, ok bool) {
	for o, l := range w.Logs {
		if l.Seen.IsZero() {
			continue
		}
		if !ok || l.Seen.After(wl.Seen) || (l.Seen.Equal(wl.Seen) && o < origin) {
			origin, wl, ok = o, l, true
		}
	}
	return origin, wl, ok
}

// transition is a change of a witness's state.
type transition struct {
	witness, state, previous string
	lastCosigned             time.Time
}

// tick recomputes every roster witness's state at now and returns the
// changes. A witness seen for the first time takes its state silently.
func (tl *timeline) tick(roster []string, interval intervalFunc, now time.Time) []transition {
	var out []transition
	for _, name := range roster {
		st := tl.state(name, interval, now)
		w := tl.record(name)
		if w.State == st {
			continue
		}
		if w.State != "" {
			tr := transition{witness: name, state: st, previous: w.State}
			if _, wl, ok := w.last(); ok {
				tr.lastCosigned = wl.At
			}
			out = append(out, tr)
		}
		w.State, w.Since = st, now
		tl.dirty[name] = true
	}
	return out
}

// prune drops hourly counters older than the retention.
func (tl *timeline) prune(now time.Time) {
	oldest := hourOf(now.Add(-timelineRetention))
	for h := range tl.totals {
		if h < oldest {
			delete(tl.totals, h)
			tl.dirty[""] = true
		}
	}
	for name, w := range tl.witnesses {
		for h := range w.Hours {
			if h < oldest {
				delete(w.Hours, h)
				tl.dirty[name] = true
			}
		}
	}
}

// share returns the witness's share of the heads over the window ending
// at now, or ok false when there were none. Counters are hourly: the
// hour straddling the window's start is weighted by the part of it inside
// the window.
func (tl *timeline) share(name string, window time.Duration, now time.Time) (share float64, ok bool) {
	w := tl.witnesses[name]
	var num, den float64
	start := now.Add(-window)
	first := hourOf(start)
	weight := 1 - float64(start.Unix()-first*3600)/3600
	for h := first; h <= hourOf(now); h++ {
		f := 1.0
		if h == first {
			f = weight
		}
		den += f * float64(tl.totals[h])
		if w != nil {
			num += f * float64(w.Hours[h])
		}
	}
	if den <= 0 {
		return 0, false
	}
	return min(1, num/den), true
}

// lag returns how far the witness is behind the head of origin: in tree
// size, and in seconds between this node seeing the head and seeing the
// witness's newest cosignature of the log (0 when it cosigned the head;
// unknown, ok false, when it never cosigned the log).
func (tl *timeline) lag(name, origin string) (size uint64, seconds float64, ok bool) {
	h := tl.heads[origin]
	if h == nil {
		return 0, 0, false
	}
	var wl *witnessLog
	if w := tl.witnesses[name]; w != nil {
		wl = w.Logs[origin]
	}
	if wl == nil || wl.Seen.IsZero() {
		return h.Size, 0, false
	}
	if wl.Size >= h.Size {
		return 0, 0, true
	}
	return h.Size - wl.Size, max(0, h.Seen.Sub(wl.Seen).Seconds()), true
}

// hours returns the witness's hourly counters with the totals, oldest
// first, for every hour in which either is non-zero.
func (tl *timeline) hours(name string) []WitnessHour {
	w := tl.witnesses[name]
	set := map[int64]bool{}
	for h := range tl.totals {
		set[h] = true
	}
	if w != nil {
		for h := range w.Hours {
			set[h] = true
		}
	}
	keys := make([]int64, 0, len(set))
	for h := range set {
		keys = append(keys, h)
	}
	slices.Sort(keys)
	out := make([]WitnessHour, 0, len(keys))
	for _, h := range keys {
		wh := WitnessHour{Hour: time.Unix(h*3600, 0).UTC(), Checkpoints: tl.totals[h]}
		if w != nil {
			wh.Cosigned = w.Hours[h]
		}
		out = append(out, wh)
	}
	return out
}

// WitnessHour is one hourly bucket of a witness's history.
type WitnessHour struct {
	// Hour is the bucket's start.
	Hour time.Time `json:"hour"`
	// Cosigned counts the checkpoints this witness's cosignature was first
	// seen on in that hour; Checkpoints the checkpoints that grew a log
	// with at least one roster cosignature.
	Cosigned    uint32 `json:"cosigned"`
	Checkpoints uint32 `json:"checkpoints"`
}
