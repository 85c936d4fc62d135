package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notifier's Prometheus series.
type Metrics struct {
	notifications *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	groups        prometheus.Gauge
	dropped       prometheus.Counter
}

// NewMetrics registers the notifier's metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_notifications_total",
			Help: "Notification attempts by receiver, integration and result (success, failure); a retried notification counts each attempt.",
		}, []string{"receiver", "integration", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aqualoop_notification_latency_seconds",
			Help:    "Time one notification attempt took, answer included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"receiver", "integration"}),
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aqualoop_notification_groups",
			Help: "Aggregation groups holding alerts.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_notification_alerts_dropped_total",
			Help: "Alerts refused because the dispatcher already held its maximum; see the warning log.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.notifications, m.latency, m.groups, m.dropped)
	}
	return m
}
