package scitt

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the transparency service's Prometheus metrics. Register the
// collectors from Metrics() with a registry of your choice.
type Metrics struct {
	registrations  *prometheus.CounterVec
	publishLatency prometheus.Histogram
	treeSize       prometheus.Gauge
	httpRequests   *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_scitt_registrations_total",
			Help: "Registration decisions by result (accepted, duplicate, rejected, malformed, unknown_critical, unsupported_media_type, bad_signature, too_large, pushback).",
		}, []string{"result"}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_scitt_publish_latency_seconds",
			Help:    "Time from an accepted registration to a published checkpoint that includes it.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		treeSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_scitt_tree_size",
			Help: "Size of the log at the last published checkpoint seen.",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_scitt_http_requests_total",
			Help: "SCRAPI requests by route and status code.",
		}, []string{"route", "code"}),
	}
}

// Metrics returns the collectors to register.
func (m *Metrics) Metrics() []prometheus.Collector {
	return []prometheus.Collector{m.registrations, m.publishLatency, m.treeSize, m.httpRequests}
}
