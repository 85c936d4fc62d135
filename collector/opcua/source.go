// Package opcua collects water meter values from OPC UA servers, by subscription (the default)
// or by polling, and hands them on as collector Readings.
//
// The package owns the whole connection lifecycle instead of leaning on gopcua's auto-reconnect:
// every connect discovers the endpoint, opens a fresh secure channel and session, resolves
// nsu= node ids against the server's NamespaceArray of that moment, reads the server's operation
// limits, and builds the subscription and its monitored items. It also runs the subscription's
// publish loop itself, so it sees every keep-alive: a subscription that goes silent is recreated,
// and a lost connection or session is rebuilt from scratch with exponential backoff. An unknown
// or bad node only makes its own point Bad.
package opcua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
)

var _ collector.Source = (*Source)(nil)

// Metrics are the platform-health series of every OPC UA server of a process, labelled by
// server name. One Metrics is shared by all Sources.
type Metrics struct {
	connects      *prometheus.CounterVec
	connectErrors *prometheus.CounterVec
	reconnects    *prometheus.CounterVec
	recreations   *prometheus.CounterVec
	notifications *prometheus.CounterVec
	badNodes      *prometheus.GaugeVec
	readSeconds   *prometheus.HistogramVec
	connected     *prometheus.GaugeVec
}

// NewMetrics creates the OPC UA metrics and registers them with reg (when reg is not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_opcua_connects_total",
			Help: "Sessions established (secure channel opened, session activated, namespaces resolved).",
		}, []string{"server"}),
		connectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_opcua_connect_errors_total",
			Help: "Connection attempts that failed.",
		}, []string{"server"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_opcua_reconnects_total",
			Help: "Established connections or sessions that were lost and had to be rebuilt.",
		}, []string{"server"}),
		recreations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_opcua_subscription_recreations_total",
			Help: "Subscriptions recreated within a session after they went silent or the server dropped them.",
		}, []string{"server"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_opcua_notifications_total",
			Help: "Monitored item notifications received.",
		}, []string{"server"}),
		badNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aqualoop_opcua_bad_nodes",
			Help: "Nodes whose last value was Bad (unknown node, bad status, not a number).",
		}, []string{"server"}),
		readSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aqualoop_opcua_read_duration_seconds",
			Help:    "Duration of one Read request in poll mode.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"server"}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aqualoop_opcua_connected",
			Help: "1 while a session with the server is active.",
		}, []string{"server"}),
	}
	if reg != nil {
		reg.MustRegister(m.connects, m.connectErrors, m.reconnects, m.recreations, m.notifications,
			m.badNodes, m.readSeconds, m.connected)
	}
	return m
}

// serverMetrics are one server's children of Metrics, resolved once.
type serverMetrics struct {
	connects, connectErrors, reconnects, recreations, notifications prometheus.Counter
	badNodes, connected                                             prometheus.Gauge
	readSeconds                                                     prometheus.Observer
}

func (m *Metrics) server(name string) serverMetrics {
	return serverMetrics{
		connects:      m.connects.WithLabelValues(name),
		connectErrors: m.connectErrors.WithLabelValues(name),
		reconnects:    m.reconnects.WithLabelValues(name),
		recreations:   m.recreations.WithLabelValues(name),
		notifications: m.notifications.WithLabelValues(name),
		badNodes:      m.badNodes.WithLabelValues(name),
		connected:     m.connected.WithLabelValues(name),
		readSeconds:   m.readSeconds.WithLabelValues(name),
	}
}

// Options are a Source's collaborators. Both may be nil.
type Options struct {
	// Logger receives the source's logs; the caller adds the bus attribute (the server's name),
	// as for every source of an edge.
	Logger  *slog.Logger
	Metrics *Metrics
	// Now is the edge's clock: it stamps the readings the republisher sends again and those
	// taken with timestamp: collector. Default time.Now; the demo passes the simulator's.
	Now func() time.Time
}

// ServerState is what /healthz shows for one OPC UA server.
type ServerState struct {
	Name           string    `json:"name"`
	Endpoint       string    `json:"endpoint"`
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// Session is true while an activated session is open. gopcua v0.9.0 does not expose the
	// server's session id; Sessions counts the sessions activated since start instead.
	Session        bool   `json:"session"`
	Sessions       uint64 `json:"sessions"`
	SubscriptionID uint32 `json:"subscription_id,omitempty"`
	// LastData is when the last value arrived (a data change or a poll answer); LastResponse
	// also counts keep-alives, which prove the subscription alive while values do not change.
	LastData      time.Time `json:"last_data,omitzero"`
	LastResponse  time.Time `json:"last_response,omitzero"`
	BadNodes      int       `json:"bad_nodes"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// point is one configured node, flattened: its index is the monitored item's client handle.
type point struct {
	meter int
	name  string
	unit  string
	scale float64
	id    nodeID
	text  string // node_id as configured, for messages
}

// Source reads the meters of one OPC UA server.
type Source struct {
	cfg      Config
	site     string
	log      *slog.Logger
	m        serverMetrics
	now      func() time.Time
	meters   []string
	points   []point
	password string
	ident    *identity
	pinned   []byte // DER of server_certificate, nil when not set

	// lastCode is each point's last status (0 good), so a node's trouble is logged when it
	// starts and when it ends rather than on every value. Only Run's goroutine touches it.
	lastCode []uint32
	lastBad  []bool

	mu    sync.Mutex
	state ServerState
}

// New checks cfg, resolves the password and loads (or on first start generates) the client
// certificate. Connecting is left to Run.
func New(cfg Config, site string, opts Options) (*Source, error) {
	cfg.Meters = cloneMeters(cfg.Meters)
	cfg.Default()
	var problems []string
	cfg.check("", func(path, format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("opcua %q: %s", cfg.Name, strings.Join(problems, "; "))
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	s := &Source{
		cfg:  cfg,
		site: site,
		log:  logger,
		m:    metrics.server(cfg.Name),
		now:  time.Now,
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	for mi, m := range cfg.Meters {
		s.meters = append(s.meters, m.Meter)
		for _, n := range m.Nodes {
			id, _ := parseNodeID(n.NodeID) // checked above
			s.points = append(s.points, point{meter: mi, name: n.Name, unit: n.Unit, scale: n.Scale, id: id, text: n.NodeID})
		}
	}
	s.lastCode = make([]uint32, len(s.points))
	s.lastBad = make([]bool, len(s.points))
	s.state = ServerState{Name: cfg.Name, Endpoint: cfg.Endpoint}
	if cfg.Auth == AuthUserName {
		pw, err := resolvePassword(&cfg)
		if err != nil {
			return nil, fmt.Errorf("opcua %q: %w", cfg.Name, err)
		}
		s.password = pw
	}
	if cfg.needsIdentity() {
		id, generated, err := loadIdentity(&cfg, s.now())
		if err != nil {
			return nil, fmt.Errorf("opcua %q: %w", cfg.Name, err)
		}
		if generated {
			s.log.Info("generated a self-signed opc ua client certificate; trust it on the server",
				"cert", filepath.Join(cfg.CertDir, GeneratedCertFile), "thumbprint", thumbprint(id.cert))
		}
		if left := id.notAfter.Sub(s.now()); left < 30*24*time.Hour {
			s.log.Warn("opc ua client certificate expires soon or has expired; servers will reject it",
				"expires", id.notAfter)
		}
		s.ident = id
	}
	if cfg.ServerCertificate != "" {
		der, _, err := readCertificate(cfg.ServerCertificate, "server_certificate")
		if err != nil {
			return nil, fmt.Errorf("opcua %q: %w", cfg.Name, err)
		}
		s.pinned = der
	}
	return s, nil
}

func cloneMeters(ms []Meter) []Meter {
	out := make([]Meter, len(ms))
	for i, m := range ms {
		out[i] = Meter{Meter: m.Meter, Nodes: append([]Node(nil), m.Nodes...)}
	}
	return out
}

// resolvePassword takes password, then password_file, then the environment.
func resolvePassword(c *Config) (string, error) {
	switch {
	case c.Password != "":
		return c.Password, nil
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if pw, ok := os.LookupEnv(PasswordEnv); ok {
		return pw, nil
	}
	return "", fmt.Errorf("auth_method UserName needs password, password_file or %s", PasswordEnv)
}

// Name is the server's configured name.
func (s *Source) Name() string { return s.cfg.Name }

// State returns a snapshot for /healthz.
func (s *Source) State() ServerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Source) update(f func(*ServerState)) {
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
}

// Run connects and collects until ctx ends. Connection problems, a server that is not up yet,
// restarts and lost subscriptions are all retried; Run returns nil when ctx ends.
func (s *Source) Run(ctx context.Context, emit func(collector.Reading)) error {
	bo := backoff{max: s.cfg.ConnectBackoffMax}
	for ctx.Err() == nil {
		cn, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.m.connectErrors.Inc()
			wait := s.retryWait(&bo)
			s.fail(err)
			if isAuthProblem(err) {
				s.log.Error("opc ua security check failed: fix the credentials or certificates; retrying", "err", err, "retry_in", wait)
			} else {
				s.log.Warn("opc ua connect failed, retrying", "err", err, "retry_in", wait)
			}
			sleep(ctx, wait)
			continue
		}
		s.m.connects.Inc()
		s.m.connected.Set(1)
		now := s.now()
		s.update(func(st *ServerState) {
			st.Connected, st.Session, st.ConnectedSince = true, true, now
			st.Sessions++
		})
		s.log.Info("opc ua session established", "policy", cn.policy, "mode", cn.mode)

		healthy, err := s.serve(ctx, cn, emit)

		cn.close(s.cfg.Timeout)
		s.m.connected.Set(0)
		s.update(func(st *ServerState) {
			st.Connected, st.Session, st.SubscriptionID, st.ConnectedSince = false, false, 0, time.Time{}
		})
		if ctx.Err() != nil {
			break
		}
		if healthy {
			bo.reset()
		}
		wait := s.retryWait(&bo)
		s.m.reconnects.Inc()
		err = describeLoss(err)
		s.fail(err)
		s.log.Warn("opc ua connection lost, reconnecting with a new session", "err", err, "retry_in", wait)
		sleep(ctx, wait)
	}
	return nil
}

// retryWait is the backoff's next wait, but never more than half an interval: a server that is
// back is read again within one interval (the other half is for the handshake and the first
// read), whatever the backoff has grown to. connect_backoff_max still spaces attempts at short
// intervals.
func (s *Source) retryWait(bo *backoff) time.Duration {
	return min(bo.next(), max(s.cfg.Interval/2, 10*time.Millisecond))
}

// describeLoss says what a lost session means to an operator. gopcua reports a server that shut
// down, or a connection that broke under the session, with the status text "The session was closed
// by the client", which blames the edge for what the server or the network did.
func describeLoss(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ua.StatusBadSessionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, ua.StatusBadServerHalted), errors.Is(err, ua.StatusBadShutdown),
		errors.Is(err, ua.StatusBadSecureChannelClosed), errors.Is(err, ua.StatusBadConnectionClosed):
		return &lossError{err: err}
	}
	return err
}

// lossError is a session that ended because the server went away or the connection broke.
type lossError struct{ err error }

func (e *lossError) Error() string {
	detail := e.err.Error()
	var code ua.StatusCode
	if errors.As(e.err, &code) {
		detail = statusName(code)
	}
	return "server shut down or connection lost (" + detail + ")"
}
func (e *lossError) Unwrap() error { return e.err }

// serve collects over one session until it breaks or ctx ends. healthy reports that the server
// answered with data or keep-alives at least once, which resets the reconnect backoff.
func (s *Source) serve(ctx context.Context, cn *conn, emit func(collector.Reading)) (healthy bool, err error) {
	if s.cfg.Mode == ModePoll {
		return s.servePoll(ctx, cn, emit)
	}
	return s.serveSubscribe(ctx, cn, emit)
}

func (s *Source) fail(err error) {
	if err == nil {
		return
	}
	now := s.now()
	s.update(func(st *ServerState) { st.LastError, st.LastErrorTime = err.Error(), now })
}

// track logs a node's trouble when it starts, changes or ends, and keeps the bad-node count.
func (s *Source) track(i int, pt collector.Point) {
	p := &s.points[i]
	if pt.Code != s.lastCode[i] {
		meter := s.meters[p.meter]
		switch {
		case pt.Quality == collector.Good:
			s.log.Info("opc ua node good again", "meter", meter, "node", p.text)
		default:
			s.log.Warn("opc ua node not good, published with its status", "meter", meter, "node", p.text,
				"quality", pt.Quality.String(), "err", pt.Error)
		}
		s.lastCode[i] = pt.Code
	}
	bad := pt.Quality == collector.Bad
	if bad != s.lastBad[i] {
		s.lastBad[i] = bad
		n := 0
		for _, b := range s.lastBad {
			if b {
				n++
			}
		}
		s.m.badNodes.Set(float64(n))
		s.update(func(st *ServerState) { st.BadNodes = n })
	}
}

// backoff is exponential with jitter: it starts at one second (or max when that is smaller) and
// doubles up to max.
type backoff struct {
	max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = min(time.Second, b.max)
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// Wait between half and all of cur, so that edges that lost the same server do not retry
	// in step.
	half := b.cur / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errSubscriptionDead says the subscription stopped answering or the server dropped it while
// the session may still be fine.
var errSubscriptionDead = errors.New("subscription dead")
