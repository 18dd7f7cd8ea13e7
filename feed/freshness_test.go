package feed_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logInfo returns log li's entry of GET /v1/logs.
func (e *env) logInfo(li int) feed.LogInfo {
	e.t.Helper()
	code, _, body := e.get("/v1/logs")
	if code != 200 {
		e.t.Fatalf("/v1/logs: %d %s", code, body)
	}
	var resp feed.LogsResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		e.t.Fatal(err)
	}
	id := tlog.LogID(e.logs[li].Origin())
	for _, l := range resp.Logs {
		if l.LogID == id {
			return l
		}
	}
	e.t.Fatalf("/v1/logs lacks log %d", li)
	return feed.LogInfo{}
}

// waitLogInfo polls GET /v1/logs until log li's entry satisfies ok.
func (e *env) waitLogInfo(li int, what string, ok func(feed.LogInfo) bool) feed.LogInfo {
	e.t.Helper()
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	end := time.After(deadline)
	for {
		l := e.logInfo(li)
		if ok(l) {
			return l
		}
		select {
		case <-tk.C:
		case <-end:
			e.t.Fatalf("log %d: %s: not before the deadline; last %+v", li, what, l)
		}
	}
}

// waitLatest waits until GET /v1/logs shows log li at size with n
// cosigners: a checkpoint short of its quorum is served but not announced.
func (e *env) waitLatest(li int, size uint64, n int) {
	e.t.Helper()
	e.waitLogInfo(li, fmt.Sprintf("size %d with %d cosigners", size, n), func(l feed.LogInfo) bool {
		return l.Latest != nil && l.Latest.Size == size && len(l.Latest.Cosigners) == n
	})
}

// gauge returns the value of a gauge with the given origin label.
func gauge(t *testing.T, reg *prometheus.Registry, name, origin string) (float64, bool) {
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
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "origin" && lp.GetValue() == origin {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func wantGauge(t *testing.T, reg *prometheus.Registry, step, name, origin string, want float64) {
	t.Helper()
	if got, ok := gauge(t, reg, name, origin); !ok || got != want {
		t.Errorf("%s: %s{origin=%q} = %v (present %v), want %v", step, name, origin, got, ok, want)
	}
}

// nextOf waits for the next event of type typ about log logID.
func nextOf(t *testing.T, s *stream, typ, logID string) sse {
	t.Helper()
	return s.waitFor(t, func(ev sse) bool {
		if ev.typ != typ {
			return false
		}
		var m map[string]any
		if json.Unmarshal([]byte(ev.data), &m) != nil {
			return false
		}
		return m["log_id"] == logID || m["log"] == logID
	})
}

// TestFreshnessOnClock drives a log through fresh, late, stale, a lost
// quorum and fresh again on an injected clock, with no checkpoint event in
// between the state changes: the states come from the clock. At each step
// it checks the freshness and checkpoint events, GET /v1/logs and the
// gauges.
func TestFreshnessOnClock(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, envOptions{logs: 2, witnesses: 3, quorum: "2", now: clk.Now, freshness: feed.FreshnessConfig{
		DefaultInterval: time.Hour,
		Intervals:       map[string]time.Duration{"example.com/log0": time.Minute},
		Check:           5 * time.Millisecond,
	}})
	s := e.subscribe("")
	origin, id := e.logs[0].Origin(), tlog.LogID(e.logs[0].Origin())

	// Growth: one cosignature is short of the quorum, so no event; the
	// first checkpoint event is the cosigned one.
	e.logs[0].AppendN(5, "a")
	e.cosign(0, 0)
	e.waitLatest(0, 5, 1)
	e.cosign(0, 1)
	var cp feed.CheckpointEvent
	if err := json.Unmarshal([]byte(nextOf(t, s, feed.EventCheckpoint, id).data), &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Size != 5 || !cp.QuorumMet || len(cp.Cosigners) != 2 || cp.CosignedAt == nil || cp.Contested != nil {
		t.Fatalf("first checkpoint event: %+v, want size 5 with its quorum", cp)
	}
	li := e.waitLogInfo(0, "fresh", func(l feed.LogInfo) bool { return l.Freshness.QuorumAgeSeconds != nil })
	if fr := li.Freshness; fr.State != feed.FreshnessFresh || *fr.QuorumAgeSeconds != 0 || fr.ExpectedIntervalSeconds != 60 || fr.LateAfterSeconds != 120 || fr.StaleAfterSeconds != 720 {
		t.Errorf("fresh: %+v", fr)
	}
	if li.Contested != nil {
		t.Errorf("fresh: contested %+v", li.Contested)
	}
	if fr := e.logInfo(1).Freshness; fr.State != feed.FreshnessFresh || fr.ExpectedIntervalSeconds != 3600 || fr.AgeSeconds != nil {
		t.Errorf("log 1 (no checkpoint yet, default interval): %+v", fr)
	}

	steps := []struct {
		name      string
		advance   time.Duration
		state     string
		prev      string
		quorumAge float64
		stale     float64
	}{
		{"late", 2*time.Minute + time.Second, feed.FreshnessLate, feed.FreshnessFresh, 121, 0},
		{"stale", 10 * time.Minute, feed.FreshnessStale, feed.FreshnessLate, 721, 1},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		var ev feed.FreshnessEvent
		if err := json.Unmarshal([]byte(nextOf(t, s, feed.EventFreshness, id).data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.State != st.state || ev.Previous != st.prev || ev.Origin != origin || ev.QuorumAgeSeconds == nil || *ev.QuorumAgeSeconds != st.quorumAge || ev.ExpectedIntervalSeconds != 60 {
			t.Errorf("%s: event %+v", st.name, ev)
		}
		if fr := e.logInfo(0).Freshness; fr.State != st.state || *fr.QuorumAgeSeconds != st.quorumAge || *fr.AgeSeconds != st.quorumAge {
			t.Errorf("%s: /v1/logs freshness %+v", st.name, fr)
		}
		wantGauge(t, e.reg, st.name, "vigil_log_stale", origin, st.stale)
		wantGauge(t, e.reg, st.name, "vigil_log_quorum_age_seconds", origin, st.quorumAge)
		wantGauge(t, e.reg, st.name, "vigil_log_checkpoint_age_seconds", origin, st.quorumAge)
		wantGauge(t, e.reg, st.name, "vigil_log_expected_interval_seconds", origin, 60)
		wantGauge(t, e.reg, st.name, "vigil_log_quorum_lost", origin, 0)
	}

	// The log grows but only one witness cosigns: nothing is announced
	// until the wait passes the expected interval, then the checkpoint
	// event says quorum_met false (quorum lost). The clock moves twice so
	// that the wait has passed however the tick and the view build
	// interleave.
	e.logs[0].AppendN(3, "b")
	e.cosign(0, 0)
	e.waitLatest(0, 8, 1)
	clk.Advance(61 * time.Second)
	clk.Advance(61 * time.Second)
	cp = feed.CheckpointEvent{}
	if err := json.Unmarshal([]byte(nextOf(t, s, feed.EventCheckpoint, id).data), &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Size != 8 || cp.QuorumMet || len(cp.Cosigners) != 1 {
		t.Fatalf("quorum lost: checkpoint event %+v, want size 8 without its quorum", cp)
	}
	e.waitLogInfo(0, "quorum lost on the gauge", func(feed.LogInfo) bool {
		v, _ := gauge(t, e.reg, "vigil_log_quorum_lost", origin)
		return v == 1
	})
	if fr := e.logInfo(0).Freshness; fr.State != feed.FreshnessStale || *fr.AgeSeconds != 122 {
		t.Errorf("quorum lost: /v1/logs freshness %+v (age of size 8 is 122s)", fr)
	}

	// The second cosignature arrives: the quorum is back, the log fresh.
	e.cosign(0, 1)
	cp = feed.CheckpointEvent{}
	if err := json.Unmarshal([]byte(nextOf(t, s, feed.EventCheckpoint, id).data), &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Size != 8 || !cp.QuorumMet {
		t.Errorf("quorum back: checkpoint event %+v", cp)
	}
	var ev feed.FreshnessEvent
	if err := json.Unmarshal([]byte(nextOf(t, s, feed.EventFreshness, id).data), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.State != feed.FreshnessFresh || ev.Previous != feed.FreshnessStale || *ev.QuorumAgeSeconds != 0 {
		t.Errorf("fresh again: event %+v", ev)
	}
	e.waitLogInfo(0, "quorum back on the gauges", func(feed.LogInfo) bool {
		lost, _ := gauge(t, e.reg, "vigil_log_quorum_lost", origin)
		stale, _ := gauge(t, e.reg, "vigil_log_stale", origin)
		return lost == 0 && stale == 0
	})
	if fr := e.logInfo(1).Freshness; fr.State != feed.FreshnessFresh {
		t.Errorf("log 1 with its hour-long interval: %+v", fr)
	}
}

// TestNoQuorumMetFalseOnGrowth: while every growth gets its quorum within
// the expected interval, no checkpoint event says quorum_met false.
func TestNoQuorumMetFalseOnGrowth(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 3, quorum: "2"})
	s := e.subscribe("")
	id := tlog.LogID(e.logs[0].Origin())
	for i := range 4 {
		e.logs[0].AppendN(2, "a")
		e.cosign(0, 0)
		e.waitLatest(0, e.logs[0].Size(), 1)
		e.cosign(0, 1, 2)
		size := e.logs[0].Size()
		// Every checkpoint event up to the one with all three cosigners
		// (the feed may coalesce the cosignatures or announce each) has
		// its quorum.
		s.waitFor(t, func(ev sse) bool {
			var cp feed.CheckpointEvent
			if ev.typ != feed.EventCheckpoint || json.Unmarshal([]byte(ev.data), &cp) != nil || cp.LogID != id {
				return false
			}
			if !cp.QuorumMet || cp.CosignedAt == nil {
				t.Fatalf("growth %d to size %d: checkpoint event %s", i, size, ev.data)
			}
			return cp.Size == size && len(cp.Cosigners) == 3
		})
	}
}

// TestContestedLog: evidence against a log and an open divergence of it
// make it contested in GET /v1/logs, in its checkpoint events (at once,
// and on its next growth) and on the gauge, naming the conflicting sizes;
// resolving the divergence leaves the evidence's.
func TestContestedLog(t *testing.T) {
	e := newEnv(t, envOptions{logs: 2, witnesses: 2, quorum: "1", freshness: feed.FreshnessConfig{Check: 5 * time.Millisecond}})
	s := e.subscribe("")
	origin, id := e.logs[0].Origin(), tlog.LogID(e.logs[0].Origin())
	e.logs[0].AppendN(7, "a")
	e.cosign(0, 0)
	nextOf(t, s, feed.EventCheckpoint, id)

	_, large := e.divergence(0, 7, 12, []string{"w0"}, []string{"w1"}, time.Now())
	e.feed.SuspicionUpdated()
	li := e.waitLogInfo(0, "contested by the divergence", func(l feed.LogInfo) bool { return l.Contested != nil })
	if c := li.Contested; !slices.Equal(c.Sizes, []uint64{7, 12}) || len(c.Suspicions) != 1 || len(c.Evidence) != 0 {
		t.Errorf("divergence: contested %+v", c)
	}
	if li := e.logInfo(1); li.Contested != nil {
		t.Errorf("log 1 contested: %+v", li.Contested)
	}
	// The change is announced at once, on the checkpoint already
	// announced (7), with no growth of the log.
	var cp feed.CheckpointEvent
	if err := json.Unmarshal([]byte(nextOf(t, s, feed.EventCheckpoint, id).data), &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Size != 7 || cp.Contested == nil || !slices.Equal(cp.Contested.Sizes, []uint64{7, 12}) || len(cp.Contested.Suspicions) != 1 {
		t.Errorf("checkpoint event announcing the divergence: %+v", cp)
	}
	e.waitLogInfo(0, "the contested gauge", func(feed.LogInfo) bool {
		v, _ := gauge(t, e.reg, "vigil_log_contested", origin)
		return v == 1
	})

	ev := evidenceFor(origin, 0)
	e.src.addEvidence(ev, []byte("vigil-evidence/v1\n"))
	e.feed.EvidenceUpdated()
	nextOf(t, s, feed.EventEvidence, id)
	if err := e.src.db.ResolveSuspicion(t.Context(), origin, large.Size, large.Root, store.ResolvedEvidence, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.feed.SuspicionUpdated()
	li = e.waitLogInfo(0, "contested by the evidence only", func(l feed.LogInfo) bool { return l.Contested != nil && len(l.Contested.Suspicions) == 0 })
	if c := li.Contested; !slices.Equal(c.Sizes, []uint64{7}) || !slices.Equal(c.Evidence, []string{ev.ID}) {
		t.Errorf("evidence: contested %+v", c)
	}

	// The log's next checkpoint (9) carries the contested state (the
	// changes on the way are announced on 7).
	e.logs[0].AppendN(2, "b")
	e.cosign(0, 0)
	s.waitFor(t, func(ev sse) bool {
		return ev.typ == feed.EventCheckpoint && json.Unmarshal([]byte(ev.data), &cp) == nil && cp.LogID == id && cp.Size == 9
	})
	if cp.Contested == nil || !slices.Equal(cp.Contested.Sizes, []uint64{7}) || !slices.Equal(cp.Contested.Evidence, []string{ev.ID}) {
		t.Errorf("checkpoint event: contested %+v", cp.Contested)
	}
	wantGauge(t, e.reg, "evidence", "vigil_log_contested", origin, 1)
}
