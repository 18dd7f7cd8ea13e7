package feed

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the feed's Prometheus collectors.
type Metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	events        *prometheus.CounterVec
	eventsSent    prometheus.Counter
	resumes       *prometheus.CounterVec
	viewBuilds    prometheus.Histogram
	rejectedNotes prometheus.Counter
}

func newMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_feed_requests_total",
			Help: "Feed HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_feed_request_duration_seconds",
			Help:    "Feed HTTP request latency by route (event streams: their whole life).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10),
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_feed_events_published_total",
			Help: "Server-sent events published, by type.",
		}, []string{"type"}),
		eventsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_feed_events_sent_total",
			Help: "Server-sent events written to subscribers (one per event per subscriber).",
		}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_feed_sse_resumes_total",
			Help: "Event streams resumed with Last-Event-ID: ok (no event lost) or reset (told to reload).",
		}, []string{"result"}),
		viewBuilds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_feed_view_build_seconds",
			Help:    "Time to read, verify and merge one log's checkpoints into its cached view.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10),
		}),
		rejectedNotes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_feed_rejected_notes_total",
			Help: "Checkpoint notes from the source that failed verification against the roster and were not served.",
		}),
	}
}

func (m *Metrics) collectors(h *hub) []prometheus.Collector {
	subs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_feed_sse_subscribers",
		Help: "Open server-sent event streams.",
	}, func() float64 { return float64(h.subscribers.Load()) })
	return []prometheus.Collector{m.requests, m.latency, m.events, m.eventsSent, m.resumes, m.viewBuilds, m.rejectedNotes, subs, h.ended}
}

// routeMetrics holds one route's collectors, resolved once so the hot path
// does no label lookups for the common status codes.
type routeMetrics struct {
	name    string
	m       *Metrics
	latency prometheus.Observer
	codes   map[int]prometheus.Counter
}

func (m *Metrics) route(name string) *routeMetrics {
	rm := &routeMetrics{name: name, m: m, latency: m.latency.WithLabelValues(name), codes: map[int]prometheus.Counter{}}
	for _, c := range []int{200, 304, 400, 401, 404, 503} {
		rm.codes[c] = m.requests.WithLabelValues(name, strconv.Itoa(c))
	}
	return rm
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	if c, ok := rm.codes[code]; ok {
		c.Inc()
	} else {
		rm.m.requests.WithLabelValues(rm.name, strconv.Itoa(code)).Inc()
	}
	rm.latency.Observe(d.Seconds())
}
