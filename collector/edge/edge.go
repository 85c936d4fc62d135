// Package edge wires an aqualoop edge collector: protocol sources poll the meters, every reading
// is stamped with its per-meter sequence number and queued, and a forwarder publishes the queue
// over MQTT, oldest first, removing a reading only after the broker acknowledged it.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/modbus"
	"github.com/aqualoop/aqualoop/collector/opcua"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/spool"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// Config is an edge's whole configuration file (configs/demo/edge.yaml).
type Config struct {
	Site   string          `yaml:"site"`
	Edge   string          `yaml:"edge"`
	MQTT   publish.Broker  `yaml:"mqtt"`
	HTTP   HTTP            `yaml:"http"`
	Spool  spool.Config    `yaml:"spool"`
	Modbus []modbus.Config `yaml:"modbus"`
	OPCUA  []opcua.Config  `yaml:"opcua"`
}

// HTTP is the edge's own endpoint for /metrics and /healthz.
type HTTP struct {
	Listen string `yaml:"listen"` // empty disables it
}

// Default fills in defaults, also for every bus and server.
func (c *Config) Default() {
	c.MQTT.Default()
	for i := range c.Modbus {
		c.Modbus[i].Default()
	}
	for i := range c.OPCUA {
		c.OPCUA[i].Default()
	}
	c.Spool.Default()
}

// Validate reports every problem of the file.
func (c *Config) Validate(p *config.Problems) {
	if !wire.ValidID(c.Site) {
		p.Addf("site", "%q is not a valid site id (letters, digits, '-', '_', '.')", c.Site)
	}
	if !wire.ValidID(c.Edge) {
		p.Addf("edge", "%q is not a valid edge id (letters, digits, '-', '_', '.')", c.Edge)
	}
	c.MQTT.Validate(p, "mqtt")
	c.Spool.Validate(p, "spool")
	if len(c.Modbus)+len(c.OPCUA) == 0 {
		p.Addf("", "neither modbus nor opcua has a bus: nothing to collect")
	}
	seen := map[string]string{}
	claim := func(meter, path string) {
		if prev, dup := seen[meter]; dup {
			p.Addf(path, "meter %q is already read at %s; one meter, one reader", meter, prev)
		}
		seen[meter] = path
	}
	names := map[string]bool{}
	for i := range c.Modbus {
		path := fmt.Sprintf("modbus[%d]", i)
		c.Modbus[i].Validate(p, path)
		if names[c.Modbus[i].Name] {
			p.Addf(path+".name", "bus name %q is used twice", c.Modbus[i].Name)
		}
		names[c.Modbus[i].Name] = true
		for j, m := range c.Modbus[i].Meters {
			claim(m.Meter, fmt.Sprintf("%s.meters[%d]", path, j))
		}
	}
	for i := range c.OPCUA {
		path := fmt.Sprintf("opcua[%d]", i)
		c.OPCUA[i].Validate(p, path)
		if names[c.OPCUA[i].Name] {
			p.Addf(path+".name", "server name %q is used twice", c.OPCUA[i].Name)
		}
		names[c.OPCUA[i].Name] = true
		for j, m := range c.OPCUA[i].Meters {
			claim(m.Meter, fmt.Sprintf("%s.meters[%d]", path, j))
		}
	}
}

// LoadConfig reads, defaults and validates an edge file.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Options are what the caller injects.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a private one
	// Now stamps Modbus readings; the demo passes the simulator's clock.
	Now func() time.Time
	// Ready, if set, is called with the bound HTTP address once the edge listens.
	Ready func(httpAddr string)
}

// Edge is a running collector.
type Edge struct {
	cfg     Config
	opts    Options
	pub     *publish.Publisher
	sources []collector.Source
	states  []func() any
	spoolM  *spool.Metrics

	mu    sync.Mutex
	spool *spool.Queue // set while Run runs
}

// New builds every source and the publisher without connecting anything yet.
func New(cfg Config, opts Options) (*Edge, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	reg := opts.Registry
	pub, err := publish.New(cfg.MQTT, cfg.Site, cfg.Edge, opts.Logger.With("component", "publish"), publish.NewMetrics(reg))
	if err != nil {
		return nil, err
	}
	e := &Edge{cfg: cfg, opts: opts, pub: pub, spoolM: spool.NewMetrics(reg)}
	var mbm *modbus.Metrics
	if len(cfg.Modbus) > 0 {
		mbm = modbus.NewMetrics(reg)
	}
	for _, bc := range cfg.Modbus {
		s, err := modbus.New(bc, cfg.Site, modbus.Options{Logger: opts.Logger.With("bus", bc.Name), Now: opts.Now, Metrics: mbm})
		if err != nil {
			return nil, fmt.Errorf("modbus bus %s: %w", bc.Name, err)
		}
		e.sources = append(e.sources, s)
		e.states = append(e.states, func() any { return s.State() })
	}
	var uam *opcua.Metrics
	if len(cfg.OPCUA) > 0 {
		uam = opcua.NewMetrics(reg)
	}
	for _, sc := range cfg.OPCUA {
		s, err := opcua.New(sc, cfg.Site, opcua.Options{Logger: opts.Logger.With("bus", sc.Name), Metrics: uam, Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("opcua server %s: %w", sc.Name, err)
		}
		e.sources = append(e.sources, s)
		e.states = append(e.states, func() any { return s.State() })
	}
	return e, nil
}

// Run collects until ctx ends. The spool and the publisher start before the sources; the sources
// stop first, then the publisher gets a bounded moment to drain, then the spool is closed.
func (e *Edge) Run(ctx context.Context) error {
	q, err := spool.Open(e.cfg.Spool, e.opts.Logger.With("component", "spool"), e.spoolM)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.spool = q
	e.mu.Unlock()
	defer q.Close()
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPub()
	var pubWG sync.WaitGroup
	pubWG.Add(2)
	go func() { defer pubWG.Done(); e.pub.Run(pubCtx) }()
	go func() { defer pubWG.Done(); e.forward(pubCtx, q) }()

	g, gctx := errgroup.WithContext(ctx)
	if e.cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", e.cfg.HTTP.Listen)
		if err != nil {
			stopPub()
			pubWG.Wait()
			return fmt.Errorf("listen %s: %w", e.cfg.HTTP.Listen, err)
		}
		srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			<-gctx.Done()
			return srv.Close()
		})
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		if e.opts.Ready != nil {
			e.opts.Ready(ln.Addr().String())
		}
	} else if e.opts.Ready != nil {
		e.opts.Ready("")
	}
	for _, s := range e.sources {
		g.Go(func() error {
			err := s.Run(gctx, func(r collector.Reading) { e.accept(q, r) })
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("source %s: %w", s.Name(), err)
			}
			return nil
		})
	}
	err = g.Wait()
	// Sources have stopped: give the forwarder a bounded moment to send what is spooled. What
	// is left stays on disk for the next start.
	deadline := time.Now().Add(5 * time.Second)
	for q.Len() > 0 && e.pub.Connected() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopPub()
	pubWG.Wait()
	return err
}

// accept spools one reading from a source; the spool stamps its sequence number.
func (e *Edge) accept(q *spool.Queue, r collector.Reading) {
	r.Site = e.cfg.Site
	r.Edge = e.cfg.Edge
	if _, err := q.Append(r); err != nil {
		// Only a broken disk gets here; the poller goes on and the next reading tries again.
		e.opts.Logger.Error("spool append failed, reading lost", "meter", r.Meter, "err", err)
	}
}

// forward publishes the spool, oldest first, until ctx ends; readings leave the spool only once
// the broker acknowledged them.
func (e *Edge) forward(ctx context.Context, q *spool.Queue) {
	const batch = 256
	backoff := 100 * time.Millisecond
	for {
		// The spooled payloads go out as they are: decoding and encoding them again cost about
		// an eighth of the edge's CPU (issue 11).
		entries, err := q.PeekRaw(ctx, batch)
		if err != nil {
			return
		}
		ms := make([]publish.Message, len(entries))
		for i, en := range entries {
			ms[i] = publish.Message{Site: en.Header.Site, Meter: en.Header.Meter, Seq: en.Header.Seq, Payload: en.Payload}
		}
		n, err := e.pub.PublishMessages(ctx, ms)
		if n > 0 {
			if aerr := q.Ack(entries[n-1].ID); aerr != nil {
				e.opts.Logger.Error("spool ack failed", "err", aerr)
			}
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, publish.ErrOffline) {
			e.opts.Logger.Warn("publish failed, readings stay spooled for retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Handler serves /metrics and /healthz.
func (e *Edge) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		buses := map[string]any{}
		for i, s := range e.sources {
			buses[s.Name()] = e.states[i]()
		}
		status := http.StatusOK
		if !e.pub.Connected() {
			status = http.StatusServiceUnavailable
		}
		spooled := map[string]any{}
		e.mu.Lock()
		if e.spool != nil {
			spooled["readings"] = e.spool.Len()
			spooled["bytes"] = e.spool.Bytes()
			spooled["oldest_age_seconds"] = e.spool.OldestAge(e.opts.Now()).Seconds()
		}
		e.mu.Unlock()
		body := map[string]any{
			"site": e.cfg.Site, "edge": e.cfg.Edge,
			"broker_connected": e.pub.Connected(), "spool": spooled, "buses": buses,
		}
		// Why the broker cannot be reached (a refused password, a rejected certificate), so
		// an operator need not dig through the log.
		if msg := e.pub.LastError(); msg != "" {
			body["broker_error"] = msg
		}
		writeJSON(w, status, body)
	})
	return mux
}
