package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// partSites are the sites of the three-instance test: two per partition (FNV-1a mod 3 of
// site-0 … site-5 is 2, 0, 0, 1, 1, 2; the test checks it).
var partSites = []string{"site-0", "site-1", "site-2", "site-3", "site-4", "site-5"}

func partSiteModel(id string) string {
	return fmt.Sprintf(`id: %s
nodes:
  - {id: city, type: source, kind: municipal}
  - {id: works, type: unit, kind: workshop}
  - {id: sewer, type: sink, kind: discharge}
meters:
  - {id: M1, level: 1, interval: 1m}
  - {id: M2, level: 1, interval: 1m}
flows:
  - {id: intake, from: city, to: works, kind: intake, meter: M1}
  - {id: discharge, from: works, to: sewer, kind: discharge, meter: M2}
`, id)
}

// instance is one running platform of the partition.
type instance struct {
	cancel context.CancelFunc
	done   chan error
	url    string
}

func startInstance(t *testing.T, cfgPath string) *instance {
	t.Helper()
	cfg, err := loadPlatform(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Each instance keeps its own state (state.db) beside its config, across its restart.
	cfg.DataDir = strings.TrimSuffix(cfgPath, ".yaml") + "-data"
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		in.done <- serve(ctx, cfg, serveOptions{Logger: testLogger(t), Ready: func(a string) { ready <- a }})
	}()
	select {
	case a := <-ready:
		in.url = "http://" + a
	case err := <-in.done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("platform not ready")
	}
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	if err := <-in.done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// rejectedUnknown reads how many unknown-meter messages an instance dead-lettered.
func (in *instance) rejectedUnknown() float64 {
	resp, err := http.Get(in.url + "/healthz")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var h struct {
		Components struct {
			Rejected map[string]float64 `json:"rejected"`
		} `json:"components"`
	}
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return -1
	}
	return h.Components.Rejected[ingest.KindUnknownMeter]
}

// TestThreeInstances runs three platform instances, partitioned by site, on one real Mosquitto
// and one real influxd while a publisher sends every site's readings; it stops one instance for
// eight seconds in the middle and restarts it. The broker keeps a persistent session's
// messages however long its client is away, so eight seconds (dozens of ingest batches and
// several evaluations) show the same as thirty and keep the test short. Then: every reading
// is stored, and the ledger and the indicators of every site equal a single instance's.
func TestThreeInstances(t *testing.T) {
	for i, s := range partSites {
		if got := ingest.SiteShard(s, 3); got != []int{2, 0, 0, 1, 1, 2}[i] {
			t.Fatalf("%s is in partition %d: the site list no longer spreads over the instances", s, got)
		}
	}
	broker := testenv.Mosquitto(t)
	influx := testenv.InfluxDB(t)
	influx.CreateDatabase(t, "aqualoop")
	dir := t.TempDir()
	var sites []*analytics.Site
	for _, id := range partSites {
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(partSiteModel(id)), 0o644); err != nil {
			t.Fatal(err)
		}
		var s analytics.Site
		if err := config.Parse(id+".yaml", []byte(partSiteModel(id)), &s); err != nil {
			t.Fatal(err)
		}
		sites = append(sites, &s)
	}
	cfgs := make([]string, 3)
	for i := range cfgs {
		cfgs[i] = filepath.Join(dir, fmt.Sprintf("aqualoop-%d.yaml", i))
		text := fmt.Sprintf(`sites: [site-0.yaml, site-1.yaml, site-2.yaml, site-3.yaml, site-4.yaml, site-5.yaml]
ingest:
  partition: {index: %d, count: 3}
  mqtt: {servers: [%q], client_id: scale-test, qos: 1}
influxdb: {urls: [%q], bucket: aqualoop/autogen}
http: {listen: "127.0.0.1:0", auth: open}
`, i, broker.URL(), influx.URL())
		if err := os.WriteFile(cfgs[i], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	insts := make([]*instance, 3)
	for i := range insts {
		insts[i] = startInstance(t, cfgs[i])
	}
	defer func() {
		for _, in := range insts {
			if in != nil {
				in.stop(t)
			}
		}
	}()

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("scale-test-publisher").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect publisher: %v", tok.Error())
	}
	defer pub.Disconnect(250)
	publish := func(r collector.Reading) {
		t.Helper()
		b, err := wire.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		if tok := pub.Publish(wire.ReadingTopic(r.Site, r.Meter), 1, false, b); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	// Wait until every instance has subscribed: a probe from an unknown meter of each site
	// reaches exactly one instance, which dead-letters it.
	probeTime := time.Now().Add(-time.Hour)
	for deadline := time.Now().Add(60 * time.Second); ; {
		for _, s := range partSites {
			publish(collector.Reading{Site: s, Meter: "probe", Edge: "e", Seq: 1, Time: probeTime, TimeSource: collector.TimeSourceCollector,
				Points: []collector.Point{{Name: collector.PointTotal, Value: 1, Unit: "m3"}}})
		}
		all := true
		for _, in := range insts {
			all = all && in.rejectedUnknown() > 0
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not every instance subscribed within 60 s")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The readings: 6 sites × 2 meters × 240 minutes, published minute by minute in the
	// order an edge sends them, over about 16 s of wall time.
	const steps = 240
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Hour)
	var sent []collector.Reading
	stopped := false
	for k := range steps {
		switch k {
		case 60: // stop instance 1 for eight seconds while publishing goes on
			insts[1].stop(t)
			insts[1] = nil
			stopped = true
		case 150:
			if stopped {
				insts[1] = startInstance(t, cfgs[1])
			}
		}
		for si, s := range partSites {
			for mi, m := range []string{"M1", "M2"} {
				total := 500 + float64(si*10+mi) + 1.5*float64(k) + 0.25*float64(k%7)
				r := collector.Reading{Site: s, Meter: m, Edge: "edge-" + s, Seq: uint64(k + 1),
					Time: base.Add(time.Duration(k) * time.Minute), TimeSource: collector.TimeSourceDevice,
					Points: []collector.Point{{Name: collector.PointTotal, Value: total, Unit: "m3"}}}
				publish(r)
				sent = append(sent, r)
			}
		}
		if k >= 60 && k < 150 {
			time.Sleep(8 * time.Second / 90)
		} else {
			time.Sleep(8 * time.Second / 150)
		}
	}

	// The single-instance reference: the same readings through one ledger into SQLite.
	ref, err := store.OpenSQLite(filepath.Join(dir, "reference.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	var specs []ledger.MeterSpec
	for _, s := range sites {
		specs = append(specs, ledger.SpecsOf(s)...)
	}
	led := ledger.New(specs, ref, nil)
	ctx := context.Background()
	for _, r := range sent {
		if err := ref.WriteReadings(ctx, []collector.Reading{r}); err != nil {
			t.Fatal(err)
		}
		bs, err := led.Add(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.WriteBuckets(ctx, bs); err != nil {
			t.Fatal(err)
		}
	}

	shared, err := store.OpenInflux(ctx, store.InfluxConfig{URLs: []string{influx.URL()}, Bucket: "aqualoop/autogen"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	from, to := base, base.Add(steps*time.Minute)
	// Wait until the shared store holds every reading's bucket (the restarted instance works
	// through its queued messages).
	for deadline := time.Now().Add(20 * time.Second); ; {
		want, got := 0, 0
		for _, s := range partSites {
			rt, err := ref.MeterTotals(ctx, s, from, to)
			if err != nil {
				t.Fatal(err)
			}
			st, err := shared.MeterTotals(ctx, s, from, to)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range rt {
				want += x.Buckets
			}
			for _, x := range st {
				got += x.Buckets
			}
		}
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			for _, s := range partSites {
				rt, _ := ref.MeterTotals(ctx, s, from, to)
				st, _ := shared.MeterTotals(ctx, s, from, to)
				rs, _ := shared.Readings(ctx, s, "M1", from, to)
				t.Logf("%s: reference %+v\nshared %+v\nreadings of M1: %d", s, rt, st, len(rs))
			}
			t.Fatalf("the shared store has %d buckets of %d after 60 s", got, want)
		}
		time.Sleep(time.Second)
	}

	// Nothing lost: every reading is stored.
	for _, s := range partSites {
		for _, m := range []string{"M1", "M2"} {
			rs, err := shared.Readings(ctx, s, m, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != steps {
				t.Errorf("%s/%s: %d readings stored, %d published", s, m, len(rs), steps)
			}
		}
	}
	// Nothing counted twice, nothing missing: the ledger and the indicators are the single
	// instance's, answered by an instance that does not own the site.
	refEng, sharedEng := engine.New(sites, ref), engine.New(sites, shared)
	for _, s := range partSites {
		rt, _ := ref.MeterTotals(ctx, s, from, to)
		st, _ := shared.MeterTotals(ctx, s, from, to)
		if len(rt) != len(st) {
			t.Fatalf("%s: %d meters, reference %d", s, len(st), len(rt))
		}
		for i := range rt {
			if rt[i].Meter != st[i].Meter || rt[i].Buckets != st[i].Buckets || rt[i].Flags != st[i].Flags || math.Abs(rt[i].Volume-st[i].Volume) > 1e-9*math.Max(1, rt[i].Volume) {
				t.Errorf("%s: ledger %+v, single instance %+v", s, st[i], rt[i])
			}
		}
		want, err := refEng.Indicators(ctx, s, from, to)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sharedEng.Indicators(ctx, s, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.Volumes.Vi-want.Volumes.Vi) > 1e-9*want.Volumes.Vi || math.Abs(got.Volumes.Vd-want.Volumes.Vd) > 1e-9*want.Volumes.Vd || math.Abs(got.Coverage-want.Coverage) > 1e-9 {
			t.Errorf("%s: indicators Vi %v Vd %v coverage %v; single instance %v %v %v", s, got.Volumes.Vi, got.Volumes.Vd, got.Coverage, want.Volumes.Vi, want.Volumes.Vd, want.Coverage)
		}
		// Any instance answers for any site: ask one that does not own it.
		other := insts[(ingest.SiteShard(s, 3)+1)%3]
		var api engine.Indicators
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/sites/%s/indicators?from=%s&to=%s", other.url, s, from.Format(time.RFC3339), to.Format(time.RFC3339)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("indicators of %s from instance %d: %s", s, (ingest.SiteShard(s, 3)+1)%3, resp.Status)
		}
		err = json.NewDecoder(resp.Body).Decode(&api)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(api.Volumes.Vi-want.Volumes.Vi) > 1e-9*want.Volumes.Vi {
			t.Errorf("%s through instance %d's API: Vi %v, want %v", s, (ingest.SiteShard(s, 3)+1)%3, api.Volumes.Vi, want.Volumes.Vi)
		}
	}
}
