package witness

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the witness's Prometheus collectors.
type Metrics struct {
	requests     *prometheus.CounterVec
	latency      prometheus.Histogram
	cosignatures prometheus.Counter
}

func newMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_witness_add_checkpoint_requests_total",
			Help: "add-checkpoint requests by HTTP status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_witness_add_checkpoint_seconds",
			Help:    "add-checkpoint request latency, including the durable state update.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		cosignatures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_witness_cosignatures_total",
			Help: "Checkpoints cosigned and stored.",
		}),
	}
}

// Metrics returns the witness's collectors for the caller to register.
func (w *Witness) Metrics() []prometheus.Collector {
	return []prometheus.Collector{w.metrics.requests, w.metrics.latency, w.metrics.cosignatures, w.qpd}
}
