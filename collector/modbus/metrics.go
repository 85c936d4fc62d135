package modbus

import "github.com/prometheus/client_golang/prometheus"

// Error kinds, the values of the "kind" label of aqualoop_modbus_request_errors_total.
const (
	KindTimeout   = "timeout"   // no answer within the timeout
	KindException = "exception" // the device answered with a Modbus exception
	KindIO        = "io"        // the connection could not be opened or broke
	KindDecode    = "decode"    // an answer came but was garbled or did not match the request
)

// Metrics are the platform-health series of every Modbus bus of a process, labelled by bus.
// One Metrics is shared by all Sources; a nil *Metrics records nothing.
type Metrics struct {
	pollDuration *prometheus.HistogramVec
	requests     *prometheus.GaugeVec
	errors       *prometheus.CounterVec
	reconnects   *prometheus.CounterVec
	connected    *prometheus.GaugeVec
}

// NewMetrics creates the Modbus metrics and registers them with reg (when reg is not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aqualoop_modbus_poll_duration_seconds",
			Help:    "Time to read every meter of a bus once.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"bus"}),
		requests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aqualoop_modbus_requests_per_poll",
			Help: "Read requests sent during the last poll of a bus.",
		}, []string{"bus"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_modbus_request_errors_total",
			Help: "Failed read requests and connection attempts, by kind: timeout, exception, io, decode.",
		}, []string{"bus", "kind"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_modbus_reconnects_total",
			Help: "Connections re-opened after a timeout, a broken connection or a garbled answer.",
		}, []string{"bus"}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aqualoop_modbus_connected",
			Help: "1 while the bus connection is open.",
		}, []string{"bus"}),
	}
	if reg != nil {
		reg.MustRegister(m.pollDuration, m.requests, m.errors, m.reconnects, m.connected)
	}
	return m
}

// busMetrics are one bus's children of Metrics, resolved once so a poll does not look labels up.
type busMetrics struct {
	pollDuration prometheus.Observer
	requests     prometheus.Gauge
	errors       map[string]prometheus.Counter
	reconnects   prometheus.Counter
	connected    prometheus.Gauge
}

func (m *Metrics) forBus(bus string) *busMetrics {
	if m == nil {
		return nil
	}
	b := &busMetrics{
		pollDuration: m.pollDuration.WithLabelValues(bus),
		requests:     m.requests.WithLabelValues(bus),
		errors:       make(map[string]prometheus.Counter, 4),
		reconnects:   m.reconnects.WithLabelValues(bus),
		connected:    m.connected.WithLabelValues(bus),
	}
	for _, k := range []string{KindTimeout, KindException, KindIO, KindDecode} {
		b.errors[k] = m.errors.WithLabelValues(bus, k)
	}
	return b
}

func (b *busMetrics) poll(seconds float64, requests int) {
	if b != nil {
		b.pollDuration.Observe(seconds)
		b.requests.Set(float64(requests))
	}
}

func (b *busMetrics) failed(kind string) {
	if b != nil {
		b.errors[kind].Inc()
	}
}

func (b *busMetrics) reconnected() {
	if b != nil {
		b.reconnects.Inc()
	}
}

func (b *busMetrics) setConnected(up bool) {
	if b != nil {
		v := 0.0
		if up {
			v = 1
		}
		b.connected.Set(v)
	}
}
