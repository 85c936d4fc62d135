package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// e2eMeters is the meters of the end-to-end benchmark's site, each an intake.
const e2eMeters = 100

func e2eSite() string {
	var b strings.Builder
	b.WriteString("id: e2e\nnodes:\n  - {id: city, type: source, kind: municipal}\n  - {id: works, type: unit, kind: workshop}\nmeters:\n")
	for i := range e2eMeters {
		fmt.Fprintf(&b, "  - {id: M%03d, level: 1, interval: 1m}\n", i)
	}
	b.WriteString("flows:\n")
	for i := range e2eMeters {
		fmt.Fprintf(&b, "  - {id: in%03d, from: city, to: works, kind: intake, meter: M%03d}\n", i, i)
	}
	return b.String()
}

// cpuOf returns the user + system CPU time of this process, and of every process whose
// command line mentions dir (the influxd and Mosquitto this benchmark started, whose config
// files live there), from /proc.
func cpuOf(b *testing.B, dir string) (self, servers time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !strings.Contains(string(cmd), dir) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name in parentheses: utime and stime are the 14th and 15th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		servers += time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
	}
	return self, servers
}

// BenchmarkEndToEnd measures ingest as a deployment runs it: a publisher (paho, QoS 1, in this
// process) sends v1 readings of 100 meters, one per meter and minute in time order, to a real
// Mosquitto; serve (in this process) subscribes, decodes, stores the readings, runs the ledger,
// writes the buckets and roll-ups and evaluates the site; an operation ends when the store
// answers MeterTotals with every bucket of the readings sent (queryable). Everything runs on
// this machine, influxd included. Reported: readings/s, CPU per 1 000 readings of this process
// (platform and publisher) and of the servers (Mosquitto and influxd).
func BenchmarkEndToEnd(b *testing.B) {
	for _, kind := range []string{"sqlite", "influx"} {
		b.Run(kind, func(b *testing.B) {
			root := filepath.Dir(b.TempDir())
			broker := testenv.Mosquitto(b)
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "e2e.yaml"), []byte(e2eSite()), 0o644); err != nil {
				b.Fatal(err)
			}
			storeCfg := fmt.Sprintf("sqlite: {path: %q}\n", filepath.Join(dir, "aqualoop.db"))
			var influxURL string
			if kind == "influx" {
				in := testenv.InfluxDB(b)
				in.CreateDatabase(b, "aqualoop")
				influxURL = in.URL()
				storeCfg = fmt.Sprintf("influxdb: {urls: [%q], bucket: aqualoop/autogen}\n", influxURL)
			}
			cfgPath := filepath.Join(dir, "aqualoop.yaml")
			text := fmt.Sprintf("sites: [e2e.yaml]\ningest:\n  mqtt: {servers: [%q], client_id: e2e-bench, qos: 1}\n%shttp: {listen: \"127.0.0.1:0\", auth: open}\n", broker.URL(), storeCfg)
			if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
				b.Fatal(err)
			}
			cfg, err := loadPlatform(cfgPath)
			if err != nil {
				b.Fatal(err)
			}
			cfg.DataDir = filepath.Join(dir, "data")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			ready := make(chan string, 1)
			go func() {
				done <- serve(ctx, cfg, serveOptions{Logger: slog.New(slog.DiscardHandler), Ready: func(a string) { ready <- a }})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			var url string
			select {
			case a := <-ready:
				url = "http://" + a
			case <-time.After(60 * time.Second):
				b.Fatal("serve not ready")
			}
			var q engine.Store
			if kind == "influx" {
				st, err := store.OpenInflux(ctx, store.InfluxConfig{URLs: []string{influxURL}, Bucket: "aqualoop/autogen"}, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				q = st
			} else {
				st, err := store.OpenSQLite(filepath.Join(dir, "aqualoop.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				q = st
			}
			pub := mqtt.NewClient(benchClientOptions(b, broker.URL(), "e2e-publisher", true).SetMaxResumePubInFlight(1000))
			if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				b.Fatalf("connect publisher: %v", tok.Error())
			}
			defer pub.Disconnect(250)
			send := func(r collector.Reading) mqtt.Token {
				p, err := wire.Encode(r)
				if err != nil {
					b.Fatal(err)
				}
				return pub.Publish(wire.ReadingTopic(r.Site, r.Meter), 1, false, p)
			}
			// Subscribed once a probe from an unknown meter is dead-lettered.
			probe := &instance{url: url}
			for deadline := time.Now().Add(60 * time.Second); probe.rejectedUnknown() <= 0; time.Sleep(200 * time.Millisecond) {
				send(collector.Reading{Site: "e2e", Meter: "probe", Edge: "e", Seq: 1, Time: time.Now(), TimeSource: collector.TimeSourceCollector,
					Points: []collector.Point{{Name: collector.PointTotal, Value: 1, Unit: "m3"}}}).Wait()
				if time.Now().After(deadline) {
					b.Fatal("serve did not subscribe")
				}
			}
			const minutes = 200 // per operation: 100 meters × 200 minutes = 20 000 readings
			base := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Hour)
			step := 0
			total := 0
			self0, srv0 := cpuOf(b, root)
			for b.Loop() {
				toks := make([]mqtt.Token, 0, minutes*e2eMeters)
				for range minutes {
					for m := range e2eMeters {
						toks = append(toks, send(collector.Reading{Site: "e2e", Meter: fmt.Sprintf("M%03d", m), Edge: "edge-1", Seq: uint64(step + 1),
							Time: base.Add(time.Duration(step) * time.Minute), TimeSource: collector.TimeSourceDevice,
							Points: []collector.Point{{Name: collector.PointTotal, Value: 1000 + 1.25*float64(step), Unit: "m3"}, {Name: collector.PointFlow, Value: 75, Unit: "m3/h"}}}))
					}
					step++
				}
				for _, tok := range toks {
					if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
						b.Fatalf("publish: %v", tok.Error())
					}
				}
				total += minutes * e2eMeters
				// Queryable: the store sums every bucket of the readings sent so far (a meter's
				// reading at minute k completes the bucket of minute k-1).
				from, to := base, base.Add(time.Duration(step)*time.Minute)
				want := e2eMeters * (step - 1)
				for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
					ts, err := q.MeterTotals(ctx, "e2e", from, to)
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for _, t := range ts {
						n += t.Buckets
					}
					if n >= want {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d buckets after 5 minutes", n, want)
					}
				}
			}
			self1, srv1 := cpuOf(b, root)
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "readings/s")
			b.ReportMetric(float64(self1-self0)/float64(time.Millisecond)/float64(total)*1000, "proc-cpu-ms/1000")
			b.ReportMetric(float64(srv1-srv0)/float64(time.Millisecond)/float64(total)*1000, "servers-cpu-ms/1000")
		})
	}
}

// BenchmarkBrokerFloor is BenchmarkEndToEnd without the platform: the same publisher and
// readings, the same Mosquitto, and a paho subscriber at QoS 1 with a persistent session (as
// serve subscribes) that only counts what it receives. Its CPU per 1 000 readings is what
// moving the readings through the broker costs before anything is decoded or stored: the floor
// under BenchmarkEndToEnd on the same machine.
func BenchmarkBrokerFloor(b *testing.B) {
	root := filepath.Dir(b.TempDir())
	broker := testenv.Mosquitto(b)
	got := make(chan struct{}, 1<<16)
	sub := mqtt.NewClient(benchClientOptions(b, broker.URL(), "floor-subscriber", false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(mqtt.Client, mqtt.Message) { got <- struct{}{} }))
	if tok := sub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("connect subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(250)
	if tok := sub.Subscribe(wire.Root+"/+/meters/+", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	pub := mqtt.NewClient(benchClientOptions(b, broker.URL(), "floor-publisher", true).SetMaxResumePubInFlight(1000))
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("connect publisher: %v", tok.Error())
	}
	defer pub.Disconnect(250)
	const minutes = 200
	base := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Hour)
	step, total := 0, 0
	self0, srv0 := cpuOf(b, root)
	for b.Loop() {
		toks := make([]mqtt.Token, 0, minutes*e2eMeters)
		for range minutes {
			for m := range e2eMeters {
				r := collector.Reading{Site: "e2e", Meter: fmt.Sprintf("M%03d", m), Edge: "edge-1", Seq: uint64(step + 1),
					Time: base.Add(time.Duration(step) * time.Minute), TimeSource: collector.TimeSourceDevice,
					Points: []collector.Point{{Name: collector.PointTotal, Value: 1000 + 1.25*float64(step), Unit: "m3"}, {Name: collector.PointFlow, Value: 75, Unit: "m3/h"}}}
				p, err := wire.Encode(r)
				if err != nil {
					b.Fatal(err)
				}
				toks = append(toks, pub.Publish(wire.ReadingTopic(r.Site, r.Meter), 1, false, p))
			}
			step++
		}
		for range minutes * e2eMeters {
			select {
			case <-got:
			case <-time.After(60 * time.Second):
				b.Fatal("the subscriber stopped receiving")
			}
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
				b.Fatalf("publish: %v", tok.Error())
			}
		}
		total += minutes * e2eMeters
	}
	self1, srv1 := cpuOf(b, root)
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(self1-self0)/float64(time.Millisecond)/float64(total)*1000, "proc-cpu-ms/1000")
	b.ReportMetric(float64(srv1-srv0)/float64(time.Millisecond)/float64(total)*1000, "servers-cpu-ms/1000")
}

// benchClientOptions are the paho options an edge or the platform uses (publish.Broker), for
// the benchmarks' own publisher and subscriber.
func benchClientOptions(b *testing.B, url, id string, clean bool) *mqtt.ClientOptions {
	br := publish.Broker{Servers: []string{url}, ClientID: id, CleanSession: clean}
	br.Default()
	o, err := br.ClientOptions()
	if err != nil {
		b.Fatal(err)
	}
	return o
}
