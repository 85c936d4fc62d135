package ledger

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the Ledger's work: platform health, not water (volumes go to the store).
type Metrics struct {
	readings *prometheus.CounterVec
	buckets  prometheus.Counter
}

// NewMetrics registers the ledger's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_ledger_readings_total",
			Help: "Readings given to the ledger, by outcome: in_order, late, duplicate, unusable, loaded (first of a meter since start, recomputed from the store).",
		}, []string{"outcome"}),
		buckets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_ledger_buckets_total",
			Help: "Bucket values the ledger returned for upsert.",
		}),
	}
	for _, o := range []string{"in_order", "late", "duplicate", "unusable", "loaded"} {
		m.readings.WithLabelValues(o)
	}
	reg.MustRegister(m.readings, m.buckets)
	return m
}

func (m *Metrics) reading(outcome string) {
	if m != nil {
		m.readings.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) emitted(n int) {
	if m != nil {
		m.buckets.Add(float64(n))
	}
}
