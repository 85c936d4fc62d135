package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/aqualoop/aqualoop/alerting"
	"github.com/aqualoop/aqualoop/alerting/notify"
	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/register"
	"github.com/aqualoop/aqualoop/analytics/store"
)

func cmdServe(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("config", "configs/demo/aqualoop.yaml", "platform config file")
	dataDir := fs.String("data-dir", "", "folder for the SQLite store and platform state (default: data_dir of the config, else $STATE_DIRECTORY, $XDG_STATE_HOME/aqualoop or ~/.local/state/aqualoop)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadPlatform(*path)
	if err != nil {
		return err
	}
	if err := cfg.prepareDataDir(*dataDir); err != nil {
		return err
	}
	logger.Info("platform data folder", "dir", cfg.DataDir, "store", storeKind(cfg))
	scheme := "http"
	if cfg.HTTP.TLS.Enabled() {
		scheme = "https"
	}
	return serve(ctx, cfg, serveOptions{Logger: logger, Ready: func(addr string) {
		logger.Info("platform listening", "url", scheme+"://"+addr+"/", "auth", cfg.HTTP.Auth)
	}})
}

// serveOptions are what a caller of serve injects (the demo and the tests).
type serveOptions struct {
	Logger *slog.Logger
	// Now is the clock of the API's default periods; the demo passes the simulator's.
	Now func() time.Time
	// Ready is called with the HTTP address once the platform listens.
	Ready func(httpAddr string)
	// Broker, if set, is called with the embedded broker's address once it listens.
	Broker func(addr string)
	// Extra routes mounted beside the API (the demo's ground truth).
	Extra map[string]http.Handler
	// AdminToken, if set, is stored as an admin token named "demo" unless it already works (the
	// demo prints it in its login link; tests call the API with it).
	AdminToken string
	// Notify receives alerts (default: logged); tests inject a recorder.
	Notify func(context.Context, []alerting.Alert)
}

// platformStore is everything the platform needs of a store.
type platformStore interface {
	store.Store
	engine.Store
	engine.Results
	api.Inputs
}

func openStore(ctx context.Context, cfg *platformConfig, logger *slog.Logger) (platformStore, error) {
	if cfg.usesInflux() {
		return store.OpenInflux(ctx, cfg.InfluxDB, logger.With("component", "influxdb"))
	}
	return store.OpenSQLite(cfg.dataPath(cfg.SQLite.Path))
}

// serve runs the platform until ctx ends.
func serve(ctx context.Context, cfg *platformConfig, o serveOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if cfg.DataDir == "" {
		if err := cfg.prepareDataDir(""); err != nil {
			return err
		}
	}
	sites, err := cfg.loadSites()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	g, gctx := errgroup.WithContext(ctx)
	if cfg.HTTP.Auth == auth.ModeOpen && !auth.Loopback(cfg.HTTP.Listen) {
		return fmt.Errorf("http.auth open serves every caller as admin; refusing to listen on %s, which is not loopback", cfg.HTTP.Listen)
	}
	if cfg.Broker.Listen != "" {
		b, err := startBroker(cfg.Broker, o.Logger.With("component", "broker"))
		if err != nil {
			return err
		}
		defer b.Close()
		// With an embedded broker the platform ingests from it, whatever the file says.
		cfg.Ingest.MQTT.Servers = []string{b.URL()}
		if b.user != "" {
			cfg.Ingest.MQTT.Username, cfg.Ingest.MQTT.Password = b.user, b.password
			cfg.Ingest.MQTT.PasswordFile, cfg.Ingest.MQTT.PasswordEnv = "", ""
		}
		if b.tls {
			// Our own listener, reached over loopback: its certificate names the public host.
			cfg.Ingest.MQTT.TLS.InsecureSkipVerify = true
		}
		if o.Broker != nil {
			o.Broker(b.Addr())
		}
	}

	st, err := openStore(ctx, cfg, o.Logger)
	if err != nil {
		return err
	}
	defer st.Close()

	var specs []ledger.MeterSpec
	for _, s := range sites {
		specs = append(specs, ledger.SpecsOf(s)...)
	}
	state, err := openState(cfg)
	if err != nil {
		return err
	}
	defer state.Close()
	meterReg, err := register.Open(ctx, state, nil)
	if err != nil {
		return err
	}
	led := ledger.New(specs, st, o.Logger.With("component", "ledger"), ledger.WithMetrics(ledger.NewMetrics(reg)),
		ledger.WithReplacements(meterReg.Lookup))
	eng := engine.New(sites, st)
	maker, err := newMaker(cfg, sites, eng, st, meterReg, o.Now, o.Logger.With("component", "report"))
	if err != nil {
		return err
	}
	if cfg.InputsFile != "" {
		n, err := engine.LoadInputs(ctx, cfg.path(cfg.InputsFile), sites, st)
		if err != nil {
			return err
		}
		o.Logger.Info("production inputs loaded", "file", cfg.path(cfg.InputsFile), "count", n)
	}
	hl := newHealth(time.Now)
	var disp *notify.Dispatcher
	if o.Notify == nil && cfg.Alerting.notifying() {
		d, send, closeMQTT, err := newNotifier(ctx, cfg, state, reg, o.Logger.With("component", "notify"))
		if err != nil {
			return err
		}
		defer closeMQTT()
		disp, o.Notify = d, send
	}
	alerts, err := newAlerting(ctx, cfg, sites, state, reg, o.Logger.With("component", "alerting"), o.Notify)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	hub := mountConsole(mux, reg, o.Logger.With("component", "console"))
	logSink, hubSink := eng.LogSink(o.Logger.With("component", "benchmark")), hub.Sink()
	eval := engine.NewEvaluator(eng, engine.EvaluatorOptions{
		Now:     o.Now,
		Results: st,
		// Each new snapshot goes to the log (reuse below the benchmark), alerting and the
		// console's live stream.
		Sink: hl.sink(func(ctx context.Context, s engine.Snapshot) {
			logSink(ctx, s)
			alerts.Sink(ctx, s)
			hubSink(ctx, s)
		}),
		Logger:  o.Logger.With("component", "engine"),
		Metrics: engine.NewMetrics(reg),
		// With a partition this instance evaluates its own sites; the others' snapshots are
		// computed from the shared store when asked for.
		Owns: cfg.Ingest.Partition.Owns,
	})
	known := map[string]bool{}
	var siteIDs []string
	for _, s := range sites {
		siteIDs = append(siteIDs, s.ID)
		for _, m := range s.Meters {
			known[s.ID+"/"+m.ID] = true
		}
	}
	im := ingest.NewMetrics(reg)
	in := ingest.New(cfg.Ingest, healthStore{st, hl}, led, ingest.Options{
		Logger:  o.Logger.With("component", "ingest"),
		Metrics: im,
		Known:   func(site, meter string) bool { return known[site+"/"+meter] },
		OnBuckets: hl.onBuckets(func(bs []ledger.Bucket) {
			eval.Notify(bs)
			alerts.Buckets(bs)
		}),
		OnReadings: alerts.Readings,
		OnStatus:   alerts.Status,
		Sites:      siteIDs,
		Now:        o.Now, // the plausibility window follows the demo's simulated clock
	})
	hl.in = in
	hl.register(reg)

	guard, err := newGuard(ctx, cfg, state, sites, o, reg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTP.Listen, err)
	}
	if cfg.HTTP.TLS.Enabled() {
		cert, err := auth.LoadCertificate(cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile, o.Logger.With("component", "http"))
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, cert.ServerConfig())
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", api.Handler(api.Options{
		Sites: sites, Engine: eng, Snapshots: eval, Inputs: st, Readings: st, Logger: o.Logger.With("component", "api"), Now: o.Now,
		Health: func() (map[string]any, bool) {
			return map[string]any{
				"store": map[string]any{"kind": storeKind(cfg)},
				// Liveness does not depend on the broker (see /readyz), but says how it is.
				"broker":    in.State(),
				"partition": map[string]int{"index": cfg.Ingest.Partition.Index, "count": max(cfg.Ingest.Partition.Count, 1)},
				"rejected":  map[string]float64{ingest.KindDecode: im.Rejected(ingest.KindDecode), ingest.KindTopic: im.Rejected(ingest.KindTopic), ingest.KindUnknownMeter: im.Rejected(ingest.KindUnknownMeter)},
			}, true
		},
		Ready: hl.ready,
	}))
	ah := alerts.Handler()
	for _, p := range []string{"/api/v1/alerts", "/api/v1/alerts/", "/api/v1/silences", "/api/v1/silences/", "/api/v1/rules"} {
		mux.Handle(p, ah)
	}
	regAPI := register.Handler(register.Options{Sites: sites, Register: meterReg, Who: registerWho, Now: o.Now,
		Logger: o.Logger.With("component", "register"),
		OnReplacement: func(ctx context.Context, x register.Replacement) error {
			bs, err := led.Recompute(ctx, x.Site, x.Meter, x.Time)
			if err != nil {
				return err
			}
			if err := st.WriteBuckets(ctx, bs); err != nil {
				return err
			}
			eval.Notify(bs) // the figures of the swap's periods are evaluated again
			return nil
		}})
	mux.Handle("/api/v1/sites/{site}/register", regAPI)
	mux.Handle("/api/v1/sites/{site}/register/", regAPI)
	mux.Handle("GET /api/v1/sites/{site}/reports/", maker.Handler())
	for pattern, h := range o.Extra {
		mux.Handle(pattern, h)
	}
	guard.next = mux
	srv := &http.Server{Handler: guard, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	g.Go(func() error { return eval.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	if disp != nil {
		g.Go(func() error { return disp.Run(gctx) })
	}
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return in.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}

	return g.Wait()
}

func storeKind(cfg *platformConfig) string {
	if cfg.usesInflux() {
		return "influxdb"
	}
	return "sqlite"
}
