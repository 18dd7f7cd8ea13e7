package feed

import (
	"github.com/prometheus/client_golang/prometheus"
)

// witnessCollector exports the witness timeline, computed at scrape time
// from the same state as /v1/witnesses.
type witnessCollector struct {
	f                           *Feed
	alive, lastCosig, nAlive, q *prometheus.Desc
}

var _ prometheus.Collector = (*witnessCollector)(nil)

func newWitnessCollector(f *Feed) *witnessCollector {
	return &witnessCollector{
		f: f,
		alive: prometheus.NewDesc("vigil_witness_alive",
			"1 when the roster witness is alive, 0 when it is late or missing.", []string{"witness"}, nil),
		lastCosig: prometheus.NewDesc("vigil_witness_last_cosignature_timestamp_seconds",
			"Timestamp of the roster witness's newest cosignature this node saw (absent if none).", []string{"witness"}, nil),
		nAlive: prometheus.NewDesc("vigil_witnesses_alive",
			"Number of roster witnesses alive.", nil, nil),
		q: prometheus.NewDesc("vigil_quorum_witnesses_needed",
			"Fewest roster witnesses that can satisfy the roster's quorum.", nil, nil),
	}
}

func (c *witnessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.alive
	ch <- c.lastCosig
	ch <- c.nAlive
	ch <- c.q
}

func (c *witnessCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.f.src.Roster()
	list, alive := c.f.witnessStatuses(r)
	for _, w := range list {
		v := 0.0
		if w.State == WitnessAlive {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.alive, prometheus.GaugeValue, v, w.Name)
		if lc := w.LastCosignature; lc != nil {
			ch <- prometheus.MustNewConstMetric(c.lastCosig, prometheus.GaugeValue, float64(lc.CosignedAt.Unix()), w.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.nAlive, prometheus.GaugeValue, float64(alive))
	if q := c.f.quorumNeeded(r); q >= 0 {
		ch <- prometheus.MustNewConstMetric(c.q, prometheus.GaugeValue, float64(q))
	}
}
