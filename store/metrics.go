package store

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the store's Prometheus collectors.
type Metrics struct {
	latency   *prometheus.HistogramVec
	batchSize prometheus.Histogram
	syncs     *prometheus.CounterVec
}

func newMetrics() *Metrics {
	return &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_store_operation_seconds",
			Help:    "Latency of store operations, including the fsync of writes.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}, []string{"op"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_store_commit_batch_size",
			Help:    "Updates that shared one transaction and one fsync (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_store_syncs_total",
			Help: "Syncs to disk the committer ran: for a durable batch (witness state, evidence) or in the background for gossiped data.",
		}, []string{"reason"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.latency, m.batchSize, m.syncs}
}
