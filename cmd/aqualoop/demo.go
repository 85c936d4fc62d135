package main

import (
	"context"
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

	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/sim"
)

func cmdSimulate(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
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
	// Ready is called with the platform's base URL once everything runs.
	Ready func(url string, plant *sim.Plant)
}

func cmdDemo(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := demoOptions{Logger: logger}
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address of the dashboard and API")
	fs.StringVar(&o.ConfigDir, "configs", "configs/demo", "folder with plant.yaml, edge.yaml, aqualoop.yaml and site.yaml")
	fs.StringVar(&o.DataDir, "data", "", "folder for the SQLite store (default: a new temporary folder)")
	fs.Float64Var(&o.TimeScale, "time-scale", 60, "simulated seconds per wall-clock second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Ready = func(url string, plant *sim.Plant) {
		fmt.Fprintf(stdout, "aqualoop demo running: open %s\n", url)
		fmt.Fprintf(stdout, "  simulated plant time %s, %g× real time\n", plant.Now().Format(time.RFC3339), o.TimeScale)
		fmt.Fprintf(stdout, "  API: %sapi/v1/sites/demo/indicators   ground truth: %sapi/v1/sim/truth?from=...&to=...\n", url, url)
		fmt.Fprintf(stdout, "  alerts: %sapi/v1/alerts (a leak is injected 3 simulated hours in, for one hour)\n", url)
	}
	return demo(ctx, o)
}

// demo runs the whole chain in one process: simulator → edge → embedded broker → platform.
func demo(ctx context.Context, o demoOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "aqualoop-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
	}
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
	platCfg.SQLite.Path = filepath.Join(o.DataDir, "aqualoop.db")
	platCfg.HTTP.Listen = o.Listen
	platCfg.Broker.Listen = "127.0.0.1:0"

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
			Broker: func(addr string) { brokerURL <- "tcp://" + addr },
			Ready:  func(addr string) { platformURL <- "http://" + addr + "/" },
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
