package gossip

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ownBudget is the token bucket own cosignatures are announced within
// (offers.go): rate tokens a second, at most burst saved up. The caller
// passes the time, so tests drive it with a fake clock.
type ownBudget struct {
	rate   float64 // ≤ 0 or +Inf: no budget
	burst  float64
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newOwnBudget(rate float64, burst int) ownBudget {
	b := float64(max(1, burst))
	return ownBudget{rate: rate, burst: b, tokens: b}
}

// take spends a token at now and returns 0, or, if none is there, spends
// nothing and returns how long until one is.
func (b *ownBudget) take(now time.Time) time.Duration {
	if b.rate <= 0 || math.IsInf(b.rate, 1) {
		return 0
	}
	if !b.at.IsZero() && now.After(b.at) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	if b.at.IsZero() || now.After(b.at) {
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	// Rounded up, so that the token is there when the caller comes back.
	return time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second)))
}

// offerMetrics count what happens to own cosignatures in offers; the
// counters of own are resolved once, since offers counts every own
// cosignature the witness makes.
type offerMetrics struct {
	own                        *prometheus.CounterVec
	quiet, deferred, coalesced prometheus.Counter
	wait                       prometheus.Histogram
	waiting                    prometheus.GaugeFunc
}

// newOfferMetrics returns the collectors; waiting reports the logs with
// an own cosignature waiting.
func newOfferMetrics(waiting func() float64) *offerMetrics {
	m := &offerMetrics{
		own: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_own_sightings_total",
			Help: "This node's own cosignatures announced (or handed to an aggregator), by result: quiet (the first of a log quiet for an interval, sent ahead of the others), deferred (sent after waiting for the log's interval or its turn in the budget), coalesced (replaced by a newer one of its log while waiting, never sent).",
		}, []string{"result"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_gossip_own_sighting_wait_seconds",
			Help:    "Time between a log's own cosignature being offered and its newest one going out (the interval and the budget's queue).",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30},
		}),
		waiting: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_gossip_own_sightings_waiting",
			Help: "Logs with an own cosignature waiting to be announced (for the log's interval or its turn in the budget).",
		}, waiting),
	}
	m.quiet, m.deferred, m.coalesced = m.own.WithLabelValues("quiet"), m.own.WithLabelValues("deferred"), m.own.WithLabelValues("coalesced")
	return m
}

// sent counts an own cosignature that went out after waiting d.
func (m *offerMetrics) sent(quiet bool, d time.Duration) {
	if quiet {
		m.quiet.Inc()
	} else {
		m.deferred.Inc()
	}
	m.wait.Observe(d.Seconds())
}

func (m *offerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.own, m.wait, m.waiting}
}
