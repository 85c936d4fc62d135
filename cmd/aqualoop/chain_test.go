package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/sim"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// chain is one running simulator → edge → broker → platform chain, all in this process except the
// broker and the store, which may be real external servers.
type chain struct {
	plant   *sim.Plant
	baseURL string
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("AQUALOOP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startChain runs the demo configs against brokerURL with the given store settings. timeScale
// speeds up the simulated plant; the edge shares its clock.
func startChain(t *testing.T, ctx context.Context, timeScale float64, brokerURL string, influx *store.InfluxConfig) *chain {
	t.Helper()
	logger := testLogger(t)
	plantCfg, err := sim.LoadConfig("../../configs/demo/plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plantCfg.TimeScale = timeScale
	plant := testenv.Plant(t, plantCfg)

	platCfg, err := loadPlatform("../../configs/demo/aqualoop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	platCfg.HTTP.Listen = "127.0.0.1:0"
	platCfg.DataDir = t.TempDir()
	platCfg.Ingest.MQTT.Servers = []string{brokerURL}
	platCfg.Ingest.MQTT.ClientID = "platform-" + t.Name()
	if influx != nil {
		platCfg.InfluxDB = *influx
	}
	ready := make(chan string, 1)
	servDone := make(chan error, 1)
	go func() {
		servDone <- serve(ctx, platCfg, serveOptions{Logger: logger, Now: plant.Now, Ready: func(a string) { ready <- a }, AdminToken: chainToken})
	}()
	t.Cleanup(func() {
		if err := <-servDone; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-servDone:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("platform not ready")
	}

	edgeCfg, err := edge.LoadConfig("../../configs/demo/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edgeCfg.MQTT.Servers = []string{brokerURL}
	edgeCfg.HTTP.Listen = ""
	edgeCfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	// Poll four times a second so even at the accelerated clock a reading lands every
	// simulated half minute.
	for i := range edgeCfg.Modbus {
		edgeCfg.Modbus[i].Controller = "tcp://" + plant.ModbusAddr()
		edgeCfg.Modbus[i].Interval = 250 * time.Millisecond
	}
	for i := range edgeCfg.OPCUA {
		edgeCfg.OPCUA[i].Endpoint = plant.OPCUAEndpoint()
		edgeCfg.OPCUA[i].Interval = 250 * time.Millisecond
	}
	e, err := edge.New(*edgeCfg, edge.Options{Logger: logger, Now: plant.Now})
	if err != nil {
		t.Fatal(err)
	}
	edgeDone := make(chan struct{})
	go func() { defer close(edgeDone); e.Run(ctx) }()
	t.Cleanup(func() { <-edgeDone })
	return &chain{plant: plant, baseURL: "http://" + addr}
}

// chainToken is the admin API token the chain tests' platforms are started with.
const chainToken = "aql_chain-test-admin-token-not-secret"

// getJSON reads u with the chain's admin token.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+chainToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

// waitIndicators polls the API until every metered flow of [from, to) is fully covered, then
// returns the indicators.
func (c *chain) waitIndicators(t *testing.T, from, to time.Time, limit time.Duration) engine.Indicators {
	t.Helper()
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	deadline := time.Now().Add(limit)
	var ind engine.Indicators
	for {
		if c.plant.Now().After(to.Add(2 * time.Minute)) {
			getJSON(t, c.baseURL+"/api/v1/sites/demo/indicators?"+q.Encode(), &ind)
			if ind.Coverage >= 0.999 {
				return ind
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("indicators of [%s, %s) not complete after %s: coverage %.4f, flows %+v", from, to, limit, ind.Coverage, ind.Flows)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// assertTruth compares the platform's figures for [from, to) with the simulator's ground truth.
func (c *chain) assertTruth(t *testing.T, ind engine.Indicators, from, to time.Time) {
	t.Helper()
	var truth sim.Truth
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	srv := newLocalServer(t, c.plant.Handler())
	getJSON(t, srv+"/api/v1/sim/truth?"+q.Encode(), &truth)
	if ind.ReuseRate == nil {
		t.Fatalf("reuse rate undefined: %+v", ind.Volumes)
	}
	diffPP := 100 * math.Abs(*ind.ReuseRate-truth.ReuseRate)
	t.Logf("[%s, %s): platform R = %.4f %%, truth R = %.4f %% (Δ %.4f pp); Vi %.2f vs %.2f m³, Vr %.2f vs %.2f m³",
		from.Format(time.TimeOnly), to.Format(time.TimeOnly), 100**ind.ReuseRate, 100*truth.ReuseRate, diffPP,
		ind.Volumes.Vi, truth.VI, ind.Volumes.Vr, truth.VR)
	if diffPP > 0.5 {
		t.Errorf("reuse rate off by %.3f percentage points (limit 0.5)", diffPP)
	}
	// The ledger interpolates only at the two ends of the period, so the volumes themselves
	// must agree far more closely than the rate needs.
	if rel := math.Abs(ind.Volumes.Vi-truth.VI) / truth.VI; rel > 0.01 {
		t.Errorf("Vi %.3f m³ differs from truth %.3f m³ by %.2f %%", ind.Volumes.Vi, truth.VI, 100*rel)
	}
	if rel := math.Abs(ind.Volumes.Vr-truth.VR) / truth.VR; rel > 0.01 {
		t.Errorf("Vr %.3f m³ differs from truth %.3f m³ by %.2f %%", ind.Volumes.Vr, truth.VR, 100*rel)
	}
	if rel := math.Abs(ind.Volumes.Vu-truth.VU) / truth.VU; rel > 0.01 {
		t.Errorf("Vu %.3f m³ differs from truth %.3f m³ by %.2f %%", ind.Volumes.Vu, truth.VU, 100*rel)
	}
}

func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestChainMosquittoInfluxDB runs edge → real Mosquitto → serve → real InfluxDB 1.8.10 and checks
// the reuse rate against the simulator's truth and the stored readings in InfluxDB.
func TestChainMosquittoInfluxDB(t *testing.T) {
	broker := testenv.Mosquitto(t)
	influx := testenv.InfluxDB(t)
	influx.CreateDatabase(t, "aqualoop")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	icfg := store.InfluxConfig{URLs: []string{influx.URL()}, Bucket: "aqualoop/autogen"}
	icfg.Default()
	c := startChain(t, ctx, 120, broker.URL(), &icfg)

	start := ledger0(c.plant.Now())
	from, to := start.Add(3*time.Minute), start.Add(33*time.Minute)
	ind := c.waitIndicators(t, from, to, 90*time.Second)
	c.assertTruth(t, ind, from, to)

	// The raw readings are in InfluxDB: read them back through a separate client.
	st, err := store.OpenInflux(ctx, icfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, m := range []string{"M01", "M12"} {
		rs, err := st.Readings(ctx, "demo", m, from, to)
		if err != nil {
			t.Fatal(err)
		}
		// 30 simulated minutes at 120× are 15 s of polling every 250 ms: about 60 readings.
		if len(rs) < 40 {
			t.Fatalf("%s: %d readings in InfluxDB over 30 simulated minutes, want at least 40", m, len(rs))
		}
		for i, r := range rs {
			if _, ok := r.Point(collector.PointTotal); !ok {
				t.Fatalf("%s reading %d has no total: %+v", m, i, r)
			}
			if i > 0 && r.Seq <= rs[i-1].Seq {
				t.Errorf("%s: sequence not increasing: %d after %d", m, r.Seq, rs[i-1].Seq)
			}
		}
	}
}

// TestDemo runs `aqualoop demo` in-process, exactly as the README's first command does (the
// built-in configs, the embedded mochi broker and SQLite, at the default 60× clock), and checks
// the promise made for it: within 90 seconds of start the API's reuse rate for an interval is
// within 0.5 percentage points of the simulator's ground truth, which the demo serves itself, and
// so is its leakage rate, because the demo's site model accounts for every path of the water.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	type up struct {
		url   string
		plant *sim.Plant
	}
	ready := make(chan up, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo(ctx, demoOptions{
			Listen: "127.0.0.1:0", DataDir: t.TempDir(), TimeScale: 60,
			Logger: testLogger(t), Token: chainToken,
			Ready: func(url string, p *sim.Plant) { ready <- up{url, p} },
		})
	}()
	var u up
	select {
	case u = <-ready:
	case err := <-done:
		t.Fatalf("demo ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("demo not ready within 30 s")
	}
	base := strings.TrimSuffix(u.url, "/")

	var sites []siteSummaryJSON
	getJSON(t, base+"/api/v1/sites", &sites)
	if len(sites) != 1 || sites[0].ID != "demo" || sites[0].Meters != 16 {
		t.Errorf("/api/v1/sites = %+v", sites)
	}

	// One simulated hour: at 60× it is complete about 65 s after start.
	start := ledger0(u.plant.Now())
	from, to := start.Add(2*time.Minute), start.Add(62*time.Minute)
	c := &chain{plant: u.plant, baseURL: base}
	ind := c.waitIndicators(t, from, to, 90*time.Second-time.Since(started))
	t.Logf("indicators complete %.1f s after the demo started", time.Since(started).Seconds())

	var truth sim.Truth
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	getJSON(t, base+"/api/v1/sim/truth?"+q.Encode(), &truth)
	diffPP := 100 * math.Abs(*ind.ReuseRate-truth.ReuseRate)
	t.Logf("demo R = %.4f %%, truth %.4f %%, Δ %.4f pp", 100**ind.ReuseRate, 100*truth.ReuseRate, diffPP)
	if diffPP > 0.5 {
		t.Errorf("demo reuse rate off by %.3f pp (limit 0.5)", diffPP)
	}
	kl, trueKl := ind.Rates.LeakageRate.Value, truth.VL/truth.VI
	if kl == nil || math.Abs(*kl-trueKl) > 0.005 {
		t.Errorf("demo leakage rate Kl %v, truth %.4f %% (limit 0.5 pp)", kl, 100*trueKl)
	} else {
		t.Logf("demo Kl = %.4f %%, truth %.4f %%", 100**kl, 100*trueKl)
	}
	var meters []struct {
		ID      string `json:"id"`
		Missing bool   `json:"missing"`
	}
	getJSON(t, base+"/api/v1/sites/demo/meters", &meters)
	for _, m := range meters {
		if m.Missing {
			t.Errorf("meter %s has no reading on the status API", m.ID)
		}
	}
	for path, want := range map[string]string{
		"/":        "live water balance",
		"/metrics": "aqualoop_ingest_readings_stored_total",
		"/healthz": `"ok": true`,
		// Alerting is wired: its rules (defaults and configs/demo/alerts.yaml) and its gauges.
		"/api/v1/rules":  `"leak_burst_municipal"`,
		"/api/v1/alerts": `"alerts":`,
	} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+chainToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), want) {
			t.Errorf("GET %s: %s, body lacks %q: %.300s", path, resp.Status, want, page)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo returned %v", err)
	}
}

type siteSummaryJSON struct {
	ID     string `json:"id"`
	Meters int    `json:"meters"`
}

// ledger0 is the next whole minute after t.
func ledger0(t time.Time) time.Time { return t.Truncate(time.Minute).Add(time.Minute) }
