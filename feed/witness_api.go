package feed

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// WitnessesResponse is the body of GET /v1/witnesses.
type WitnessesResponse struct {
	Generated time.Time `json:"generated"`
	// Alive counts the roster witnesses in state alive.
	Alive int `json:"alive"`
	// QuorumNeeded is the fewest roster witnesses that can satisfy the
	// quorum; -1 when the roster is too large to work it out.
	QuorumNeeded int             `json:"quorum_witnesses_needed"`
	Witnesses    []WitnessStatus `json:"witnesses"`
}

// WitnessStatus is the timeline of one roster witness.
type WitnessStatus struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	URL  string `json:"url,omitempty"`
	// State is alive, late or missing; StateSince when it began (as this
	// node computed it).
	State      string     `json:"state"`
	StateSince *time.Time `json:"state_since"`
	// LastCosignature is its newest cosignature over all logs; null if
	// none was ever seen.
	LastCosignature *WitnessCosignature `json:"last_cosignature"`
	// LagSize and LagSeconds are its largest lag over the logs (see
	// WitnessLog).
	LagSize    uint64  `json:"lag_size"`
	LagSeconds float64 `json:"lag_seconds"`
	// Shares maps "1h", "24h" and "30d" to the share of the checkpoints it
	// cosigned in that window; null when no checkpoint was cosigned then.
	Shares map[string]*float64 `json:"shares"`
	// Logs is its record per roster log, in origin order.
	Logs []WitnessLog `json:"logs"`
	// Evidence lists the IDs of the evidence naming it, newest first.
	Evidence []string `json:"evidence"`
}

// WitnessCosignature is a witness's newest cosignature of one log.
type WitnessCosignature struct {
	LogID  string `json:"log_id"`
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// CosignedAt is the cosignature's own timestamp, SeenAt when this node
	// first saw it.
	CosignedAt time.Time `json:"cosigned_at"`
	SeenAt     time.Time `json:"seen_at"`
}

// WitnessLog is a witness's record on one log.
type WitnessLog struct {
	LogID  string `json:"log_id"`
	Origin string `json:"origin"`
	// Last is its newest cosignature of the log, null if none.
	Last *WitnessCosignature `json:"last"`
	// HeadSize is the largest size of the log this node saw cosigned by
	// any roster witness (0 if none).
	HeadSize uint64 `json:"head_size"`
	// LagSize is HeadSize minus the size it last cosigned; LagSeconds how
	// long after that cosignature this node saw the head (0 when it
	// cosigned the head).
	LagSize    uint64  `json:"lag_size"`
	LagSeconds float64 `json:"lag_seconds"`
	// BehindSince is when the head it has not cosigned appeared; null
	// while it is up to date.
	BehindSince *time.Time `json:"behind_since"`
	// ExpectedIntervalSeconds is the log's expected interval, the unit of
	// the late and missing thresholds.
	ExpectedIntervalSeconds float64 `json:"expected_interval_seconds"`
}

// WitnessDetail is the body of GET /v1/witnesses/{name}.
type WitnessDetail struct {
	WitnessStatus
	// History is its hourly record over the last 30 days, oldest first,
	// for every hour with a cosignature or a checkpoint.
	History []WitnessHour `json:"history"`
}

var errUnknownWitness = errors.New("unknown witness")

// witnessStatuses builds the status of every roster witness.
func (f *Feed) witnessStatuses(r *roster.Roster) ([]WitnessStatus, int) {
	now := f.now()
	f.stateMu.Lock()
	evidence := slices.Clone(f.evidence)
	f.stateMu.Unlock()
	t := f.witnesses
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []WitnessStatus
	alive := 0
	for _, w := range r.Witnesses() {
		ws := t.status(r, w, now)
		for _, e := range evidence {
			if slices.Contains(e.Witnesses, w.Name) {
				ws.Evidence = append(ws.Evidence, e.ID)
			}
		}
		if ws.State == WitnessAlive {
			alive++
		}
		out = append(out, ws)
	}
	return out, alive
}

// status builds one witness's status; t.mu must be held.
func (t *witnessTracker) status(r *roster.Roster, w *roster.Witness, now time.Time) WitnessStatus {
	tl := t.tl
	ws := WitnessStatus{Name: w.Name, Key: w.VKey, URL: w.URL, Shares: map[string]*float64{}, Logs: []WitnessLog{}, Evidence: []string{}}
	rec := tl.witnesses[w.Name]
	ws.State = tl.state(w.Name, t.watched(r), now)
	if rec != nil && rec.State == ws.State && !rec.Since.IsZero() {
		since := rec.Since
		ws.StateSince = &since
	}
	cosig := func(origin string, wl *witnessLog) *WitnessCosignature {
		return &WitnessCosignature{LogID: tlog.LogID(origin), Origin: origin, Size: wl.Size, CosignedAt: wl.At, SeenAt: wl.Seen}
	}
	if rec != nil {
		if origin, wl, ok := rec.last(); ok {
			ws.LastCosignature = cosig(origin, wl)
		}
	}
	for _, l := range r.Logs() {
		wlog := WitnessLog{LogID: tlog.LogID(l.Origin), Origin: l.Origin, ExpectedIntervalSeconds: t.interval(l.Origin).Seconds()}
		if h := tl.heads[l.Origin]; h != nil {
			wlog.HeadSize = h.Size
		}
		var wl *witnessLog
		if rec != nil {
			wl = rec.Logs[l.Origin]
		}
		if wl != nil && !wl.Seen.IsZero() {
			wlog.Last = cosig(l.Origin, wl)
		}
		if wl != nil && !wl.BehindSince.IsZero() {
			b := wl.BehindSince
			wlog.BehindSince = &b
		}
		wlog.LagSize, wlog.LagSeconds, _ = tl.lag(w.Name, l.Origin)
		ws.LagSize = max(ws.LagSize, wlog.LagSize)
		ws.LagSeconds = max(ws.LagSeconds, wlog.LagSeconds)
		ws.Logs = append(ws.Logs, wlog)
	}
	for _, win := range shareWindows {
		if s, ok := tl.share(w.Name, win.d, now); ok {
			ws.Shares[win.name] = &s
		} else {
			ws.Shares[win.name] = nil
		}
	}
	return ws
}

func (f *Feed) serveWitnesses(w http.ResponseWriter, r *http.Request) {
	ro := f.src.Roster()
	list, alive := f.witnessStatuses(ro)
	if list == nil {
		list = []WitnessStatus{}
	}
	f.writeJSON(w, r, 0, false, WitnessesResponse{Generated: f.now().UTC(), Alive: alive, QuorumNeeded: f.quorumNeeded(ro), Witnesses: list})
}

func (f *Feed) serveWitness(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ro := f.src.Roster()
	wit, ok := ro.Witness(name)
	if !ok {
		f.fail(w, r, http.StatusNotFound, fmt.Errorf("%w %q: the roster lists no witness of that name", errUnknownWitness, name))
		return
	}
	list, _ := f.witnessStatuses(ro)
	i := slices.IndexFunc(list, func(s WitnessStatus) bool { return s.Name == wit.Name })
	d := WitnessDetail{WitnessStatus: list[i]}
	f.witnesses.mu.Lock()
	d.History = f.witnesses.tl.hours(wit.Name)
	f.witnesses.mu.Unlock()
	f.writeJSON(w, r, 0, false, d)
}

// quorumNeeded returns the fewest roster witnesses that satisfy the
// roster's quorum (0 with no quorum or no witnesses), or -1 when the
// roster has more than maxQuorumSearch witnesses. It is cached per roster.
func (f *Feed) quorumNeeded(r *roster.Roster) int {
	t := f.witnesses
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.quorumOf == r {
		return t.quorum
	}
	t.quorumOf, t.quorum = r, minQuorum(r)
	return t.quorum
}

// maxQuorumSearch bounds the witnesses minQuorum searches subsets of.
const maxQuorumSearch = 24

// minQuorum finds the smallest set of roster witnesses satisfying the
// quorum by trying sets in order of size.
func minQuorum(r *roster.Roster) int {
	ws := r.Witnesses()
	if r.Quorum() == "" {
		return 0
	}
	if len(ws) > maxQuorumSearch {
		return -1
	}
	set := map[string]bool{}
	var try func(start, k int) bool
	try = func(start, k int) bool {
		if k == 0 {
			return r.QuorumMet(set)
		}
		for i := start; i <= len(ws)-k; i++ {
			set[ws[i].Name] = true
			ok := try(i+1, k-1)
			delete(set, ws[i].Name)
			if ok {
				return true
			}
		}
		return false
	}
	for k := 0; k <= len(ws); k++ {
		if try(0, k) {
			return k
		}
	}
	return -1
}
