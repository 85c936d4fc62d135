package spool

import "github.com/prometheus/client_golang/prometheus"

// Reasons, the values of the "reason" label of aqualoop_spool_dropped_total.
const (
	// ReasonFull is a reading dropped because the spool reached max_bytes.
	ReasonFull = "full"
	// ReasonCorrupt is a reading found unreadable on disk (a failed checksum or payload).
	ReasonCorrupt = "corrupt"
)

// Metrics are the platform-health series of a spool. A nil *Metrics records nothing.
type Metrics struct {
	depth     prometheus.Gauge
	bytes     prometheus.Gauge
	oldestAge prometheus.Gauge
	appended  prometheus.Counter
	dropped   *prometheus.CounterVec
	replayed  prometheus.Counter
	fsync     prometheus.Histogram
}

// NewMetrics creates the spool metrics and registers them with reg (when reg is not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aqualoop_spool_readings",
			Help: "Readings in the spool not yet acknowledged by the broker.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aqualoop_spool_bytes",
			Help: "Disk space used by the spool's segment files.",
		}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aqualoop_spool_oldest_age_seconds",
			Help: "Age of the oldest unacknowledged reading, by its timestamp, refreshed every fsync interval; 0 when the spool is empty.",
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_spool_appended_total",
			Help: "Readings written to the spool.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_spool_dropped_total",
			Help: "Unacknowledged readings lost, by reason: full (max_bytes reached, oldest dropped) or corrupt.",
		}, []string{"reason"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_spool_replayed_total",
			Help: "Unacknowledged readings found in the spool when it was opened, to be sent again.",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aqualoop_spool_fsync_duration_seconds",
			Help:    "Time of each fsync of a segment, state file or directory; the count is the number of fsyncs.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	// Create both children so the series exist at zero before the first drop.
	m.dropped.WithLabelValues(ReasonFull)
	m.dropped.WithLabelValues(ReasonCorrupt)
	if reg != nil {
		reg.MustRegister(m.depth, m.bytes, m.oldestAge, m.appended, m.dropped, m.replayed, m.fsync)
	}
	return m
}

func (m *Metrics) setLevels(depth int, bytes int64) {
	if m != nil {
		m.depth.Set(float64(depth))
		m.bytes.Set(float64(bytes))
	}
}

func (m *Metrics) setOldestAge(seconds float64) {
	if m != nil {
		m.oldestAge.Set(seconds)
	}
}

func (m *Metrics) appendedOne() {
	if m != nil {
		m.appended.Inc()
	}
}

func (m *Metrics) droppedN(reason string, n int) {
	if m != nil && n > 0 {
		m.dropped.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *Metrics) replayedN(n int) {
	if m != nil && n > 0 {
		m.replayed.Add(float64(n))
	}
}

func (m *Metrics) fsynced(seconds float64) {
	if m != nil {
		m.fsync.Observe(seconds)
	}
}
