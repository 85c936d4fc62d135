package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
)

func cmdServe(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "configs/demo/aqualoop.yaml", "platform config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadPlatform(*path)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, serveOptions{Logger: logger, Ready: func(addr string) {
		logger.Info("platform listening", "url", "http://"+addr+"/")
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
	return store.OpenSQLite(cfg.path(cfg.SQLite.Path))
}

// serve runs the platform until ctx ends.
func serve(ctx context.Context, cfg *platformConfig, o serveOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	sites, err := cfg.loadSites()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	g, gctx := errgroup.WithContext(ctx)
	if cfg.Broker.Listen != "" {
		b, err := startBroker(cfg.Broker.Listen, o.Logger.With("component", "broker"))
		if err != nil {
			return err
		}
		defer b.Close()
		// With an embedded broker the platform ingests from it, whatever the file says.
		cfg.Ingest.MQTT.Servers = []string{b.URL()}
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
	led := ledger.New(specs, st, o.Logger.With("component", "ledger"), ledger.WithMetrics(ledger.NewMetrics(reg)))
	eng := engine.New(sites, st)
	if cfg.InputsFile != "" {
		n, err := engine.LoadInputs(ctx, cfg.path(cfg.InputsFile), sites, st)
		if err != nil {
			return err
		}
		o.Logger.Info("production inputs loaded", "file", cfg.path(cfg.InputsFile), "count", n)
	}
	eval := engine.NewEvaluator(eng, engine.EvaluatorOptions{
		Now:     o.Now,
		Results: st,
		// Alerting comes later; until then a reuse rate below the benchmark is logged.
		Sink:    eng.LogSink(o.Logger.With("component", "benchmark")),
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
	in := ingest.New(cfg.Ingest, st, led, ingest.Options{
		Logger:    o.Logger.With("component", "ingest"),
		Metrics:   im,
		Known:     func(site, meter string) bool { return known[site+"/"+meter] },
		OnBuckets: eval.Notify,
		Sites:     siteIDs,
	})

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTP.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", api.Handler(api.Options{
		Sites: sites, Engine: eng, Snapshots: eval, Inputs: st, Readings: st, Logger: o.Logger.With("component", "api"), Now: o.Now,
		Health: func() (map[string]any, bool) {
			return map[string]any{
				"store":     map[string]any{"kind": storeKind(cfg)},
				"partition": map[string]int{"index": cfg.Ingest.Partition.Index, "count": max(cfg.Ingest.Partition.Count, 1)},
				"rejected":  map[string]float64{ingest.KindDecode: im.Rejected(ingest.KindDecode), ingest.KindTopic: im.Rejected(ingest.KindTopic), ingest.KindUnknownMeter: im.Rejected(ingest.KindUnknownMeter)},
			}, true
		},
	}))
	for pattern, h := range o.Extra {
		mux.Handle(pattern, h)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error { return eval.Run(gctx) })
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
