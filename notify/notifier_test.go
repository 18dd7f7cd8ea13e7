package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/notify"
	"github.com/vigilnet/vigil/store"
)

const secret = "receiver-secret-0123"

// received is one request a receiver accepted.
type received struct {
	note     notify.Notification
	delivery string
	at       time.Time
}

// receiver is a real HTTP server on 127.0.0.1 that checks each request's
// signature and can be down (every request answered 503) for a while.
type receiver struct {
	t    *testing.T
	srv  *http.Server
	url  string
	mu   sync.Mutex
	down bool
	// attempts counts requests, accepted or not; got holds accepted ones.
	attempts int
	got      []received
	changed  chan struct{}
}

func newReceiver(t *testing.T, down bool) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, url: "http://" + ln.Addr().String() + "/hook", down: down, changed: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	defer func() { close(r.changed); r.changed = make(chan struct{}) }()
	if r.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if !notify.Verify(secret, body, req.Header.Get(notify.SignatureHeader)) {
		r.t.Errorf("bad signature %q on %s", req.Header.Get(notify.SignatureHeader), body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var n notify.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	if req.Header.Get(notify.DeliveryHeader) != n.ID || req.Header.Get(notify.EventHeader) != n.Event || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("headers %v do not match the body %s", req.Header, body)
	}
	r.got = append(r.got, received{note: n, delivery: req.Header.Get(notify.DeliveryHeader), at: time.Now()})
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// waitFor waits until cond (called under the receiver's lock) holds.
func (r *receiver) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, g := range r.got {
		out = append(out, g.note.ID)
	}
	return out
}

// running is a notifier over a real Badger store, running until stopped.
type running struct {
	n      *notify.Notifier
	db     *store.DB
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, dir string, cfg notify.Config) *running {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(cfg, db, notify.Options{Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{n: n, db: db, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	if r.done == nil {
		return
	}
	r.cancel()
	<-r.done
	r.done = nil
	r.db.Close()
}

func (r *running) observe(t *testing.T, in notify.Input) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.n.Observe(ctx, in); err != nil {
		t.Fatal(err)
	}
}

func outboxLen(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	if err := db.OutboxScan(context.Background(), func(string, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestDeliveryAcrossRestart: a receiver down while the node decides a
// notification and while the node restarts gets it once it is back up,
// signed, from the outbox the first run wrote.
func TestDeliveryAcrossRestart(t *testing.T) {
	rcv := newReceiver(t, true)
	dir := filepath.Join(t.TempDir(), "data")
	cfg := notify.Config{Webhooks: []notify.Webhook{{URL: rcv.url, Secret: secret}}, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	r1 := start(t, dir, cfg)
	r1.observe(t, in(notify.EventEvidence, `{"id":"ev1","kind":"log-equivocation","origin":"example.com/log","summary":"two roots at size 7"}`))
	rcv.waitFor("three failed attempts", func() bool { return rcv.attempts >= 3 })
	r1.stop()

	// Reopened from disk: the delivery is still queued.
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, db); n != 1 {
		t.Fatalf("outbox holds %d deliveries after the restart, want 1", n)
	}
	db.Close()

	r2 := start(t, dir, cfg)
	rcv.setDown(false)
	rcv.waitFor("the delivery", func() bool { return len(rcv.got) > 0 })
	if ids := rcv.ids(); ids[0] != "evidence/ev1" {
		t.Fatalf("received %v", ids)
	}
	// Delivered: the outbox empties (the sender deletes right after the
	// 2xx; poll the store with a deadline).
	deadline := time.Now().Add(20 * time.Second)
	for outboxLen(t, r2.db) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the outbox still holds the delivered notification")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestWitnessDebounceAndFilters: a witness missing past the debounce is
// notified once, no earlier than the debounce after it went missing; one
// back within the debounce is not; each webhook gets only its events.
func TestWitnessDebounceAndFilters(t *testing.T) {
	all := newReceiver(t, false)
	witnessOnly := newReceiver(t, false)
	const debounce = 300 * time.Millisecond
	cfg := notify.Config{
		Webhooks: []notify.Webhook{
			{URL: all.url, Secret: secret},
			{URL: witnessOnly.url, Secret: secret, Events: []string{notify.KindWitness}},
		},
		WitnessMissingAfter: debounce, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	}
	r := start(t, filepath.Join(t.TempDir(), "data"), cfg)

	// w1 goes missing and comes back within the debounce: nothing. The
	// evidence after it is a marker: inputs are decided in order.
	r.observe(t, witnessEv("w1", "missing"))
	r.observe(t, witnessEv("w1", "alive"))
	r.observe(t, in(notify.EventEvidence, `{"id":"marker","kind":"log-equivocation","origin":"l"}`))
	all.waitFor("the marker", func() bool { return len(all.got) == 1 })

	// w2 goes missing for good.
	missingAt := time.Now()
	r.observe(t, witnessEv("w2", "missing"))
	witnessOnly.waitFor("the missing notification", func() bool { return len(witnessOnly.got) == 1 })
	witnessOnly.mu.Lock()
	got := witnessOnly.got[0]
	witnessOnly.mu.Unlock()
	if got.note.Event != notify.KindWitness || got.at.Sub(missingAt) < debounce {
		t.Fatalf("got %+v %s after the witness went missing, want a witness notification no sooner than %s", got.note, got.at.Sub(missingAt), debounce)
	}
	r.observe(t, witnessEv("w2", "alive"))
	witnessOnly.waitFor("the back notification", func() bool { return len(witnessOnly.got) == 2 })
	all.waitFor("both witness notifications", func() bool { return len(all.got) == 3 })
	want := []string{"evidence/marker", "witness/w2/missing/", "witness/w2/back/"}
	for i, id := range all.ids() {
		if len(id) < len(want[i]) || id[:len(want[i])] != want[i] {
			t.Errorf("all: notification %d is %s, want %s...", i, id, want[i])
		}
	}
	for _, id := range witnessOnly.ids() {
		if id[:8] != "witness/" {
			t.Errorf("the witness-only webhook got %s", id)
		}
	}
}

// TestDeliveryToAClosedPort: a receiver not listening at all (connection
// refused) gets the notification once it starts listening on its address.
func TestDeliveryToAClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := notify.Config{Webhooks: []notify.Webhook{{URL: "http://" + addr + "/hook", Secret: secret}}, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	r := start(t, filepath.Join(t.TempDir(), "data"), cfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.n.Metrics()...)
	r.observe(t, in(notify.EventEvidence, `{"id":"refused","kind":"log-equivocation","origin":"l"}`))
	deadline := time.Now().Add(20 * time.Second)
	for counter(t, reg, "vigil_notify_deliveries_total", "retry") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempts recorded")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	rcv := &receiver{t: t, url: "http://" + addr + "/hook", changed: make(chan struct{})}
	rcv.srv = &http.Server{Handler: http.HandlerFunc(rcv.serve), ReadHeaderTimeout: 5 * time.Second}
	go rcv.srv.Serve(ln)
	t.Cleanup(func() { rcv.srv.Close() })
	rcv.waitFor("the delivery", func() bool { return len(rcv.got) == 1 })
	if ids := rcv.ids(); ids[0] != "evidence/refused" {
		t.Fatalf("received %v", ids)
	}
}

// counter reads the value of name's sample with the given label value
// from reg (0 when there is none yet).
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWitnessDebounceAcrossRestart: the debounce of a missing witness
// survives a restart of the notifier. A witness that went missing before
// the restart is notified one debounce after it went missing, under the
// ID of that missing period, although no new witness event arrives (the
// witness timeline publishes none for a state it already held); and a
// witness notified before a restart is notified back after it.
func TestWitnessDebounceAcrossRestart(t *testing.T) {
	rcv := newReceiver(t, false)
	dir := filepath.Join(t.TempDir(), "data")
	const debounce = 400 * time.Millisecond
	cfg := notify.Config{Webhooks: []notify.Webhook{{URL: rcv.url, Secret: secret}}, WitnessMissingAfter: debounce,
		RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}

	// w2 goes missing; the evidence marker after it, decided in order,
	// shows the missing state was stored. The notifier stops well within
	// the debounce.
	r1 := start(t, dir, cfg)
	missingAt := time.Now()
	r1.observe(t, witnessEv("w2", "missing"))
	r1.observe(t, in(notify.EventEvidence, `{"id":"marker1","kind":"log-equivocation","origin":"l"}`))
	rcv.waitFor("the first marker", func() bool { return len(rcv.got) >= 1 })
	r1.stop()
	if time.Since(missingAt) >= debounce {
		t.Skipf("the first run took %s, longer than the debounce", time.Since(missingAt))
	}

	// (A delivery accepted just before a stop may be sent again after the
	// restart, under the same ID: receivers de-duplicate on it, and so
	// does distinct.)
	// The second run gets no witness event, yet notifies w2 missing one
	// debounce after it went missing in the first run.
	r2 := start(t, dir, cfg)
	rcv.waitFor("the missing notification", func() bool { return len(distinct(rcv.got)) == 2 })
	rcv.mu.Lock()
	got := distinct(rcv.got)[1]
	rcv.mu.Unlock()
	if !strings.HasPrefix(got.note.ID, "witness/w2/missing/") || got.at.Sub(missingAt) < debounce {
		t.Fatalf("second run: %s %s after w2 went missing, want witness/w2/missing/... no sooner than %s", got.note.ID, got.at.Sub(missingAt), debounce)
	}
	// The timeline may publish missing again after a crash: the period
	// keeps its start and is not notified twice.
	r2.observe(t, witnessEv("w2", "missing"))
	r2.observe(t, in(notify.EventEvidence, `{"id":"marker2","kind":"log-equivocation","origin":"l"}`))
	rcv.waitFor("the second marker", func() bool { return len(distinct(rcv.got)) == 3 })
	r2.stop()

	// The third run still knows the notification went out: w2's return is
	// notified.
	r3 := start(t, dir, cfg)
	r3.observe(t, witnessEv("w2", "alive"))
	rcv.waitFor("the back notification", func() bool { return len(distinct(rcv.got)) == 4 })
	want := []string{"evidence/marker1", got.note.ID, "evidence/marker2", "witness/w2/back/"}
	rcv.mu.Lock()
	all := distinct(rcv.got)
	rcv.mu.Unlock()
	for i, g := range all {
		if !strings.HasPrefix(g.note.ID, want[i]) {
			t.Errorf("notification %d is %s, want %s...", i, g.note.ID, want[i])
		}
	}
	// w2's period is over: the outbox keeps no state for it.
	r3.stop()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.OutboxScan(context.Background(), func(key string, v []byte) error {
		if strings.HasPrefix(key, "witness/") && string(v) != "{}" {
			t.Errorf("outbox keeps %s = %s after the witness returned", key, v)
		}
		return nil
	})
}

// distinct keeps the first delivery of each notification ID, as a
// receiver de-duplicating on X-Vigil-Delivery does.
func distinct(got []received) []received {
	seen := map[string]bool{}
	var out []received
	for _, g := range got {
		if !seen[g.note.ID] {
			seen[g.note.ID] = true
			out = append(out, g)
		}
	}
	return out
}

// TestLogStateAcrossRestart: what the notifier told about a log survives a
// restart. A log notified stale before the restart is notified fresh again
// after it; a contested state or a lost quorum notified before it is not
// notified again when the feed repeats it after the restart.
func TestLogStateAcrossRestart(t *testing.T) {
	rcv := newReceiver(t, false)
	dir := filepath.Join(t.TempDir(), "data")
	cfg := notify.Config{Webhooks: []notify.Webhook{{URL: rcv.url, Secret: secret}}, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	stale := in(notify.EventFreshness, `{"log":"x","origin":"example.com/l","state":"stale","previous":"late","age_seconds":7200}`)
	contested := in(notify.EventCheckpoint, `{"origin":"example.com/l","log_id":"x","size":9,"quorum_met":true,"contested":{"sizes":[9],"evidence":["e1"],"suspicions":[]}}`)
	lost := in(notify.EventCheckpoint, `{"origin":"example.com/m","log_id":"y","size":4,"quorum_met":false}`)

	r1 := start(t, dir, cfg)
	for _, ev := range []notify.Input{stale, contested, lost} {
		r1.observe(t, ev)
	}
	r1.observe(t, in(notify.EventEvidence, `{"id":"marker1","kind":"log-equivocation","origin":"l"}`))
	rcv.waitFor("the first run's notifications", func() bool { return len(distinct(rcv.got)) == 4 })
	r1.stop()

	// After the restart the feed repeats the contested checkpoint and the
	// lost quorum (its own state is not kept), then the log turns fresh.
	r2 := start(t, dir, cfg)
	r2.observe(t, contested)
	r2.observe(t, lost)
	r2.observe(t, in(notify.EventFreshness, `{"log":"x","origin":"example.com/l","state":"fresh","previous":"stale","age_seconds":5}`))
	r2.observe(t, in(notify.EventEvidence, `{"id":"marker2","kind":"log-equivocation","origin":"l"}`))
	rcv.waitFor("the second run's notifications", func() bool {
		return slices.ContainsFunc(rcv.got, func(g received) bool { return g.note.ID == "evidence/marker2" })
	})
	rcv.mu.Lock()
	got := distinct(rcv.got)
	rcv.mu.Unlock()
	var ids []string
	for _, g := range got {
		ids = append(ids, g.note.ID)
	}
	want := []string{"stale/", "contested/", "quorum-lost/", "evidence/marker1", "fresh/", "evidence/marker2"}
	if len(ids) != len(want) {
		t.Fatalf("notifications %v, want %v", ids, want)
	}
	for i, id := range ids {
		if !strings.HasPrefix(id, want[i]) {
			t.Errorf("notification %d is %s, want %s...", i, id, want[i])
		}
	}
}
