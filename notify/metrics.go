package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notifier's; the caller registers Metrics().
type Metrics struct {
	notifications *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	pending       prometheus.Gauge
}

func newMetrics() *Metrics {
	return &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notify_notifications_total",
			Help: "Notifications the node decided to send, by kind (evidence, contested, stale, quorum-lost, witness).",
		}, []string{"event"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notify_deliveries_total",
			Help: "Webhook delivery attempts, by result: ok (2xx), retry (failed, will be retried), dropped (given up after max_age, or its webhook left the configuration).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_notify_outbox_deliveries",
			Help: "Webhook deliveries waiting in the outbox.",
		}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.notifications, m.deliveries, m.pending}
}
