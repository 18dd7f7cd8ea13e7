package feed

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FreshnessEvent is the data of a freshness event, published when a log's
// freshness state changes.
type FreshnessEvent struct {
	Log                     string   `json:"log"`
	Origin                  string   `json:"origin"`
	State                   string   `json:"state"`
	Previous                string   `json:"previous"`
	AgeSeconds              *float64 `json:"age_seconds"`
	QuorumAgeSeconds        *float64 `json:"quorum_age_seconds"`
	ExpectedIntervalSeconds float64  `json:"expected_interval_seconds"`
}

// freshMetrics are the per-log freshness gauges.
type freshMetrics struct {
	age, quorumAge, interval, stale, contested, quorumLost *prometheus.GaugeVec
}

func newFreshMetrics() *freshMetrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"origin"})
	}
	return &freshMetrics{
		age:        g("vigil_log_checkpoint_age_seconds", "Age of the newest log-signed checkpoint the node holds (since its newest cosignature, or since the node first saw it)."),
		quorumAge:  g("vigil_log_quorum_age_seconds", "Age of the newest quorum-cosigned checkpoint (since its newest cosignature)."),
		interval:   g("vigil_log_expected_interval_seconds", "The log's expected publication interval."),
		stale:      g("vigil_log_stale", "1 when the log is stale (no quorum-cosigned checkpoint for 12 expected intervals), else 0."),
		contested:  g("vigil_log_contested", "1 when the node holds evidence against the log or an unproven divergence of it is open, else 0."),
		quorumLost: g("vigil_log_quorum_lost", "1 when the newest checkpoint waited for a quorum past the log's expected interval, else 0."),
	}
}

func (m *freshMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.age, m.quorumAge, m.interval, m.stale, m.contested, m.quorumLost}
}

func (m *freshMetrics) delete(origin string) {
	for _, g := range []*prometheus.GaugeVec{m.age, m.quorumAge, m.interval, m.stale, m.contested, m.quorumLost} {
		g.DeleteLabelValues(origin)
	}
}

// logTrack is what the tracker remembers of one log.
type logTrack struct {
	state string // last state evaluated; "" before the first
	// seenSize, seenRoot and seenAt: when the node first saw the newest
	// checkpoint, for the age of one that has no cosignature yet.
	seenSize uint64
	seenRoot [32]byte
	seenAt   time.Time
	// waiting is the newest checkpoint held back because it lacks a quorum,
	// waitSince when the wait began (zero: none); lost is set once the wait
	// passed the expected interval and the checkpoint was published.
	waiting   []byte
	waitSince time.Time
	lost      bool
	// contested is the contested state (contestedKey) the last checkpoint
	// event carried, or the first one evaluated; contestedSet once known.
	contested    string
	contestedSet bool
}

// contestedKey identifies a contested state; "" when not contested.
func contestedKey(c *Contested) string {
	if c == nil {
		return ""
	}
	return string(mustJSON(c))
}

// announcedContested records the contested state a checkpoint event of
// origin carried.
func (t *freshTracker) announcedContested(origin string, c *Contested) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lt := t.track(origin)
	lt.contested, lt.contestedSet = contestedKey(c), true
}

// emitContested announces a change of v's contested state that no
// checkpoint event carried yet (new evidence, a divergence opened or
// resolved): a checkpoint event about the newest checkpoint already
// announced, which is the newest quorum-cosigned one while a newer one
// waits for its quorum.
func (t *freshTracker) emitContested(v *logView) {
	t.mu.Lock()
	lt := t.logs[v.log.Origin]
	held := lt != nil && lt.waiting != nil && !lt.lost
	t.mu.Unlock()
	e := v.latest()
	if held {
		e = v.quorumEntry()
	}
	if e == nil {
		// Nothing announced to attach it to: /v1/logs and the gauge say it.
		t.announcedContested(v.log.Origin, t.f.contested(v.log.Origin))
		return
	}
	t.f.emitCheckpointOf(v, e)
}

// freshTracker evaluates freshness on a clock, holds back checkpoint events
// of checkpoints still waiting for their quorum, and keeps the gauges.
type freshTracker struct {
	f     *Feed
	cfg   FreshnessConfig
	m     *freshMetrics
	start time.Time

	mu     sync.Mutex
	logs   map[string]*logTrack
	primed bool
}

func newFreshTracker(f *Feed, cfg FreshnessConfig) *freshTracker {
	if cfg.Check <= 0 {
		cfg.Check = DefaultFreshnessCheck
	}
	return &freshTracker{f: f, cfg: cfg, m: newFreshMetrics(), start: f.now(), logs: map[string]*logTrack{}}
}

func (t *freshTracker) track(origin string) *logTrack {
	lt := t.logs[origin]
	if lt == nil {
		lt = &logTrack{}
		t.logs[origin] = lt
	}
	return lt
}

// noteSeen records when the newest checkpoint was first seen. Call with mu held.
func (lt *logTrack) noteSeen(e *entry, now time.Time) {
	if e == nil || (lt.seenSize == e.cp.Size && lt.seenRoot == e.cp.Root && !lt.seenAt.IsZero()) {
		return
	}
	lt.seenSize, lt.seenRoot, lt.seenAt = e.cp.Size, e.cp.Root, now
}

// admit decides whether a change of v's newest checkpoint is published now.
// A checkpoint with its quorum is; one still waiting for cosignatures is
// held until it gets them or until the wait passes the log's expected
// interval (then tick publishes it with quorum_met false: quorum lost).
// The wait starts at the first checkpoint that lacked a quorum and is not
// restarted by newer ones, so a log growing faster than its witnesses
// cosign still loses its quorum after one interval.
func (t *freshTracker) admit(v *logView) bool {
	e := v.latest()
	if e == nil {
		return false
	}
	now := t.f.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	lt := t.track(v.log.Origin)
	lt.noteSeen(e, now)
	if e.quorum {
		lt.waiting, lt.waitSince, lt.lost = nil, time.Time{}, false
		t.m.quorumLost.WithLabelValues(v.log.Origin).Set(0)
		return true
	}
	lt.waiting = e.note
	if lt.waitSince.IsZero() {
		lt.waitSince = now
	}
	// Once the quorum is lost, growth without it is news.
	return lt.lost
}

// times returns what freshness depends on for v; lt may be nil. Call with
// mu held.
func (t *freshTracker) times(v *logView, lt *logTrack) logTimes {
	out := logTimes{start: t.start}
	if e := v.latest(); e != nil {
		switch {
		case !e.cosignedAt.IsZero():
			out.seen = e.cosignedAt
		case lt != nil && lt.seenSize == e.cp.Size && lt.seenRoot == e.cp.Root:
			out.seen = lt.seenAt
		default:
			out.seen = t.f.now()
		}
	}
	if q := v.quorumEntry(); q != nil {
		out.quorum = q.cosignedAt
		if out.quorum.IsZero() {
			// A quorum of no cosignatures (a roster without a quorum
			// group): the checkpoint counts as soon as it is seen.
			out.quorum = out.seen
		}
	}
	return out
}

// freshness returns v's freshness now.
func (t *freshTracker) freshness(v *logView) Freshness {
	now := t.f.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return assess(t.times(v, t.logs[v.log.Origin]), t.cfg.Interval(v.log), now)
}

// run evaluates freshness every Check until ctx ends.
func (t *freshTracker) run(ctx context.Context) {
	tk := time.NewTicker(t.cfg.Check)
	defer tk.Stop()
	t.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			t.tick(ctx)
		}
	}
}

// tick re-evaluates every log at the clock's now: it updates the gauges,
// publishes a freshness event for each state change (the first evaluation
// only primes the states), a quorum_met false checkpoint event for each
// checkpoint that waited for its quorum past the expected interval, and a
// checkpoint event for each log whose contested state changed since the
// last checkpoint event said it.
func (t *freshTracker) tick(ctx context.Context) {
	views := t.f.views.all(ctx)
	if ctx.Err() != nil {
		return
	}
	now := t.f.now()
	var events []FreshnessEvent
	var lost []*logView
	t.mu.Lock()
	current := make(map[string]bool, len(views))
	for _, v := range views {
		origin := v.log.Origin
		current[origin] = true
		lt := t.track(origin)
		if e := v.latest(); e != nil {
			lt.noteSeen(e, now)
		}
		interval := t.cfg.Interval(v.log)
		fr := assess(t.times(v, lt), interval, now)
		if lt.state != fr.State {
			if t.primed && lt.state != "" {
				events = append(events, FreshnessEvent{Log: v.logID, Origin: origin, State: fr.State, Previous: lt.state,
					AgeSeconds: fr.AgeSeconds, QuorumAgeSeconds: fr.QuorumAgeSeconds, ExpectedIntervalSeconds: fr.ExpectedIntervalSeconds})
			}
			lt.state = fr.State
		}
		if e := v.latest(); !lt.lost && lt.waiting != nil && e != nil && bytes.Equal(e.note, lt.waiting) && now.Sub(lt.waitSince) > interval {
			lt.lost = true
			lost = append(lost, v)
		}
		t.setGauges(origin, fr, lt, interval)
	}
	for origin := range t.logs {
		if !current[origin] {
			delete(t.logs, origin)
			t.m.delete(origin)
		}
	}
	t.primed = true
	t.mu.Unlock()
	var recontested []*logView
	for _, v := range views {
		c := t.f.contested(v.log.Origin)
		g := 0.0
		if c != nil {
			g = 1
		}
		t.m.contested.WithLabelValues(v.log.Origin).Set(g)
		key := contestedKey(c)
		t.mu.Lock()
		if lt := t.track(v.log.Origin); !lt.contestedSet {
			lt.contested, lt.contestedSet = key, true
		} else if lt.contested != key {
			recontested = append(recontested, v)
		}
		t.mu.Unlock()
	}
	for _, ev := range events {
		t.f.hub.publish(EventFreshness, ev)
		t.f.metrics.events.WithLabelValues(EventFreshness).Inc()
	}
	for _, v := range lost {
		t.f.emitCheckpoint(v)
	}
	for _, v := range recontested {
		t.emitContested(v)
	}
}

// setGauges updates origin's gauges. Call with mu held.
func (t *freshTracker) setGauges(origin string, fr Freshness, lt *logTrack, interval time.Duration) {
	if fr.AgeSeconds != nil {
		t.m.age.WithLabelValues(origin).Set(*fr.AgeSeconds)
	} else {
		t.m.age.DeleteLabelValues(origin)
	}
	if fr.QuorumAgeSeconds != nil {
		t.m.quorumAge.WithLabelValues(origin).Set(*fr.QuorumAgeSeconds)
	} else {
		t.m.quorumAge.DeleteLabelValues(origin)
	}
	t.m.interval.WithLabelValues(origin).Set(interval.Seconds())
	stale := 0.0
	if fr.State == FreshnessStale {
		stale = 1
	}
	t.m.stale.WithLabelValues(origin).Set(stale)
	lost := 0.0
	if lt.lost {
		lost = 1
	}
	t.m.quorumLost.WithLabelValues(origin).Set(lost)
}
