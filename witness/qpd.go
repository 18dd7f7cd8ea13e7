package witness

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// day is the period of a logs/v0 qpd budget.
const day = 24 * time.Hour

// qpdBudgets enforces each log's qpd (add-checkpoint queries per day, from
// a witness-network logs/v0 list). Each log has a bucket that holds one
// day's budget and refills continuously at qpd per day, so a log may spend
// its day's budget in bursts but never more than qpd requests in any day
// after a full one, and a refused log learns exactly when the next request
// fits (Retry-After).
type qpdBudgets struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*qpdBucket

	refused   *prometheus.CounterVec
	remaining *prometheus.Desc
}

type qpdBucket struct {
	qpd    float64
	tokens float64
	at     time.Time
}

func newQPDBudgets(now func() time.Time) *qpdBudgets {
	if now == nil {
		now = time.Now
	}
	return &qpdBudgets{
		now: now,
		m:   map[string]*qpdBucket{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_witness_qpd_refused_total",
			Help: "add-checkpoint requests refused (429) because the log spent its logs/v0 qpd budget.",
		}, []string{"origin"}),
		remaining: prometheus.NewDesc("vigil_witness_qpd_remaining",
			"add-checkpoint requests left in the log's qpd budget (logs from a logs/v0 list with qpd).",
			[]string{"origin"}, nil),
	}
}

// allow spends one request of origin's budget of qpd requests per day. It
// returns a *RateLimitError with the time until one request fits when the
// budget is spent. qpd <= 0 means no budget.
func (b *qpdBudgets) allow(origin string, qpd float64) error {
	if qpd <= 0 {
		return nil
	}
	now := b.now()
	b.mu.Lock()
	k, ok := b.m[origin]
	if !ok || k.qpd != qpd {
		// A new budget (or a changed one, after a roster reload) starts
		// full; a changed budget keeps what was spent of the old one.
		tokens := qpd
		if ok {
			k.refill(now)
			tokens = min(qpd, k.tokens)
		}
		k = &qpdBucket{qpd: qpd, tokens: tokens, at: now}
		b.m[origin] = k
	}
	k.refill(now)
	if k.tokens >= 1 {
		k.tokens--
		b.mu.Unlock()
		return nil
	}
	wait := time.Duration(math.Ceil((1 - k.tokens) / qpd * float64(day)))
	b.mu.Unlock()
	b.refused.WithLabelValues(origin).Inc()
	return &RateLimitError{RetryAfter: max(wait, time.Second)}
}

// refill adds what accrued since the bucket was last touched.
func (k *qpdBucket) refill(now time.Time) {
	if d := now.Sub(k.at); d > 0 {
		k.tokens = min(k.qpd, k.tokens+k.qpd*d.Seconds()/day.Seconds())
		k.at = now
	}
}

// Describe implements prometheus.Collector.
func (b *qpdBudgets) Describe(ch chan<- *prometheus.Desc) {
	b.refused.Describe(ch)
	ch <- b.remaining
}

// Collect implements prometheus.Collector: the remaining budget is computed
// at scrape time, since it grows between requests.
func (b *qpdBudgets) Collect(ch chan<- prometheus.Metric) {
	b.refused.Collect(ch)
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for origin, k := range b.m {
		k.refill(now)
		ch <- prometheus.MustNewConstMetric(b.remaining, prometheus.GaugeValue, math.Floor(k.tokens), origin)
	}
}
