package store

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the store's Prometheus collectors.
type Metrics struct {
	latency   *prometheus.HistogramVec
	batchSize prometheus.Histogram
	syncs     *prometheus.CounterVec
	// Disk state (disk.go) and rolled-back logs (rollback.go).
	freeBytes  prometheus.Gauge
	degraded   *prometheus.GaugeVec
	refused    *prometheus.CounterVec
	rolledBack prometheus.Gauge
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
			Help: "Syncs to disk the store ran: for a durable batch (witness state, evidence) or in the background for gossiped data.",
		}, []string{"reason"}),
		freeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_store_disk_free_bytes",
			Help: "Free bytes on the data volume as the store last read them, its disk ballast counted as free.",
		}),
		degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_store_degraded",
			Help: "1 while the store refuses writes for this reason (disk_pressure: free space below the low watermark; disk_fault: a write or sync failed).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_store_writes_refused_total",
			Help: "Writes the store refused without handing them to Badger, because of disk pressure or a disk fault.",
		}, []string{"op"}),
		rolledBack: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_store_rolled_back_logs",
			Help: "Logs whose stored witness state is below what the witness acknowledged (its journal); they are refused until recovered.",
		}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.latency, m.batchSize, m.syncs, m.freeBytes, m.degraded, m.refused, m.rolledBack}
}

// opLatency observes operation latencies for one goroutine, looking each
// operation's histogram up once: a label lookup per reply hashes the label
// every time.
type opLatency struct {
	vec *prometheus.HistogramVec
	by  map[string]prometheus.Observer
}

func (m *Metrics) opLatency() *opLatency {
	return &opLatency{vec: m.latency, by: map[string]prometheus.Observer{}}
}

func (l *opLatency) observe(op string, seconds float64) {
	o := l.by[op]
	if o == nil {
		o = l.vec.WithLabelValues(op)
		l.by[op] = o
	}
	o.Observe(seconds)
}
