package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/notify"
	"github.com/vigilnet/vigil/tlog"
)

// onCallReceiver is a local webhook receiver. While down it answers 503.
// It verifies every request's HMAC signature and headers and counts the
// accepted deliveries per notification ID.
type onCallReceiver struct {
	t      *testing.T
	secret string
	url    string

	mu       sync.Mutex
	down     bool
	refused  int
	got      []notify.Notification
	accepted map[string]int
	changed  chan struct{}
}

func newOnCallReceiver(t *testing.T, secret string, down bool) *onCallReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &onCallReceiver{t: t, secret: secret, url: "http://" + ln.Addr().String() + "/hook", down: down, accepted: map[string]int{}, changed: make(chan struct{})}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(h.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *onCallReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() { close(h.changed); h.changed = make(chan struct{}) }()
	if h.down {
		h.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		h.t.Errorf("webhook request %s with content type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if !notify.Verify(h.secret, body, r.Header.Get(notify.SignatureHeader)) {
		h.t.Errorf("webhook body with a bad %s %q: %s", notify.SignatureHeader, r.Header.Get(notify.SignatureHeader), body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n notify.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		h.t.Errorf("webhook body: %v: %s", err, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.Header.Get(notify.DeliveryHeader) != n.ID || r.Header.Get(notify.EventHeader) != n.Event {
		h.t.Errorf("headers %s=%q %s=%q for notification %s %s", notify.DeliveryHeader, r.Header.Get(notify.DeliveryHeader), notify.EventHeader, r.Header.Get(notify.EventHeader), n.ID, n.Event)
	}
	h.accepted[n.ID]++
	h.got = append(h.got, n)
}

func (h *onCallReceiver) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// waitNote waits for an accepted notification of kind whose summary
// contains substr, and returns it.
func (h *onCallReceiver) waitNote(kind, substr string) notify.Notification {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		i := slices.IndexFunc(h.got, func(n notify.Notification) bool { return n.Event == kind && strings.Contains(n.Summary, substr) })
		var n notify.Notification
		if i >= 0 {
			n = h.got[i]
		}
		ch := h.changed
		h.mu.Unlock()
		if i >= 0 {
			return n
		}
		select {
		case <-ch:
		case <-deadline:
			h.t.Fatalf("no %s notification saying %q before the deadline", kind, substr)
		}
	}
}

// waitCond waits until cond holds (called with h.mu held).
func (h *onCallReceiver) waitCond(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		ok, ch := cond(), h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// ids returns the accepted notification IDs in arrival order.
func (h *onCallReceiver) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, n := range h.got {
		out = append(out, n.ID)
	}
	return out
}

// eventLog records every event of /v1/events, in order.
type eventLog struct {
	mu      sync.Mutex
	events  []feed.StreamEvent
	changed chan struct{}
}

func followEvents(t *testing.T, base string) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	el := &eventLog{changed: make(chan struct{})}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the retry line: subscribed
		t.Fatal(err)
	}
	go func() {
		defer resp.Body.Close()
		feed.ReadEvents(br, func(ev feed.StreamEvent) bool {
			el.mu.Lock()
			el.events = append(el.events, ev)
			close(el.changed)
			el.changed = make(chan struct{})
			el.mu.Unlock()
			return true
		})
	}()
	return el
}

// wait returns the first event of typ, at or after *from, whose data
// decoded into v satisfies ok, and moves *from past it.
func waitEvent[T any](t *testing.T, el *eventLog, from *int, typ string, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		el.mu.Lock()
		evs, ch := el.events, el.changed
		el.mu.Unlock()
		for i := *from; i < len(evs); i++ {
			if evs[i].Type != typ {
				continue
			}
			var v T
			if err := json.Unmarshal([]byte(evs[i].Data), &v); err != nil {
				t.Fatalf("%s event %s: %v", typ, evs[i].Data, err)
			}
			if ok(v) {
				*from = i + 1
				return v
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no matching %s event before the deadline", typ)
		}
	}
}

// gossipCosign merges the cosignatures of the other witnesses (indexes
// into fn.others) into the log's checkpoint record at size through the
// store hook gossip writes through. A new record starts from the note this
// node's own witness cosigned, as gossip merges it.
func (fn *feedNode) gossipCosign(at time.Time, size uint64, others ...int) {
	t := fn.t
	t.Helper()
	root, err := fn.log.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	base, err := fn.log.CheckpointAt(size)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := fn.db.WitnessState(context.Background(), fn.log.Origin()); err == nil && st.Size == size {
		base = st.Checkpoint
	}
	verifiers := []note.Verifier{}
	lv, _ := note.NewVerifier(fn.log.VerifierKey())
	verifiers = append(verifiers, lv)
	for _, w := range fn.r.Witnesses() {
		verifiers = append(verifiers, w.Verifier)
	}
	var signers []note.Signer
	for _, i := range others {
		signers = append(signers, fn.others[i])
	}
	mergeCosignatures(t, fn, fn.log.Origin(), size, root, base, verifiers, signers, at)
}

// waitMetric polls /metrics until series has a value that ok accepts.
func (fn *feedNode) waitMetric(series string, ok func(float64) bool) float64 {
	fn.t.Helper()
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	end := time.After(20 * time.Second)
	for {
		v := metricValue(fn.t, fn, series)
		if f, err := strconv.ParseFloat(v, 64); err == nil && ok(f) {
			return f
		}
		select {
		case <-tk.C:
		case <-end:
			fn.t.Fatalf("%s: last value %q", series, v)
		}
	}
}

// TestNodeOnCall drives one real node (Badger store, HTTP API, its own
// witness "self", witnesses w1 and w2 whose cosignatures arrive through the
// gossip store hook; quorum 2 of 3) on an injected clock through what an
// operator on call and a regulator watch: a log going stale and fresh
// again, a roster witness going silent and returning, and a split view.
// At each step it checks GET /v1/logs and /v1/witnesses, the events of
// /v1/events, /metrics, and the webhooks delivered to two local receivers,
// one of which is down until the end: the other gets every notification
// as it happens, and once back the first gets the same notifications,
// each signed and accepted once. Then the JSON Lines and CSV exports of
// the period hold the checkpoints with their cosigners, each witness's
// availability and the evidence. Last, a checkpoint that waits for its
// quorum past the expected interval is announced and notified as a lost
// quorum.
func TestNodeOnCall(t *testing.T) {
	const secretA, secretB = "on-call-secret-A-0123", "on-call-secret-B-4567"
	hookA := newOnCallReceiver(t, secretA, false)
	hookB := newOnCallReceiver(t, secretB, true)
	start := time.Now().Truncate(time.Second)
	clk := &manualClock{t: start}
	fn := startFeedNodeWith(t, clk.Now, func(c *node.Config) {
		// The log's expected interval is a minute: late after 2, stale
		// after 12. The witness timeline's interval is 200 ms of the
		// injected clock (late after 200 ms behind, missing after 600 ms),
		// which also has it re-read the clock every 20 ms.
		c.Freshness = node.FreshnessConfig{DefaultInterval: time.Hour, CheckEvery: 5 * time.Millisecond,
			Intervals: map[string]time.Duration{"example.com/nodelog": time.Minute}}
		c.Feed.WitnessInterval = 200 * time.Millisecond
		c.Alerts = notify.Config{
			Webhooks:            []notify.Webhook{{URL: hookA.url, Secret: secretA}, {URL: hookB.url, Secret: secretB}},
			WitnessMissingAfter: 300 * time.Millisecond,
			RetryBase:           10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		}
	})
	events := followEvents(t, fn.n.URL())
	cursor := 0
	origin := fn.log.Origin()
	logID := tlog.LogID(origin)
	originLabel := `{origin="` + origin + `"}`

	// 1. Fresh: size 5 cosigned by everyone.
	fn.log.AppendN(5, "a")
	fn.push(0)
	fn.gossipCosign(clk.Now(), 5, 0, 1)
	cp := waitEvent(t, events, &cursor, feed.EventCheckpoint, func(c feed.CheckpointEvent) bool { return c.Size == 5 })
	if !cp.QuorumMet || len(cp.Cosigners) != 3 || cp.CosignedAt == nil || cp.Contested != nil || cp.LogID != logID {
		t.Fatalf("first checkpoint event: %+v", cp)
	}
	row := fn.waitRow("fresh at 5", func(l feed.LogInfo) bool { return l.Freshness.QuorumAgeSeconds != nil })
	if row.Freshness.State != feed.FreshnessFresh || row.Freshness.ExpectedIntervalSeconds != 60 || row.Contested != nil {
		t.Fatalf("fresh row: %+v", row)
	}
	fn.waitMetric("vigil_witnesses_alive", func(v float64) bool { return v == 3 })
	ws := witnessesOf(t, fn)
	for _, name := range []string{"self", "w1", "w2"} {
		if w := ws[name]; w.State != feed.WitnessAlive || w.LastCosignature == nil || w.LastCosignature.Size != 5 {
			t.Errorf("%s at size 5: %+v", name, w)
		}
	}
	if v := metricValue(t, fn, "vigil_log_stale"+originLabel); v != "0" {
		t.Errorf("vigil_log_stale = %q at size 5", v)
	}

	// 2. The log stops publishing: late after two intervals, stale after
	// twelve, on the clock alone. The stale log is notified.
	clk.Advance(2*time.Minute + time.Second)
	fe := waitEvent(t, events, &cursor, feed.EventFreshness, func(feed.FreshnessEvent) bool { return true })
	if fe.State != feed.FreshnessLate || fe.Previous != feed.FreshnessFresh || fe.Log != logID || fe.Origin != origin || fe.QuorumAgeSeconds == nil || *fe.QuorumAgeSeconds != 121 {
		t.Errorf("late event: %+v", fe)
	}
	clk.Advance(10 * time.Minute)
	fe = waitEvent(t, events, &cursor, feed.EventFreshness, func(feed.FreshnessEvent) bool { return true })
	if fe.State != feed.FreshnessStale || fe.Previous != feed.FreshnessLate || fe.ExpectedIntervalSeconds != 60 {
		t.Errorf("stale event: %+v", fe)
	}
	if row := fn.logRow(); row.Freshness.State != feed.FreshnessStale || *row.Freshness.QuorumAgeSeconds != 721 {
		t.Errorf("stale row: %+v", row.Freshness)
	}
	if v := metricValue(t, fn, "vigil_log_stale"+originLabel); v != "1" {
		t.Errorf("vigil_log_stale = %q when stale", v)
	}
	if v := metricValue(t, fn, "vigil_log_quorum_age_seconds"+originLabel); v != "721" {
		t.Errorf("vigil_log_quorum_age_seconds = %q when stale", v)
	}
	staleNote := hookA.waitNote(notify.KindStale, "is stale")
	var staleData feed.FreshnessEvent
	if err := json.Unmarshal(staleNote.Data, &staleData); err != nil || staleData.State != feed.FreshnessStale || staleData.Origin != origin {
		t.Errorf("stale notification data %s: %v", staleNote.Data, err)
	}
	// A stale log's witnesses are not behind: each cosigned its head.
	if v := metricValue(t, fn, "vigil_witnesses_alive"); v != "3" {
		t.Errorf("vigil_witnesses_alive = %q while the log is stale", v)
	}

	// 3. The log publishes size 8; self and w1 cosign it (a quorum), w2
	// stays silent. The log is fresh again; w2 turns late, then missing,
	// and after the debounce a witness notification goes out.
	fn.log.AppendN(3, "b")
	fn.push(5)
	fn.gossipCosign(clk.Now(), 8, 0)
	cp = waitEvent(t, events, &cursor, feed.EventCheckpoint, func(c feed.CheckpointEvent) bool { return c.Size == 8 })
	if !cp.QuorumMet || slices.Contains(cp.Cosigners, "w2") {
		t.Errorf("size 8 event: %+v", cp)
	}
	fe = waitEvent(t, events, &cursor, feed.EventFreshness, func(feed.FreshnessEvent) bool { return true })
	if fe.State != feed.FreshnessFresh || fe.Previous != feed.FreshnessStale {
		t.Errorf("fresh-again event: %+v", fe)
	}
	hookA.waitNote(notify.KindStale, "no longer stale")
	fn.waitMetric("vigil_log_stale"+originLabel, func(v float64) bool { return v == 0 })

	clk.Advance(250 * time.Millisecond)
	we := waitEvent(t, events, &cursor, feed.EventWitness, func(e feed.WitnessEvent) bool { return e.Witness == "w2" })
	if we.State != feed.WitnessLate || we.Previous != feed.WitnessAlive || we.LastCosignedAt == nil {
		t.Errorf("w2 late event: %+v", we)
	}
	clk.Advance(400 * time.Millisecond)
	we = waitEvent(t, events, &cursor, feed.EventWitness, func(e feed.WitnessEvent) bool { return e.Witness == "w2" })
	if we.State != feed.WitnessMissing || we.Previous != feed.WitnessLate {
		t.Errorf("w2 missing event: %+v", we)
	}
	ws = witnessesOf(t, fn)
	if w := ws["w2"]; w.State != feed.WitnessMissing || w.LagSize != 3 || w.LastCosignature == nil || w.LastCosignature.Size != 5 {
		t.Errorf("silent w2: %+v", w)
	}
	if w := ws["w1"]; w.State != feed.WitnessAlive {
		t.Errorf("w1 while w2 is silent: %+v", w)
	}
	if v := metricValue(t, fn, `vigil_witness_alive{witness="w2"}`); v != "0" {
		t.Errorf(`vigil_witness_alive{witness="w2"} = %q while missing`, v)
	}
	if v := metricValue(t, fn, "vigil_witnesses_alive"); v != "2" {
		t.Errorf("vigil_witnesses_alive = %q while w2 is missing", v)
	}
	if v := metricValue(t, fn, "vigil_quorum_witnesses_needed"); v != "2" {
		t.Errorf("vigil_quorum_witnesses_needed = %q", v)
	}
	missing := hookA.waitNote(notify.KindWitness, "has been missing")
	if !strings.HasPrefix(missing.ID, "witness/w2/missing/") {
		t.Errorf("witness missing notification %+v", missing)
	}

	// 4. w2 cosigns size 8: alive again, and the return is notified.
	fn.gossipCosign(clk.Now(), 8, 1)
	we = waitEvent(t, events, &cursor, feed.EventWitness, func(e feed.WitnessEvent) bool { return e.Witness == "w2" })
	if we.State != feed.WitnessAlive || we.Previous != feed.WitnessMissing {
		t.Errorf("w2 return event: %+v", we)
	}
	hookA.waitNote(notify.KindWitness, "w2 is cosigning again")
	cp = waitEvent(t, events, &cursor, feed.EventCheckpoint, func(c feed.CheckpointEvent) bool { return c.Size == 8 && len(c.Cosigners) == 3 })
	if cp.Contested != nil {
		t.Errorf("size 8 with all cosigners: %+v", cp)
	}
	fn.waitMetric("vigil_witnesses_alive", func(v float64) bool { return v == 3 })
	if w := witnessesOf(t, fn)["w2"]; w.State != feed.WitnessAlive || w.LagSize != 0 || w.LastCosignature.Size != 8 {
		t.Errorf("returned w2: %+v", w)
	}

	// 5. A split view: the log signs two roots for size 9 and the node
	// stores the evidence. The log is contested at size 9: the evidence
	// event, /v1/logs, the gauge, then the next checkpoint event, and the
	// evidence and contested notifications.
	eid := fn.storeSplitView(8, clk.Now())
	fn.n.Feed().EvidenceUpdated()
	evd := waitEvent(t, events, &cursor, feed.EventEvidence, func(feed.Evidence) bool { return true })
	if evd.ID != eid || evd.Origin != origin || !slices.Equal(evd.Sizes, []uint64{9, 9}) {
		t.Errorf("evidence event %+v", evd)
	}
	row = fn.waitRow("contested", func(l feed.LogInfo) bool { return l.Contested != nil })
	if c := row.Contested; !slices.Equal(c.Sizes, []uint64{9}) || !slices.Equal(c.Evidence, []string{eid}) {
		t.Errorf("contested row: %+v", c)
	}
	fn.waitMetric("vigil_log_contested"+originLabel, func(v float64) bool { return v == 1 })
	// (vigil_evidence_total counts what gossip detects or receives; this
	// node runs without gossip and the evidence went straight to its store.)
	if n := hookA.waitNote(notify.KindEvidence, origin); n.ID != "evidence/"+eid {
		t.Errorf("evidence notification %+v", n)
	}
	// The change of contested state is announced at once, on the newest
	// checkpoint announced (size 8), without waiting for the log to grow.
	cp = waitEvent(t, events, &cursor, feed.EventCheckpoint, func(feed.CheckpointEvent) bool { return true })
	if cp.Size != 8 || !cp.QuorumMet || cp.Contested == nil || !slices.Equal(cp.Contested.Sizes, []uint64{9}) || !slices.Equal(cp.Contested.Evidence, []string{eid}) {
		t.Errorf("checkpoint event announcing the contested state: %+v", cp)
	}
	contested := hookA.waitNote(notify.KindContested, "contested at sizes 9")
	// The log grows: its checkpoint events keep saying it is contested,
	// and the unchanged contested state is not notified again.
	fn.push(8)
	fn.gossipCosign(clk.Now(), 9, 0)
	cp = waitEvent(t, events, &cursor, feed.EventCheckpoint, func(c feed.CheckpointEvent) bool { return c.Size == 9 })
	if !cp.QuorumMet || cp.Contested == nil || !slices.Equal(cp.Contested.Sizes, []uint64{9}) || !slices.Equal(cp.Contested.Evidence, []string{eid}) {
		t.Errorf("contested checkpoint event: %+v", cp)
	}

	if code, page := fn.get("/"); code != 200 || !strings.Contains(page, `data-contested-sizes="9"`) {
		t.Errorf("the dashboard lacks the contested row: %d", code)
	}
	var cd feed.CheckpointEvent
	if err := json.Unmarshal(contested.Data, &cd); err != nil || !strings.HasPrefix(contested.ID, "contested/") || cd.Contested == nil || cd.Origin != origin {
		t.Errorf("contested notification %+v: %v", contested, err)
	}

	// 6. Receiver B comes back: it gets every notification A got, each
	// accepted once; A accepted each once too. The outbox drains.
	wantIDs := hookA.ids()
	if len(wantIDs) != 6 {
		t.Errorf("receiver A got %d notifications, want 6 (stale, fresh, witness missing, witness back, evidence, contested): %v", len(wantIDs), wantIDs)
	}
	hookB.mu.Lock()
	refused := hookB.refused
	hookB.mu.Unlock()
	if refused < len(wantIDs) {
		t.Errorf("receiver B refused %d attempts while down, want at least one per notification", refused)
	}
	hookB.setDown(false)
	hookB.waitCond("receiver B's deliveries", func() bool { return len(hookB.got) >= len(wantIDs) })
	fn.waitMetric("vigil_notify_outbox_deliveries", func(v float64) bool { return v == 0 })
	for _, h := range []*onCallReceiver{hookA, hookB} {
		h.mu.Lock()
		for id, n := range h.accepted {
			if n != 1 {
				t.Errorf("%s accepted %s %d times", h.url, id, n)
			}
		}
		h.mu.Unlock()
	}
	gotB := hookB.ids()
	slices.Sort(gotB)
	sortedA := slices.Sorted(slices.Values(wantIDs))
	if !slices.Equal(gotB, sortedA) {
		t.Errorf("receiver B got %v, receiver A %v", gotB, sortedA)
	}
	if v := fn.waitMetric(`vigil_notify_deliveries_total{result="retry"}`, func(float64) bool { return true }); v < float64(refused) {
		t.Errorf("retry deliveries %v, receiver B refused %d", v, refused)
	}
	if v := metricValue(t, fn, `vigil_notify_deliveries_total{result="ok"}`); v != strconv.Itoa(2*len(wantIDs)) {
		t.Errorf("ok deliveries %q, want %d", v, 2*len(wantIDs))
	}
	for kind, want := range map[string]string{notify.KindStale: "2", notify.KindWitness: "2", notify.KindEvidence: "1", notify.KindContested: "1"} {
		if v := metricValue(t, fn, `vigil_notify_notifications_total{event="`+kind+`"}`); v != want {
			t.Errorf("vigil_notify_notifications_total{event=%q} = %q, want %s", kind, v, want)
		}
	}

	// 7. The export of the period: checkpoints 5, 8 and 9 with their
	// cosigners, the witnesses' availability (w2 cosigned 5 and 8, not 9),
	// the evidence, and a complete end record; the CSV says the same.
	q := url.Values{"since": {start.Add(-time.Minute).UTC().Format(time.RFC3339)}, "until": {clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	q.Set("format", "jsonl")
	code, body := fn.get("/v1/export?" + q.Encode())
	if code != 200 {
		t.Fatalf("/v1/export jsonl: %d %s", code, body)
	}
	want := onCallExport{
		cosigners: map[uint64]string{5: "self w1 w2", 8: "self w1 w2", 9: "self w1"},
		avail:     map[string][2]int{"self": {3, 3}, "w1": {3, 3}, "w2": {2, 3}},
		evidence:  eid,
	}
	want.check(t, "jsonl", readJSONLExport(t, body))
	q.Set("format", "csv")
	code, body = fn.get("/v1/export?" + q.Encode())
	if code != 200 {
		t.Fatalf("/v1/export csv: %d %s", code, body)
	}
	want.check(t, "csv", readCSVExport(t, body))

	// 8. Quorum lost: size 10 gets only this node's cosignature. Nothing
	// is announced while it waits; past the expected interval the
	// checkpoint event says quorum_met false, the gauge is 1 and both
	// receivers are told once. (w1 and w2 turn missing on the way: they
	// are behind for longer than three witness intervals.)
	fn.log.AppendN(1, "c")
	fn.push(9)
	fn.waitRow("size 10 held", func(l feed.LogInfo) bool { return l.Latest != nil && l.Latest.Size == 10 })
	clk.Advance(time.Minute + time.Second)
	cp = waitEvent(t, events, &cursor, feed.EventCheckpoint, func(c feed.CheckpointEvent) bool { return c.Size == 10 })
	if cp.QuorumMet || !slices.Equal(cp.Cosigners, []string{"self"}) {
		t.Errorf("quorum-lost checkpoint event: %+v", cp)
	}
	fn.waitMetric("vigil_log_quorum_lost"+originLabel, func(v float64) bool { return v == 1 })
	lost := hookA.waitNote(notify.KindQuorumLost, "at size 10")
	hookB.waitNote(notify.KindQuorumLost, "at size 10")
	if !strings.HasPrefix(lost.ID, "quorum-lost/") || !strings.HasSuffix(lost.ID, "/10") {
		t.Errorf("quorum-lost notification %+v", lost)
	}
	// w1 cosigns: the quorum is back.
	fn.gossipCosign(clk.Now(), 10, 0)
	cp = waitEvent(t, events, &cursor, feed.EventCheckpoint, func(c feed.CheckpointEvent) bool { return c.Size == 10 && c.QuorumMet })
	fn.waitMetric("vigil_log_quorum_lost"+originLabel, func(v float64) bool { return v == 0 })
	for _, h := range []*onCallReceiver{hookA, hookB} {
		h.mu.Lock()
		for id, n := range h.accepted {
			if n != 1 {
				t.Errorf("%s accepted %s %d times", h.url, id, n)
			}
		}
		h.mu.Unlock()
	}
}

// onCallExport is what an export must hold; exportRecord one record of it
// in either format.
type onCallExport struct {
	cosigners map[uint64]string
	avail     map[string][2]int
	evidence  string
}

type exportRecord struct {
	typ, cosigners, witness, evidenceID string
	size                                uint64
	cosigned, total, checkpoints, ev    int
	quorumMet                           bool
	note                                string
}

func (w onCallExport) check(t *testing.T, format string, recs []exportRecord) {
	t.Helper()
	if len(recs) < 2 || recs[0].typ != feed.ExportTypePeriod || recs[len(recs)-1].typ != feed.ExportTypeEnd {
		t.Fatalf("%s export: no period and end records: %+v", format, recs)
	}
	end := recs[len(recs)-1]
	if end.checkpoints != len(w.cosigners) || end.ev != 1 {
		t.Errorf("%s export end record %+v", format, end)
	}
	seen := map[string]bool{}
	for _, r := range recs[1 : len(recs)-1] {
		switch r.typ {
		case feed.ExportTypeCheckpoint:
			want, ok := w.cosigners[r.size]
			if !ok || r.cosigners != want || !r.quorumMet {
				t.Errorf("%s export checkpoint %d: cosigners %q quorum %v, want %q", format, r.size, r.cosigners, r.quorumMet, want)
			}
			if format == "jsonl" && !strings.Contains(r.note, "\n\n\u2014 ") {
				t.Errorf("%s export checkpoint %d lacks its signed note", format, r.size)
			}
			seen["checkpoint "+strconv.FormatUint(r.size, 10)] = true
		case feed.ExportTypeAvailability:
			if got := [2]int{r.cosigned, r.total}; got != w.avail[r.witness] {
				t.Errorf("%s export availability of %s: %v, want %v", format, r.witness, got, w.avail[r.witness])
			}
			seen["witness "+r.witness] = true
		case feed.ExportTypeEvidence:
			if r.evidenceID != w.evidence {
				t.Errorf("%s export evidence %q, want %q", format, r.evidenceID, w.evidence)
			}
			seen["evidence"] = true
		default:
			t.Errorf("%s export: record type %q", format, r.typ)
		}
	}
	if len(seen) != len(w.cosigners)+len(w.avail)+1 {
		t.Errorf("%s export holds %v", format, seen)
	}
}

func readJSONLExport(t *testing.T, body string) []exportRecord {
	t.Helper()
	var out []exportRecord
	dec := json.NewDecoder(strings.NewReader(body))
	for {
		var raw struct {
			Type        string   `json:"type"`
			Size        uint64   `json:"size"`
			Cosigners   []string `json:"cosigners"`
			QuorumMet   bool     `json:"quorum_met"`
			Note        string   `json:"note"`
			Witness     string   `json:"witness"`
			Cosigned    int      `json:"cosigned"`
			Total       int      `json:"total"`
			ID          string   `json:"id"`
			Checkpoints int      `json:"checkpoints"`
			Evidence    int      `json:"evidence"`
		}
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("jsonl export: %v\n%s", err, body)
		}
		out = append(out, exportRecord{typ: raw.Type, size: raw.Size, cosigners: strings.Join(raw.Cosigners, " "), quorumMet: raw.QuorumMet, note: raw.Note,
			witness: raw.Witness, cosigned: raw.Cosigned, total: raw.Total, evidenceID: raw.ID, checkpoints: raw.Checkpoints, ev: raw.Evidence})
	}
}

func readCSVExport(t *testing.T, body string) []exportRecord {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader([]byte(body))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("csv export: %v\n%s", err, body)
	}
	if !slices.Equal(rows[0], feed.CSVHeader) {
		t.Fatalf("csv header %v", rows[0])
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	num := func(row []string, name string) int {
		n, _ := strconv.Atoi(row[col[name]])
		return n
	}
	var out []exportRecord
	for _, row := range rows[1:] {
		size, _ := strconv.ParseUint(row[col["size"]], 10, 64)
		out = append(out, exportRecord{typ: row[col["type"]], size: size, cosigners: row[col["cosigners"]], quorumMet: row[col["quorum_met"]] == "true",
			witness: row[col["witness"]], cosigned: num(row, "cosigned"), total: num(row, "total"), evidenceID: row[col["evidence_id"]],
			checkpoints: num(row, "checkpoints"), ev: num(row, "evidence")})
	}
	return out
}
