package api_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
)

const siteYAML = `
id: s1
park: p
nodes:
  - {id: city, type: source, kind: municipal}
  - {id: loop, type: unit, kind: cooling_indirect}
  - {id: sewer, type: sink, kind: discharge}
  - {id: air, type: sink, kind: consumption}
meters:
  - {id: M1, level: 1}
  - {id: M2, level: 3}
  - {id: M3, level: 2, parent: M1}
flows:
  - {id: intake, from: city, to: loop, kind: intake, meter: M1}
  - {id: circulation, from: loop, to: loop, kind: circulating, meter: M2}
  - {id: blowdown, from: loop, to: sewer, kind: discharge, meter: M3}
  - {id: evaporation, from: loop, to: air, kind: consumption, derived: {add: [intake], sub: [blowdown]}}
plans:
  - {period: month, year: 2026, month: 3, volume: 50000}
`

// now is the API's clock: 2026-03-02 10:30 in Shanghai.
var now = time.Date(2026, 3, 2, 10, 30, 0, 0, time.FixedZone("CST", 8*3600))

type fixture struct {
	opts api.Options
	url  string
	st   *store.SQLite
	eval *engine.Evaluator
}

func start(t *testing.T, withEvaluator bool) *fixture {
	t.Helper()
	var s analytics.Site
	if err := config.Parse("site.yaml", []byte(siteYAML), &s); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Since midnight, each minute 1 m³ in, 9 circulating, 0.7 out.
	midnight := time.Date(2026, 3, 2, 0, 0, 0, 0, now.Location())
	var bs []ledger.Bucket
	for m := midnight; m.Before(now); m = m.Add(time.Minute) {
		bs = append(bs,
			ledger.Bucket{Site: "s1", Meter: "M1", Start: m.UTC(), Volume: 1, Coverage: 1},
			ledger.Bucket{Site: "s1", Meter: "M2", Start: m.UTC(), Volume: 9, Coverage: 1},
			ledger.Bucket{Site: "s1", Meter: "M3", Start: m.UTC(), Volume: 0.7, Coverage: 1})
	}
	if err := st.WriteBuckets(context.Background(), bs); err != nil {
		t.Fatal(err)
	}
	sites := []*analytics.Site{&s}
	e := engine.New(sites, st)
	f := &fixture{st: st}
	o := api.Options{Sites: sites, Engine: e, Inputs: st, Readings: st, Now: func() time.Time { return now }}
	if withEvaluator {
		f.eval = engine.NewEvaluator(e, engine.EvaluatorOptions{Now: o.Now})
		o.Snapshots = f.eval
	}
	srv := httptest.NewServer(api.Handler(o))
	t.Cleanup(srv.Close)
	f.url, f.opts = srv.URL, o
	return f
}

func do(t *testing.T, method, u, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getInto(t *testing.T, u string, v any) {
	t.Helper()
	code, b := do(t, http.MethodGet, u, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestIndicatorsPeriods(t *testing.T) {
	f := start(t, false)
	tests := []struct {
		name   string
		path   string
		wantVi float64
		from   string
	}{
		{"today so far by default", "/api/v1/sites/s1/indicators", 630, "2026-03-02T00:00:00+08:00"},
		{"the current hour", "/api/v1/sites/s1/indicators?period=hour", 30, "2026-03-02T10:00:00+08:00"},
		{"a past hour", "/api/v1/sites/s1/indicators?period=hour&at=2026-03-02T08:15", 60, "2026-03-02T08:00:00+08:00"},
		{"the month so far", "/api/v1/sites/s1/indicators?period=month", 630, "2026-03-01T00:00:00+08:00"},
		{"a range with an unescaped offset", "/api/v1/sites/s1/indicators?from=2026-03-02T09:00:00+08:00&to=2026-03-02T09:10:00+08:00", 10, "2026-03-02T09:00:00+08:00"},
		{"a unit", "/api/v1/sites/s1/units/loop/indicators?period=day", 630, "2026-03-02T00:00:00+08:00"},
		{"the park", "/api/v1/parks/p/indicators?period=year", 630, "2026-01-01T00:00:00+08:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ind engine.Indicators
			getInto(t, f.url+tt.path, &ind)
			if !near(ind.Volumes.Vi, tt.wantVi) || ind.ReuseRate == nil || !near(*ind.ReuseRate, 0.9) {
				t.Errorf("Vi %v R %v, want %v and 0.9", ind.Volumes.Vi, ind.ReuseRate, tt.wantVi)
			}
			if from, _ := time.Parse(time.RFC3339, tt.from); !ind.From.Equal(from) {
				t.Errorf("from %v, want %v", ind.From, from)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	f := start(t, false)
	tests := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/sites/nope/indicators", "", 404},
		{"GET", "/api/v1/sites/s1/units/nope/indicators", "", 404},
		{"GET", "/api/v1/sites/s1/units/city/indicators", "", 404}, // a source is not a unit
		{"GET", "/api/v1/parks/nope/indicators", "", 404},
		{"GET", "/api/v1/sites/s1/indicators?period=week", "", 400},
		{"GET", "/api/v1/sites/s1/indicators?period=day&from=2026-03-01", "", 400},
		{"GET", "/api/v1/sites/s1/indicators?from=yesterday", "", 400},
		{"GET", "/api/v1/sites/s1/indicators?from=2026-03-02&to=2026-03-01", "", 400},
		{"GET", "/api/v1/sites/s1/plans?at=soon", "", 400},
		{"GET", "/api/v1/sites/s1/snapshot", "", 404}, // no evaluator
		{"PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-01", "steam": 1}`, 400},
		{"PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-02"}`, 400},
		{"PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-02", "product": 3}`, 400},
		{"PUT", "/api/v1/sites/s1/inputs", `not json`, 400},
		{"PUT", "/api/v1/sites/s1/inputs", `[]`, 400},
		{"PUT", "/api/v1/sites/s1/inputs", `[{"from": "2026-03", "to": "2026-04", "steam": 1}, {"from": "2026-03-15", "to": "2026-03-16", "steam": 1}]`, 400},
		{"PUT", "/api/v1/sites/nope/inputs", `{"from": "2026-03-01", "to": "2026-03-02", "steam": 1}`, 404},
	}
	for _, tt := range tests {
		code, b := do(t, tt.method, f.url+tt.path, tt.body)
		if code != tt.want {
			t.Errorf("%s %s %s: %d %s, want %d", tt.method, tt.path, tt.body, code, b, tt.want)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Message == "" || e.Error.Code == "" {
			t.Errorf("%s %s: body %s has no error code and message", tt.method, tt.path, b)
		}
	}
}

func TestInputs(t *testing.T) {
	f := start(t, false)
	// A month in the site's time zone, then a day that overlaps it: refused.
	code, b := do(t, http.MethodPut, f.url+"/api/v1/sites/s1/inputs",
		`{"from": "2026-03", "to": "2026-04", "product": 3100, "product_unit": "t", "output_value": 620, "steam": 1240}`)
	if code != http.StatusOK {
		t.Fatalf("PUT month: %d %s", code, b)
	}
	code, b = do(t, http.MethodPost, f.url+"/api/v1/sites/s1/inputs", `{"from": "2026-03-02", "to": "2026-03-03", "steam": 40}`)
	if code != http.StatusConflict || !strings.Contains(string(b), "overlaps") {
		t.Errorf("overlapping PUT: %d %s, want 409", code, b)
	}
	// The same start replaces it.
	code, b = do(t, http.MethodPut, f.url+"/api/v1/sites/s1/inputs",
		`[{"from": "2026-03-01T00:00:00+08:00", "to": "2026-04-01T00:00:00+08:00", "product": 3100, "product_unit": "t", "output_value": 620, "steam": 3100}]`)
	if code != http.StatusOK {
		t.Fatalf("PUT replacement: %d %s", code, b)
	}
	var ins []engine.Input
	getInto(t, f.url+"/api/v1/sites/s1/inputs?period=month", &ins)
	if len(ins) != 1 || *ins[0].Steam != 3100 || ins[0].ProductUnit != "t" {
		t.Fatalf("inputs %+v, want the replaced month", ins)
	}
	// Today so far is 10.5 of the month's 744 hours.
	var ind engine.Indicators
	getInto(t, f.url+"/api/v1/sites/s1/indicators", &ind)
	share := 10.5 / 744
	if ind.Production == nil || ind.Production.Steam.Value == nil || !near(*ind.Production.Steam.Value, 3100*share) {
		t.Fatalf("production %+v, want steam %v", ind.Production, 3100*share)
	}
	if v := ind.Rates.IntakePerProduct.Value; v == nil || !near(*v, 630/(3100*share)) || ind.Rates.IntakePerProduct.Unit != "m³/t" {
		t.Errorf("intake per product %+v, want %v m³/t", ind.Rates.IntakePerProduct, 630/(3100*share))
	}
	if v := ind.Rates.IntakePer10kCNY.Value; v == nil || !near(*v, 630/(620*share)) {
		t.Errorf("intake per 10⁴ CNY %+v", ind.Rates.IntakePer10kCNY)
	}
}

func TestBalanceAndPlans(t *testing.T) {
	f := start(t, false)
	var b engine.Balance
	getInto(t, f.url+"/api/v1/sites/s1/balance?period=day", &b)
	if len(b.Nodes) != 4 || len(b.Flows) != 4 || len(b.Imbalances) != 1 {
		t.Fatalf("balance: %d nodes, %d flows, %d imbalances", len(b.Nodes), len(b.Flows), len(b.Imbalances))
	}
	// M3 (0.7 a minute) is M1's (1 a minute) only child: ε = 0.3.
	if im := b.Imbalances[0]; im.Parent != "M1" || !near(im.Epsilon, 0.3) || im.Status != "alarm" {
		t.Errorf("imbalance %+v, want M1 at 0.3 in alarm", im)
	}
	if !near(b.Whole.Vl, 0) || !b.Whole.ClosureOK {
		t.Errorf("site balance %+v", b.Whole)
	}
	var ps []engine.PlanStatus
	getInto(t, f.url+"/api/v1/sites/s1/plans?at="+url.QueryEscape(now.Format(time.RFC3339)), &ps)
	// March so far: the 1st has no data, 630 m³ today over 10.5 h, 34.5 h of 744 elapsed. The
	// projection extrapolates the measured pace (630 m³ in the 10.5 covered hours), not 630 m³
	// spread over 34.5 hours as if the 1st had taken no water.
	if len(ps) != 1 || !near(ps[0].Used, 630) || !near(ps[0].ProjectionLinear, 630/10.5*744) || ps[0].ProjectionLastYear != nil {
		t.Errorf("plans %+v", ps)
	}
}

func TestSnapshot(t *testing.T) {
	f := start(t, true)
	code, _ := do(t, http.MethodGet, f.url+"/api/v1/sites/s1/snapshot", "")
	if code != http.StatusNotFound {
		t.Errorf("snapshot before the evaluator ran: %d, want 404", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.eval.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var snap engine.Snapshot
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, b := do(t, http.MethodGet, f.url+"/api/v1/sites/s1/snapshot", "")
		if code == http.StatusOK {
			if err := json.Unmarshal(b, &snap); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !near(snap.Day.Indicators.Volumes.Vi, 630) || len(snap.Plans) != 1 || snap.Day.Balance == nil {
		t.Errorf("snapshot day Vi %v, %d plans, balance %v", snap.Day.Indicators.Volumes.Vi, len(snap.Plans), snap.Day.Balance != nil)
	}
	var park engine.Snapshot
	for deadline := time.Now().Add(10 * time.Second); ; {
		if code, b := do(t, http.MethodGet, f.url+"/api/v1/parks/p/snapshot", ""); code == http.StatusOK {
			if err := json.Unmarshal(b, &park); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no park snapshot")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if park.Boundary != "park" || !near(park.Year.Indicators.Volumes.Vr, 5670) {
		t.Errorf("park snapshot %s Vr %v", park.Boundary, park.Year.Indicators.Volumes.Vr)
	}
	var parks []struct {
		ID    string
		Sites []string
	}
	getInto(t, f.url+"/api/v1/parks", &parks)
	if len(parks) != 1 || parks[0].ID != "p" || len(parks[0].Sites) != 1 {
		t.Errorf("parks %+v", parks)
	}
}
