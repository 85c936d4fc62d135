package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// ErrOffline is returned by Publish while the broker is unreachable; the caller keeps the reading
// and tries again later.
var ErrOffline = errors.New("mqtt broker not connected")

// Kinds of failed connection attempts, the values of the "kind" label of
// aqualoop_edge_broker_connect_failures_total.
const (
	// ConnectRefused is a broker that answered but refused the client: wrong user name or
	// password, or a client id or user it does not allow.
	ConnectRefused = "refused"
	// ConnectTLS is a failed TLS handshake: a certificate the broker or the client does not trust,
	// or a missing client certificate.
	ConnectTLS = "tls"
	// ConnectNetwork is anything else: the broker is down or unreachable.
	ConnectNetwork = "network"
)

// Metrics are the publisher's Prometheus series.
type Metrics struct {
	published     prometheus.Counter
	failed        *prometheus.CounterVec
	latency       prometheus.Histogram
	connected     prometheus.Gauge
	connectFailed *prometheus.CounterVec
}

// NewMetrics registers the publisher's metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_edge_published_total", Help: "Readings acknowledged by the broker.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_edge_publish_failures_total", Help: "Publish attempts that were not acknowledged, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aqualoop_edge_publish_seconds", Help: "Time from publish to PUBACK.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aqualoop_edge_broker_connected", Help: "1 while the MQTT connection is up.",
		}),
		connectFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_edge_broker_connect_failures_total",
			Help: "Failed connection attempts to the MQTT broker, by kind: refused, tls, network.",
		}, []string{"kind"}),
	}
	for _, k := range []string{ConnectRefused, ConnectTLS, ConnectNetwork} {
		m.connectFailed.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.published, m.failed, m.latency, m.connected, m.connectFailed)
	}
	return m
}

// Publisher sends readings for one edge.
type Publisher struct {
	cfg     Broker
	site    string
	edge    string
	client  mqtt.Client
	logger  *slog.Logger
	metrics *Metrics
	online  atomic.Bool

	errMu   sync.Mutex
	lastErr string          // why connecting fails; empty once connected
	failing map[string]bool // the kinds of failure seen since the last connection
}

// New prepares a publisher; Run connects it.
func New(cfg Broker, site, edge string, logger *slog.Logger, m *Metrics) (*Publisher, error) {
	if m == nil {
		m = NewMetrics(nil)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "aqualoop-edge-" + site + "-" + edge
	}
	opts, err := cfg.ClientOptions()
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, site: site, edge: edge, logger: logger, metrics: m, failing: map[string]bool{}}
	status := wire.StatusTopic(site, edge)
	opts.SetWill(status, wire.StatusOffline, 1, true)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		p.online.Store(true)
		m.connected.Set(1)
		p.connectSucceeded()
		logger.Info("mqtt connected", "topic", status)
		// Not waited for here: paho calls this on its own goroutine and the status is
		// best-effort; the will covers the opposite case.
		c.Publish(status, 1, true, wire.StatusOnline)
	})
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		p.online.Store(false)
		m.connected.Set(0)
		logger.Warn("mqtt connection lost, readings stay queued until it is back", "err", err)
	})
	// Paho retries a refused or failed connection silently; this is where an operator learns
	// that the password or a certificate is wrong.
	opts.SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		if f, ok := n.(mqtt.ConnectionNotificationFailed); ok && f.Reason != nil {
			p.connectFailed(f.Reason)
		}
	})
	p.client = mqtt.NewClient(opts)
	return p, nil
}

// connectFailed counts and logs a failed connection attempt. Paho retries every second, so each
// kind of failure is logged once until a connection succeeds. A broker that rejects the client's
// certificate sometimes resets the connection before its TLS alert is read; once a refusal or a
// TLS failure was seen, such network errors are taken as more of the same.
func (p *Publisher) connectFailed(err error) {
	kind := connectErrorKind(err)
	p.metrics.connectFailed.WithLabelValues(kind).Inc()
	msg := err.Error()
	p.errMu.Lock()
	if kind == ConnectNetwork && (p.failing[ConnectRefused] || p.failing[ConnectTLS]) {
		p.errMu.Unlock()
		return
	}
	first := !p.failing[kind]
	p.failing[kind] = true
	p.lastErr = msg
	p.errMu.Unlock()
	if !first {
		return
	}
	switch kind {
	case ConnectRefused:
		p.logger.Error("mqtt broker refused the connection, check username and password; retrying", "err", msg)
	case ConnectTLS:
		p.logger.Error("mqtt tls handshake failed, check the certificates; retrying", "err", msg)
	default:
		p.logger.Warn("mqtt broker unreachable, readings stay spooled; retrying", "err", msg)
	}
}

// connectSucceeded forgets the failures of the attempts before.
func (p *Publisher) connectSucceeded() {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	clear(p.failing)
	p.lastErr = ""
}

// LastError says why connecting to the broker fails (the refusal rather than a reset that
// followed it), or "" once connected.
func (p *Publisher) LastError() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.lastErr
}

// connectErrorKind sorts a connection failure for the operator.
func connectErrorKind(err error) string {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised),
		errors.Is(err, packets.ErrorRefusedIDRejected):
		return ConnectRefused
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname),
		// A broker's TLS alert (certificate required, unknown CA, bad certificate) arrives as an
		// error of an unexported type; its text is all there is to go on.
		strings.Contains(err.Error(), "tls: "):
		return ConnectTLS
	}
	return ConnectNetwork
}

// Run keeps the connection until ctx ends, then publishes the offline status and disconnects.
func (p *Publisher) Run(ctx context.Context) error {
	// With ConnectRetry the token completes only once connected, so it is not waited for.
	p.client.Connect()
	<-ctx.Done()
	if p.client.IsConnectionOpen() {
		t := p.client.Publish(wire.StatusTopic(p.site, p.edge), 1, true, wire.StatusOffline)
		t.WaitTimeout(2 * time.Second)
	}
	p.client.Disconnect(250)
	p.online.Store(false)
	p.metrics.connected.Set(0)
	return nil
}

// Connected reports whether the broker connection is up.
func (p *Publisher) Connected() bool { return p.online.Load() && p.client.IsConnectionOpen() }

// Message is a reading already encoded as a v1 wire payload, with what its topic and the
// messages about it need.
type Message struct {
	Site, Meter string
	Seq         uint64
	Payload     []byte
}

// PublishAll sends readings in order, all in flight at once, and waits for their
// acknowledgements. It returns how many leading readings the broker acknowledged: the caller may
// forget exactly those. A reading after the first failure may have arrived too; sending it again
// is the at-least-once the platform de-duplicates.
func (p *Publisher) PublishAll(ctx context.Context, rs []collector.Reading) (int, error) {
	ms := make([]Message, len(rs))
	for i, r := range rs {
		ms[i] = Message{Site: r.Site, Meter: r.Meter, Seq: r.Seq}
		payload, err := wire.Encode(r)
		if err != nil {
			// Encode refuses only what the platform would dead-letter; skipping it is not a
			// loss the spool could repair, and it must not block the readings behind it.
			p.metrics.failed.WithLabelValues("encode").Inc()
			p.logger.Error("reading cannot be encoded, skipped", "meter", r.Meter, "seq", r.Seq, "err", err)
			continue
		}
		ms[i].Payload = payload
	}
	return p.PublishMessages(ctx, ms)
}

// PublishMessages is PublishAll for payloads already encoded, which it sends byte for byte: the
// edge publishes what it spooled without decoding and encoding it again. A message without a
// payload is skipped and counted as acknowledged.
func (p *Publisher) PublishMessages(ctx context.Context, ms []Message) (int, error) {
	if !p.Connected() {
		p.metrics.failed.WithLabelValues("offline").Inc()
		return 0, ErrOffline
	}
	start := time.Now()
	tokens := make([]mqtt.Token, len(ms))
	for i, m := range ms {
		if m.Payload != nil {
			tokens[i] = p.client.Publish(wire.ReadingTopic(m.Site, m.Meter), p.cfg.QoS, false, m.Payload)
		}
	}
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	for i, t := range tokens {
		if t == nil {
			continue
		}
		select {
		case <-t.Done():
		case <-ctx.Done():
			p.metrics.failed.WithLabelValues("canceled").Inc()
			return i, ctx.Err()
		case <-timer.C:
			p.metrics.failed.WithLabelValues("timeout").Inc()
			return i, fmt.Errorf("publish %s seq %d: no acknowledgement within %s", ms[i].Meter, ms[i].Seq, p.cfg.Timeout)
		}
		if err := t.Error(); err != nil {
			p.metrics.failed.WithLabelValues("broker").Inc()
			return i, fmt.Errorf("publish %s seq %d: %w", ms[i].Meter, ms[i].Seq, err)
		}
		p.metrics.published.Inc()
		p.metrics.latency.Observe(time.Since(start).Seconds())
	}
	return len(ms), nil
}

// Publish sends one reading and waits for the broker's acknowledgement (QoS 1). Only a nil error
// means the broker has it.
func (p *Publisher) Publish(ctx context.Context, r collector.Reading) error {
	if !p.Connected() {
		p.metrics.failed.WithLabelValues("offline").Inc()
		return ErrOffline
	}
	payload, err := wire.Encode(r)
	if err != nil {
		p.metrics.failed.WithLabelValues("encode").Inc()
		return fmt.Errorf("encode reading of %s: %w", r.Meter, err)
	}
	start := time.Now()
	t := p.client.Publish(wire.ReadingTopic(r.Site, r.Meter), p.cfg.QoS, false, payload)
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
	case <-ctx.Done():
		p.metrics.failed.WithLabelValues("canceled").Inc()
		return ctx.Err()
	case <-timer.C:
		p.metrics.failed.WithLabelValues("timeout").Inc()
		return fmt.Errorf("publish %s seq %d: no acknowledgement within %s", r.Meter, r.Seq, p.cfg.Timeout)
	}
	if err := t.Error(); err != nil {
		p.metrics.failed.WithLabelValues("broker").Inc()
		return fmt.Errorf("publish %s seq %d: %w", r.Meter, r.Seq, err)
	}
	p.metrics.published.Inc()
	p.metrics.latency.Observe(time.Since(start).Seconds())
	return nil
}
