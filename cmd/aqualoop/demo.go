package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aqualoop/aqualoop/analytics/api/auth"
	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/sim"
	"github.com/aqualoop/aqualoop/configs"
)

func cmdSimulate(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("config", "configs/demo/plant.yaml", "plant config file")
	listen := fs.String("listen", "127.0.0.1:8081", "address of the ground-truth API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := sim.LoadConfig(*path)
	if err != nil {
		return err
	}
	plant, err := sim.New(cfg, logger.With("component", "sim"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: plant.Handler(), ReadHeaderTimeout: 5 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return plant.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		return srv.Close()
	})
	g.Go(func() error {
		select {
		case <-plant.Ready():
		case <-gctx.Done():
			return nil
		}
		fmt.Fprintf(stdout, "simulator running: Modbus TCP %s, OPC UA %s (namespace %s), truth http://%s/api/v1/sim/truth, faults http://%s/api/v1/sim/faults\n",
			plant.ModbusAddr(), plant.OPCUAEndpoint(), plant.NamespaceURI(), ln.Addr(), ln.Addr())
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	})
	return g.Wait()
}

// demoOptions are the demo's knobs; tests use them to run it in-process.
type demoOptions struct {
	Listen    string
	ConfigDir string
	DataDir   string
	TimeScale float64
	Logger    *slog.Logger
	// Token is the admin API token the demo stores and prints; empty makes a new one.
	Token string
	// Ready is called with the platform's base URL once everything runs.
	Ready func(url string, plant *sim.Plant)
}

func cmdDemo(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	o := demoOptions{Logger: logger}
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address of the dashboard and API")
	fs.StringVar(&o.ConfigDir, "config-dir", "", "folder with plant.yaml, edge.yaml, aqualoop.yaml, site.yaml and inputs.csv (default: the built-in demo files, written to the data folder)")
	fs.StringVar(&o.DataDir, "data-dir", "", "folder for the demo's configs, SQLite store and edge spool (default: a new temporary folder, removed at exit)")
	fs.Float64Var(&o.TimeScale, "time-scale", 60, "simulated seconds per wall-clock second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Token = auth.TokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	// The folders are settled here so that the banner can name them.
	cleanup, err := o.prepareDirs()
	if err != nil {
		return err
	}
	defer cleanup()
	o.Ready = func(url string, plant *sim.Plant) {
		fmt.Fprintf(stdout, "aqualoop demo running: log in at %slogin#token=%s\n", url, o.Token)
		fmt.Fprintf(stdout, "  admin API token (this demo's, stored hashed in its data folder): %s\n", o.Token)
		fmt.Fprintf(stdout, "  simulated plant: %d meters, time %s, %g× real time\n", len(plant.Meters()), plant.Now().Format(time.RFC3339), o.TimeScale)
		fmt.Fprintf(stdout, "  Modbus TCP gateway tcp://%s, OPC UA server %s\n", plant.ModbusAddr(), plant.OPCUAEndpoint())
		fmt.Fprintf(stdout, "  configs %s, data (SQLite store, platform state, edge spool) %s\n", o.ConfigDir, o.DataDir)
		fmt.Fprintf(stdout, "  API: curl -H 'Authorization: Bearer %s' '%sapi/v1/sites/demo/indicators?period=hour'\n", o.Token, url)
		fmt.Fprintf(stdout, "  ground truth: curl -H 'Authorization: Bearer %s' '%sapi/v1/sim/truth?period=hour'\n", o.Token, url)
		fmt.Fprintf(stdout, "  alerts: %sapi/v1/alerts (a leak is injected 3 simulated hours in, for one hour)\n", url)
	}
	return demo(ctx, o)
}

// prepareDirs makes a temporary data folder when none is given (cleanup removes it) and writes
// the built-in demo configs into it when no config folder is given.
func (o *demoOptions) prepareDirs() (cleanup func(), err error) {
	cleanup = func() {}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "aqualoop-demo-")
		if err != nil {
			return cleanup, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		o.DataDir = dir
	}
	if o.ConfigDir == "" {
		o.ConfigDir = filepath.Join(o.DataDir, "configs")
		if _, err := configs.WriteDemo(o.ConfigDir); err != nil {
			cleanup()
			return func() {}, err
		}
	}
	return cleanup, nil
}

// demo runs the whole chain in one process: simulator → edge → embedded broker → platform.
func demo(ctx context.Context, o demoOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cleanup, err := o.prepareDirs()
	if err != nil {
		return err
	}
	defer cleanup()
	plantCfg, err := sim.LoadConfig(filepath.Join(o.ConfigDir, "plant.yaml"))
	if err != nil {
		return err
	}
	plantCfg.TimeScale = o.TimeScale
	plantCfg.Modbus.Listen = "127.0.0.1:0"
	plantCfg.OPCUA.Listen = "127.0.0.1:0"
	plant, err := sim.New(plantCfg, o.Logger.With("component", "sim"))
	if err != nil {
		return err
	}
	// A new user should see an alert fire and clear: a 15 m³/h leak on the municipal main three
	// simulated hours in, for one hour (leak_imbalance_hourly and leak_burst_municipal find it).
	if _, err := plant.AddFault(sim.FaultConfig{Kind: sim.FaultLeak, Node: "dist", Rate: 15}, plant.Start().Add(3*time.Hour), time.Hour); err != nil {
		return err
	}
	edgeCfg, err := edge.LoadConfig(filepath.Join(o.ConfigDir, "edge.yaml"))
	if err != nil {
		return err
	}
	platCfg, err := loadPlatform(filepath.Join(o.ConfigDir, "aqualoop.yaml"))
	if err != nil {
		return err
	}
	platCfg.InfluxDB.URLs = nil
	platCfg.DataDir = o.DataDir
	platCfg.SQLite.Path = "aqualoop.db"
	platCfg.HTTP.Listen = o.Listen
	platCfg.Broker.Listen = "127.0.0.1:0"
	if o.Token == "" {
		o.Token = auth.TokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	}

	// Shutdown runs in the order of a real plant: the edge stops first and closes its OPC UA
	// session, then the simulator and the platform. Stopping the simulator's OPC UA server while
	// the edge still holds a session makes it wait ten seconds for the channel.
	g, gctx := errgroup.WithContext(ctx)
	edgeCtx, stopEdge := context.WithCancel(gctx)
	defer stopEdge()
	backCtx, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	edgeDone := make(chan struct{})
	g.Go(func() error {
		<-gctx.Done()
		stopEdge()
		select {
		case <-edgeDone:
		case <-time.After(5 * time.Second):
		}
		stopBack()
		return nil
	})
	// abort ends a start that did not get as far as running the edge.
	abort := func(err error) error {
		close(edgeDone)
		stopBack()
		if werr := g.Wait(); err == nil {
			err = werr
		}
		return err
	}
	g.Go(func() error { return plant.Run(backCtx) })
	select {
	case <-plant.Ready():
	case <-gctx.Done():
		return abort(nil)
	}

	brokerURL := make(chan string, 1)
	platformURL := make(chan string, 1)
	g.Go(func() error {
		return serve(backCtx, platCfg, serveOptions{
			Logger: o.Logger.With("component", "platform"),
			Now:    plant.Now,
			Extra: map[string]http.Handler{"GET /api/v1/sim/truth": plant.Handler(), "GET /api/v1/sim/faults": plant.Handler(),
				"POST /api/v1/sim/faults": plant.Handler(), "DELETE /api/v1/sim/faults/{id}": plant.Handler()},
			Broker:     func(addr string) { brokerURL <- "tcp://" + addr },
			Ready:      func(addr string) { platformURL <- "http://" + addr + "/" },
			AdminToken: o.Token,
		})
	})
	var burl string
	select {
	case burl = <-brokerURL:
	case <-gctx.Done():
		return abort(nil)
	}
	edgeCfg.MQTT.Servers = []string{burl}
	edgeCfg.HTTP.Listen = ""
	edgeCfg.Spool.Dir = filepath.Join(o.DataDir, "spool")
	for i := range edgeCfg.Modbus {
		edgeCfg.Modbus[i].Controller = "tcp://" + plant.ModbusAddr()
	}
	for i := range edgeCfg.OPCUA {
		edgeCfg.OPCUA[i].Endpoint = plant.OPCUAEndpoint()
	}
	e, err := edge.New(*edgeCfg, edge.Options{Logger: o.Logger.With("component", "edge"), Now: plant.Now})
	if err != nil {
		return abort(err)
	}
	g.Go(func() error {
		defer close(edgeDone)
		return e.Run(edgeCtx)
	})
	g.Go(func() error {
		return mirrorEdgeFaults(edgeCtx, plant, burl, edgeCfg.Site, edgeCfg.Edge, o.Logger.With("component", "demo"))
	})
	select {
	case url := <-platformURL:
		if o.Ready != nil {
			o.Ready(strings.TrimSuffix(url, "/")+"/", plant)
		}
	case <-gctx.Done():
	}
	return g.Wait()
}
