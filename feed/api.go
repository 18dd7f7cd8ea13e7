package feed

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// Query limits of GET /v1/logs/{logID}/checkpoints.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// Cache lifetimes. Checkpoints change as logs grow and cosignatures arrive;
// evidence never changes once stored.
const (
	checkpointMaxAge = 10 * time.Second
	listMaxAge       = 5 * time.Second
	immutableMaxAge  = 365 * 24 * time.Hour
)

// EvidenceMediaType is the media type of a raw evidence file.
const EvidenceMediaType = "application/vnd.vigil.evidence"

// Handler returns the feed's routes on a mux of their own.
func (f *Feed) Handler() http.Handler {
	mux := http.NewServeMux()
	f.Register(mux)
	return mux
}

// Register adds the feed's routes to mux:
//
//	GET /v1/logs
//	GET /v1/logs/{logID}/checkpoint[?k=N]
//	GET /v1/logs/{logID}/checkpoints[?from=SIZE|since=T&until=T&cursor=C][&limit=N&witness=NAME]
//	GET /v1/evidence[?since=T&until=T&log=ID&kind=K&witness=NAME&after=ID&limit=N]
//	GET /v1/export?since=T&until=T&format=jsonl|csv
//	GET /v1/evidence/{id}[?format=json|raw]
//	GET /v1/suspicions[?open=true|false&after=ID&limit=N]
//	GET /v1/peers
//	GET /v1/witnesses, GET /v1/witnesses/{name}
//	GET /v1/events
//	GET /  (dashboard), GET /feed/static/..., POST /feed/login, GET /favicon.ico
//	OPTIONS /v1/... (only when CORS origins are configured)
func (f *Feed) Register(mux *http.ServeMux) {
	f.route(mux, "GET /v1/logs", "logs", f.serveLogs)
	f.route(mux, "GET /v1/logs/{logID}/checkpoint", "checkpoint", f.serveCheckpoint)
	f.route(mux, "GET /v1/logs/{logID}/checkpoints", "checkpoints", f.serveHistory)
	f.route(mux, "GET /v1/evidence", "evidence_list", f.serveEvidenceList)
	f.route(mux, "GET /v1/evidence/{id}", "evidence", f.serveEvidence)
	f.route(mux, "GET /v1/export", "export", f.serveExport)
	f.route(mux, "GET /v1/suspicions", "suspicions", f.serveSuspicions)
	f.route(mux, "GET /v1/peers", "peers", f.servePeers)
	f.route(mux, "GET /v1/witnesses", "witnesses", f.serveWitnesses)
	f.route(mux, "GET /v1/witnesses/{name}", "witness", f.serveWitness)
	f.route(mux, "GET /v1/events", "events", f.serveEvents)
	f.registerDashboard(mux)
	mux.HandleFunc("GET /favicon.ico", serveFavicon)
	if f.auth.corsEnabled() {
		mux.Handle("OPTIONS /v1/", http.HandlerFunc(f.auth.preflight))
	}
	mux.Handle(v1Fallback, f.unmatched(mux))
}

// v1Fallback is the pattern of every /v1/ request no route matches.
const v1Fallback = "/v1/"

// probeMethods are the methods unmatched tries to name in Allow.
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unmatched answers /v1/ requests that no route takes in the JSON error
// shape: 405 with Allow when the path exists under other methods, else 404.
// It asks mux which patterns would take the path under each method, so it
// follows routes added by anyone.
func (f *Feed) unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range probeMethods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "" && p != v1Fallback {
				allow = append(allow, m)
				if m == http.MethodGet {
					allow = append(allow, http.MethodHead)
				}
			}
		}
		f.auth.cors(w, r)
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			f.fail(w, r, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		f.fail(w, r, http.StatusNotFound, fmt.Errorf("not found: no API endpoint at %s (docs/api.md lists them)", r.URL.Path))
	})
}

// route wraps h with access control, CORS and metrics.
func (f *Feed) route(mux *http.ServeMux, pattern, name string, h http.HandlerFunc) {
	rm := f.metrics.route(name)
	mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		f.auth.cors(sw, r)
		switch {
		case f.auth.allowed(r):
			h(sw, r)
		case name == "dashboard":
			f.auth.challenge(sw)
			f.renderLogin(sw, r, http.StatusUnauthorized, "")
		default:
			f.auth.challenge(sw)
			f.fail(sw, r, http.StatusUnauthorized, errors.New("a bearer token is required"))
		}
		rm.observe(sw.code, time.Since(start))
	}))
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// apiError is the JSON body of every error of the JSON endpoints.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func (f *Feed) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiError{Error: err.Error(), Status: code})
}

// failText answers the C2SP monitoring endpoint, whose clients read text.
func failText(w http.ResponseWriter, code int, reason string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, reason)
}

func (f *Feed) writeJSON(w http.ResponseWriter, r *http.Request, maxAge time.Duration, etagged bool, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		f.fail(w, r, http.StatusInternalServerError, errors.New("encoding response"))
		return
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", f.auth.cacheControl(maxAge))
	if etagged {
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		h.Set("ETag", etag)
		if notModified(r, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Write(b)
}

// notModified reports whether the request's If-None-Match matches etag.
func notModified(r *http.Request, etag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for t := range strings.SplitSeq(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// CheckpointSummary describes one checkpoint in JSON.
type CheckpointSummary struct {
	Size uint64 `json:"size"`
	// Root is the standard base64 root hash, as in the checkpoint.
	Root string `json:"root"`
	// Cosigners are the roster witnesses whose cosignature verified.
	Cosigners []string `json:"cosigners"`
	// QuorumMet reports whether they satisfy the roster's quorum.
	QuorumMet bool `json:"quorum_met"`
	// CosignedAt is the newest cosignature's timestamp.
	CosignedAt *time.Time `json:"cosigned_at,omitempty"`
}

func summarize(e *entry) CheckpointSummary {
	if e == nil {
		return CheckpointSummary{}
	}
	s := CheckpointSummary{Size: e.cp.Size, Root: base64.StdEncoding.EncodeToString(e.cp.Root[:]), Cosigners: e.cosigners, QuorumMet: e.quorum}
	if s.Cosigners == nil {
		s.Cosigners = []string{}
	}
	if !e.cosignedAt.IsZero() {
		t := e.cosignedAt
		s.CosignedAt = &t
	}
	return s
}

func summaryPtr(e *entry) *CheckpointSummary {
	if e == nil {
		return nil
	}
	s := summarize(e)
	return &s
}

// LogInfo is one log in GET /v1/logs.
type LogInfo struct {
	Origin string `json:"origin"`
	LogID  string `json:"log_id"`
	Key    string `json:"key"`
	URL    string `json:"url,omitempty"`
	// Latest is the newest checkpoint the node holds, with its cosigners.
	Latest *CheckpointSummary `json:"latest"`
	// Quorum is the newest checkpoint that satisfies the roster quorum.
	Quorum *CheckpointSummary `json:"quorum"`
	// AgeSeconds is how long ago Latest was last cosigned.
	AgeSeconds *int64 `json:"age_seconds,omitempty"`
	// Evidence counts the evidence held against this log.
	Evidence int `json:"evidence"`
	// State is StateEvidence, StateDivergent, StateSuspect or StateOK: the
	// most serious of evidence held, an open unproven divergence, an open
	// suspicion, or none.
	State string `json:"state"`
	// OpenSuspicions counts the open suspicions of this log, and
	// Suspicions lists the MaxLogSuspicions newest seen of them.
	OpenSuspicions int         `json:"open_suspicions"`
	Suspicions     []Suspicion `json:"suspicions"`
	// Freshness is the log's freshness on the node's clock (freshness.go).
	Freshness Freshness `json:"freshness"`
	// Contested, when not null, says the log is contested and names the
	// conflicting sizes (contested.go).
	Contested *Contested `json:"contested"`
	Error     string     `json:"error,omitempty"`
}

// WitnessInfo is one roster witness.
type WitnessInfo struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	URL  string `json:"url,omitempty"`
}

// LogsResponse is the body of GET /v1/logs.
type LogsResponse struct {
	// Quorum is the roster's quorum group ("" when none is set).
	Quorum    string        `json:"quorum"`
	Witnesses []WitnessInfo `json:"witnesses"`
	Logs      []LogInfo     `json:"logs"`
	// Evidence counts all evidence the node holds.
	Evidence int `json:"evidence"`
	// OpenSuspicions counts the open suspicions of all logs, and
	// Divergent the logs with an open unproven divergence (whatever their
	// state: evidence outranks it).
	OpenSuspicions int `json:"open_suspicions"`
	Divergent      int `json:"divergent"`
	// LastEventID lets a client follow /v1/events from this snapshot.
	LastEventID string    `json:"last_event_id"`
	Generated   time.Time `json:"generated"`
}

func (f *Feed) logsSnapshot(r *http.Request) LogsResponse {
	resp := LogsResponse{LastEventID: f.hub.last(), Generated: f.now().UTC().Truncate(time.Second)}
	idx := f.views.roster()
	resp.Quorum = idx.r.Quorum()
	resp.Witnesses = []WitnessInfo{}
	for _, w := range idx.r.Witnesses() {
		resp.Witnesses = append(resp.Witnesses, WitnessInfo{Name: w.Name, Key: w.VKey, URL: w.URL})
	}
	evidence := f.evidenceList(r.Context())
	byOrigin := map[string]int{}
	for _, e := range evidence {
		byOrigin[e.Origin]++
	}
	resp.Evidence = len(evidence)
	suspicions := f.suspicionList(r.Context())
	open := openByOrigin(suspicions)
	resp.Logs = []LogInfo{}
	for _, v := range f.views.all(r.Context()) {
		li := LogInfo{Origin: v.log.Origin, LogID: v.logID, Key: v.log.VKey, URL: v.log.URL, Latest: summaryPtr(v.latest()), Quorum: summaryPtr(v.quorumEntry()), Evidence: byOrigin[v.log.Origin]}
		if e := v.latest(); e != nil && !e.cosignedAt.IsZero() {
			age := int64(f.now().Sub(e.cosignedAt) / time.Second)
			li.AgeSeconds = &age
		}
		if v.err != nil {
			li.Error = v.err.Error()
		}
		li.Freshness = f.fresh.freshness(v)
		li.Contested = contestedOf(v.log.Origin, evidence, suspicions)
		ss := open[v.log.Origin]
		li.State = logState(li.Evidence, ss)
		li.OpenSuspicions = len(ss)
		li.Suspicions = ss[:min(len(ss), MaxLogSuspicions)]
		if li.Suspicions == nil {
			li.Suspicions = []Suspicion{}
		}
		resp.OpenSuspicions += len(ss)
		if slices.ContainsFunc(ss, func(s Suspicion) bool { return s.Other != nil }) {
			resp.Divergent++
		}
		resp.Logs = append(resp.Logs, li)
	}
	return resp
}

func (f *Feed) serveLogs(w http.ResponseWriter, r *http.Request) {
	f.writeJSON(w, r, listMaxAge, false, f.logsSnapshot(r))
}

// serveCheckpoint serves, in the C2SP tlog-witness monitoring endpoint's
// format, the newest checkpoint the node holds (with at least k roster
// cosignatures if ?k=N is given) as a signed note. The note is verified and
// encoded when the view is built; this path only looks it up.
func (f *Feed) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	k := 0
	if s, ok := queryK(r.URL.RawQuery); ok {
		n, err := parseCount(s)
		if err != nil {
			failText(w, http.StatusBadRequest, "bad k: "+err.Error())
			return
		}
		k = n
	}
	v, err := f.views.byID(r.Context(), r.PathValue("logID"))
	switch {
	case errors.Is(err, errUnknownLog):
		// SPEC (tlog-witness §4): a log never cosigned → 404; here also
		// a log not in the roster.
		failText(w, http.StatusNotFound, "unknown log: no log in the roster has ID "+r.PathValue("logID"))
		return
	case err != nil:
		failText(w, http.StatusServiceUnavailable, "reading checkpoints failed; try again")
		return
	}
	if k >= len(v.byK) {
		failText(w, http.StatusBadRequest, fmt.Sprintf("bad k: %d exceeds the %d witnesses in the roster", k, len(v.byK)-1))
		return
	}
	e := v.byK[k]
	if e == nil {
		reason := "no checkpoint of " + v.log.Origin + " held yet"
		if k > 0 {
			reason = fmt.Sprintf("no checkpoint of %s with at least %d roster cosignatures yet", v.log.Origin, k)
			if best := v.latest(); best != nil {
				most := 0
				for _, x := range v.byK {
					if x != nil {
						most = max(most, len(x.cosigners))
					}
				}
				reason += fmt.Sprintf(" (the most any checkpoint has is %d)", most)
			}
		}
		failText(w, http.StatusNotFound, reason)
		return
	}
	h := w.Header()
	h["Content-Type"] = textPlain
	h["Cache-Control"] = f.auth.checkpointCache
	h["Etag"] = e.etagHdr
	if notModified(r, e.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = e.lengthHdr
	w.Write(e.note)
}

// queryK returns the first k parameter of a raw query without building a
// url.Values map (the hot path); anything escaped falls back to the parser.
func queryK(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	if strings.ContainsAny(raw, "%+;") {
		v, ok := parseQuery(raw)["k"]
		if !ok {
			return "", false
		}
		return v[0], true
	}
	for part := range strings.SplitSeq(raw, "&") {
		if v, ok := strings.CutPrefix(part, "k="); ok {
			return v, true
		}
		if part == "k" {
			return "", true
		}
	}
	return "", false
}

func parseQuery(raw string) url.Values {
	v, _ := url.ParseQuery(raw)
	return v
}

var textPlain = []string{"text/plain; charset=utf-8"}

// parseCount parses a non-negative decimal integer.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("%q is not a non-negative decimal integer", s)
	}
	return n, nil
}

// HistoryEntry is one checkpoint in GET /v1/logs/{logID}/checkpoints.
type HistoryEntry struct {
	CheckpointSummary
	// Note is the signed note with the cosignatures the node holds.
	Note string `json:"note"`
	// FirstSeen is when this node first saw the checkpoint (queries by
	// time only).
	FirstSeen *time.Time `json:"first_seen,omitempty"`
}

// HistoryResponse is the body of GET /v1/logs/{logID}/checkpoints.
type HistoryResponse struct {
	Origin string `json:"origin"`
	LogID  string `json:"log_id"`
	// Checkpoints are ordered by size, oldest first; a size with two roots
	// (a split view) appears twice.
	Checkpoints []HistoryEntry `json:"checkpoints"`
	// Next is the from of the next page, absent on the last page.
	Next *uint64 `json:"next,omitempty"`
	// NextCursor is the cursor of the next page of a query by time,
	// absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// EvidenceDetail is the JSON body of GET /v1/evidence/{id}.
type EvidenceDetail struct {
	Evidence
	// FileSHA256 is the hex SHA-256 of the raw evidence file.
	FileSHA256 string `json:"file_sha256"`
	// File is the raw evidence file (base64 in JSON); ?format=raw serves it as is.
	File []byte `json:"file"`
}

// validEvidenceID accepts what evidence IDs are made of (hex digests,
// base64url, dashes), so a path never reaches the source with odd bytes.
func validEvidenceID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func (f *Feed) serveEvidence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validEvidenceID(id) {
		f.fail(w, r, http.StatusBadRequest, errors.New("bad evidence ID: want 1 to 128 letters, digits, '-', '_' or '.'"))
		return
	}
	raw, ok := wantsRaw(r)
	if !ok {
		f.fail(w, r, http.StatusBadRequest, fmt.Errorf("bad format: %q is not json or raw", r.URL.Query().Get("format")))
		return
	}
	ev, file, err := f.src.EvidenceFile(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		f.fail(w, r, http.StatusNotFound, fmt.Errorf("no evidence with ID %s", id))
		return
	case err != nil:
		f.log.Warn("feed: reading evidence", "id", id, "err", err)
		f.fail(w, r, http.StatusServiceUnavailable, errors.New("reading evidence failed; try again"))
		return
	}
	ev.LogID = tlog.LogID(ev.Origin)
	sum := sha256.Sum256(file)
	h := w.Header()
	h.Set("Vary", "Accept")
	if !raw {
		// Evidence never changes once stored: cache it for good.
		f.writeJSON(w, r, immutableMaxAge, true, EvidenceDetail{Evidence: ev, FileSHA256: hex.EncodeToString(sum[:]), File: file})
		return
	}
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	h.Set("Content-Type", EvidenceMediaType)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="vigil-evidence-%s"`, id))
	h.Set("Cache-Control", f.auth.cacheControl(immutableMaxAge)+", immutable")
	h.Set("ETag", etag)
	if notModified(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(file)))
	w.Write(file)
}

// wantsRaw decides between the JSON and the raw evidence file: ?format=
// wins; otherwise an Accept header naming the evidence media type,
// application/octet-stream or text/plain (and not JSON) asks for the file.
func wantsRaw(r *http.Request) (raw, ok bool) {
	switch r.URL.Query().Get("format") {
	case "raw":
		return true, true
	case "json":
		return false, true
	case "":
	default:
		return false, false
	}
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "application/json") {
		return false, true
	}
	for _, t := range []string{EvidenceMediaType, "application/octet-stream", "text/plain"} {
		if strings.Contains(accept, t) {
			return true, true
		}
	}
	return false, true
}

// PeersResponse is the body of GET /v1/peers.
type PeersResponse struct {
	Peers []Peer `json:"peers"`
}

func (f *Feed) servePeers(w http.ResponseWriter, r *http.Request) {
	peers, err := f.src.Peers(r.Context())
	if err != nil {
		f.log.Warn("feed: listing peers", "err", err)
		f.fail(w, r, http.StatusServiceUnavailable, errors.New("reading peers failed; try again"))
		return
	}
	if peers == nil {
		peers = []Peer{}
	}
	f.writeJSON(w, r, 0, false, PeersResponse{Peers: peers})
}
