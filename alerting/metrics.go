package alerting

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the package's Prometheus series: alert counts by state and severity, and the cost
// of evaluation. Water figures never go here.
type Metrics struct {
	alerts      *prometheus.GaugeVec
	evaluations *prometheus.CounterVec
	took        prometheus.Histogram
	notified    prometheus.Counter
}

// NewMetrics registers the alerting metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		alerts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aqualoop_alerts", Help: "Alerts by state (pending, firing, acknowledged) and severity.",
		}, []string{"state", "severity"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_alert_evaluations_total", Help: "Rule evaluation cycles, by source (snapshot, liveness).",
		}, []string{"source"}),
		took: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aqualoop_alert_evaluation_seconds", Help: "Time to evaluate one site's rules of one source.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		notified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_alert_notifications_total", Help: "Alerts handed to the notifier pipeline.",
		}),
	}
	for _, st := range []string{StatePending, StateFiring, StateAcknowledged} {
		for _, sv := range []string{SeverityInfo, SeverityWarning, SeverityCritical} {
			m.alerts.WithLabelValues(st, sv)
		}
	}
	m.evaluations.WithLabelValues("snapshot")
	m.evaluations.WithLabelValues("liveness")
	if reg != nil {
		reg.MustRegister(m.alerts, m.evaluations, m.took, m.notified)
	}
	return m
}

// updateGauges recounts the alert gauges; m.mu is held.
func (mg *Manager) updateGauges() {
	counts := map[[2]string]int{}
	for _, a := range mg.active {
		counts[[2]string{a.shownState(), a.Severity}]++
	}
	for _, st := range []string{StatePending, StateFiring, StateAcknowledged} {
		for _, sv := range []string{SeverityInfo, SeverityWarning, SeverityCritical} {
			mg.o.Metrics.alerts.WithLabelValues(st, sv).Set(float64(counts[[2]string{st, sv}]))
		}
	}
}
