package feed

import (
	"math"
	"time"

	"github.com/vigilnet/vigil/roster"
)

// Freshness states of a log (GET /v1/logs, freshness events, dashboard).
const (
	// FreshnessFresh: a quorum cosigned the log's newest checkpoint within
	// LateAfter expected intervals.
	FreshnessFresh = "fresh"
	// FreshnessLate: the newest quorum-cosigned checkpoint is older than
	// LateAfter expected intervals.
	FreshnessLate = "late"
	// FreshnessStale: it is older than StaleAfter expected intervals.
	FreshnessStale = "stale"
)

// Thresholds of the freshness states, in expected publication intervals.
// With the default interval (5 minutes) a log turns late after 10 minutes
// and stale after an hour.
const (
	LateAfter  = 2
	StaleAfter = 12
)

// DefaultExpectedInterval is a log's expected publication interval when
// neither the configuration nor its log list gives one.
const DefaultExpectedInterval = 5 * time.Minute

// MinListInterval is the shortest interval derived from a log list's qpd:
// qpd is a budget, not a promise, so a generous budget does not make a log
// late after seconds.
const MinListInterval = time.Minute

// DefaultFreshnessCheck is how often the feed re-evaluates freshness.
const DefaultFreshnessCheck = time.Second

// FreshnessConfig sets the logs' expected publication intervals.
type FreshnessConfig struct {
	// DefaultInterval applies to a log with neither an override nor a qpd
	// in its log list; 0 means DefaultExpectedInterval.
	DefaultInterval time.Duration
	// Intervals overrides the interval per origin.
	Intervals map[string]time.Duration
	// Check is how often the states are re-evaluated on the clock (and
	// freshness events published); 0 means DefaultFreshnessCheck.
	Check time.Duration
}

// Interval returns l's expected publication interval: the override for its
// origin, else 86400/qpd seconds from its logs/v0 list (at least
// MinListInterval), else the default.
func (c FreshnessConfig) Interval(l *roster.Log) time.Duration {
	if d, ok := c.Intervals[l.Origin]; ok && d > 0 {
		return d
	}
	if l.QPD > 0 {
		d := time.Duration(float64(24*time.Hour) / l.QPD)
		return max(d, MinListInterval)
	}
	if c.DefaultInterval > 0 {
		return c.DefaultInterval
	}
	return DefaultExpectedInterval
}

// Freshness is a log's freshness in GET /v1/logs.
type Freshness struct {
	State string `json:"state"`
	// AgeSeconds is the age of the newest log-signed checkpoint: since its
	// newest cosignature, or since this node first saw it when it has none.
	// Null when the node holds no checkpoint of the log.
	AgeSeconds *float64 `json:"age_seconds"`
	// QuorumAgeSeconds is the age of the newest quorum-cosigned checkpoint
	// (since its newest cosignature); null when there is none.
	QuorumAgeSeconds *float64 `json:"quorum_age_seconds"`
	// ExpectedIntervalSeconds is the log's expected publication interval.
	ExpectedIntervalSeconds float64 `json:"expected_interval_seconds"`
	// LateAfterSeconds and StaleAfterSeconds are the quorum ages past which
	// the log is late and stale.
	LateAfterSeconds  float64 `json:"late_after_seconds"`
	StaleAfterSeconds float64 `json:"stale_after_seconds"`
	// Since is what the state's age counts from: the newest quorum
	// cosignature, or when this node started watching the log if no
	// checkpoint of it has reached a quorum.
	Since time.Time `json:"since"`
}

// logTimes is what freshness depends on for one log.
type logTimes struct {
	// seen is when the newest log-signed checkpoint was last seen signed;
	// zero when there is none.
	seen time.Time
	// quorum is the newest cosignature time of the newest quorum-cosigned
	// checkpoint; zero when there is none.
	quorum time.Time
	// start is when this node started watching the log.
	start time.Time
}

// assess computes a log's freshness at now. The state follows the quorum
// age: a log is witnessed only when a quorum cosigns it. A log with no
// quorum-cosigned checkpoint ages from start, so a log that never
// publishes turns late and stale like one that stopped.
func assess(t logTimes, interval time.Duration, now time.Time) Freshness {
	fr := Freshness{
		ExpectedIntervalSeconds: seconds(interval),
		LateAfterSeconds:        seconds(LateAfter * interval),
		StaleAfterSeconds:       seconds(StaleAfter * interval),
		Since:                   t.start,
	}
	if !t.seen.IsZero() {
		a := seconds(now.Sub(t.seen))
		fr.AgeSeconds = &a
	}
	if !t.quorum.IsZero() {
		a := seconds(now.Sub(t.quorum))
		fr.QuorumAgeSeconds = &a
		fr.Since = t.quorum
	}
	fr.State = stateAt(now.Sub(fr.Since), interval)
	fr.Since = fr.Since.UTC()
	return fr
}

// stateAt maps an age to a state: late past LateAfter intervals, stale past
// StaleAfter.
func stateAt(age, interval time.Duration) string {
	switch {
	case age > StaleAfter*interval:
		return FreshnessStale
	case age > LateAfter*interval:
		return FreshnessLate
	default:
		return FreshnessFresh
	}
}

// seconds renders d in seconds, to the millisecond, never negative (a
// cosignature timestamp a little ahead of this node's clock is age 0).
func seconds(d time.Duration) float64 {
	return math.Round(max(d, 0).Seconds()*1000) / 1000
}
