package feed

import (
	"slices"
	"testing"
	"time"

	"github.com/vigilnet/vigil/roster"
)

func TestFreshnessInterval(t *testing.T) {
	cfg := FreshnessConfig{DefaultInterval: 10 * time.Minute, Intervals: map[string]time.Duration{"a": 30 * time.Second}}
	tests := []struct {
		name string
		cfg  FreshnessConfig
		log  roster.Log
		want time.Duration
	}{
		{"override wins over qpd", cfg, roster.Log{Origin: "a", QPD: 24}, 30 * time.Second},
		{"qpd", cfg, roster.Log{Origin: "b", QPD: 24}, time.Hour},
		{"qpd floored", cfg, roster.Log{Origin: "b", QPD: 86400}, MinListInterval},
		{"configured default", cfg, roster.Log{Origin: "b"}, 10 * time.Minute},
		{"built-in default", FreshnessConfig{}, roster.Log{Origin: "b"}, DefaultExpectedInterval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Interval(&tc.log); got != tc.want {
				t.Errorf("Interval = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAssess(t *testing.T) {
	start := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	iv := time.Minute
	at := func(d time.Duration) time.Time { return start.Add(d) }
	tests := []struct {
		name      string
		times     logTimes
		now       time.Time
		state     string
		age, qage float64 // -1: null
		since     time.Time
	}{
		{"nothing yet, just started", logTimes{start: start}, at(time.Minute), FreshnessFresh, -1, -1, start},
		{"nothing for two intervals", logTimes{start: start}, at(2*iv + time.Millisecond), FreshnessLate, -1, -1, start},
		{"nothing for twelve intervals", logTimes{start: start}, at(12*iv + time.Millisecond), FreshnessStale, -1, -1, start},
		{"checkpoint without quorum ages from start", logTimes{start: start, seen: at(10 * iv)}, at(13 * iv), FreshnessStale, 180, -1, start},
		{"at the late threshold still fresh", logTimes{start: start, seen: at(0), quorum: at(0)}, at(2 * iv), FreshnessFresh, 120, 120, start},
		{"past it late", logTimes{start: start, seen: at(0), quorum: at(0)}, at(2*iv + time.Second), FreshnessLate, 121, 121, start},
		{"at the stale threshold still late", logTimes{start: start, seen: at(0), quorum: at(0)}, at(12 * iv), FreshnessLate, 720, 720, start},
		{"past it stale", logTimes{start: start, seen: at(0), quorum: at(0)}, at(12*iv + time.Second), FreshnessStale, 721, 721, start},
		{"newer checkpoint, old quorum", logTimes{start: start, seen: at(11 * iv), quorum: at(0)}, at(12*iv + time.Second), FreshnessStale, 61, 721, start},
		{"cosignature ahead of the clock", logTimes{start: start, seen: at(time.Minute), quorum: at(time.Minute)}, at(0), FreshnessFresh, 0, 0, at(time.Minute)},
	}
	ptr := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fr := assess(tc.times, iv, tc.now)
			if fr.State != tc.state || ptr(fr.AgeSeconds) != tc.age || ptr(fr.QuorumAgeSeconds) != tc.qage || !fr.Since.Equal(tc.since) {
				t.Errorf("assess = %+v (age %v, quorum age %v), want %s, %v, %v, since %v", fr, ptr(fr.AgeSeconds), ptr(fr.QuorumAgeSeconds), tc.state, tc.age, tc.qage, tc.since)
			}
			if fr.ExpectedIntervalSeconds != 60 || fr.LateAfterSeconds != 120 || fr.StaleAfterSeconds != 720 {
				t.Errorf("thresholds %+v", fr)
			}
		})
	}
}

func TestContestedOf(t *testing.T) {
	ev := []Evidence{{ID: "e2", Origin: "a", Sizes: []uint64{9, 12}}, {ID: "e1", Origin: "a", Sizes: []uint64{9, 9}}, {ID: "e3", Origin: "b", Sizes: []uint64{1, 1}}}
	sus := []Suspicion{
		{ID: "s1", Origin: "a", Open: true, Size: 20, Other: &SuspicionSide{Size: 15}},
		{ID: "s2", Origin: "a", Open: false, Size: 30, Other: &SuspicionSide{Size: 25}},
		{ID: "s3", Origin: "a", Open: true, Size: 40}, // unverifiable, not a divergence
		{ID: "s4", Origin: "c", Open: true, Size: 5, Other: &SuspicionSide{Size: 3}},
	}
	tests := []struct {
		origin     string
		sizes      []uint64
		evidence   []string
		suspicions []string
	}{
		{"a", []uint64{9, 12, 15, 20}, []string{"e1", "e2"}, []string{"s1"}},
		{"b", []uint64{1}, []string{"e3"}, []string{}},
		{"c", []uint64{3, 5}, []string{}, []string{"s4"}},
	}
	for _, tc := range tests {
		c := contestedOf(tc.origin, ev, sus)
		if c == nil || !slices.Equal(c.Sizes, tc.sizes) || !slices.Equal(c.Evidence, tc.evidence) || !slices.Equal(c.Suspicions, tc.suspicions) {
			t.Errorf("%s: %+v, want %v %v %v", tc.origin, c, tc.sizes, tc.evidence, tc.suspicions)
		}
	}
	if c := contestedOf("d", ev, sus); c != nil {
		t.Errorf("uncontested log: %+v", c)
	}
}
