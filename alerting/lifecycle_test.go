package alerting

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/balance"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/collector"
)

// clock is a settable platform clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// recorder collects what Notify receives.
type recorder struct {
	mu    sync.Mutex
	calls [][]Alert
}

func (r *recorder) notify(_ context.Context, as []Alert) {
	r.mu.Lock()
	r.calls = append(r.calls, as)
	r.mu.Unlock()
}

// take returns and forgets the alerts received so far with the given alertname ("" for all).
func (r *recorder) take(name string) []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Alert
	for _, c := range r.calls {
		for _, a := range c {
			if name == "" || a.Labels["alertname"] == name {
				out = append(out, a)
			}
		}
	}
	r.calls = nil
	return out
}

func openTestDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func rulesOf(t testing.TB, site *analytics.Site, yaml string) []*RulesFile {
	t.Helper()
	f, err := ParseRules("test-rules.yaml", []byte(yaml), []*analytics.Site{site})
	if err != nil {
		t.Fatal(err)
	}
	return []*RulesFile{f}
}

func newManager(t testing.TB, db *sql.DB, site *analytics.Site, files []*RulesFile, c *clock, rec *recorder) *Manager {
	t.Helper()
	m, err := New(context.Background(), Options{Sites: []*analytics.Site{site}, RulesFiles: files, DB: db, Now: c.now,
		Notify: rec.notify, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// hourSnap is a snapshot whose hour shows one level-1 imbalance of M01.
func hourSnap(at time.Time, eps float64) engine.Snapshot {
	from := at.Truncate(time.Hour)
	b := &engine.Balance{Imbalances: []engine.Imbalance{{Parent: "M01", Level: 1, ParentVolume: 100, ChildrenVolume: 100 * (1 - eps),
		Epsilon: eps, Status: balance.StatusOK, Children: []string{"M04", "M05"}}}}
	s := engine.Snapshot{Site: "demo", Boundary: engine.BoundarySite, At: at}
	s.Hour = engine.Figures{Period: engine.Hour, Indicators: engine.Indicators{From: from, To: at}, Balance: b}
	return s
}

const imbalanceRule = `
site: demo
rules:
  - name: leak_m01
    kind: imbalance
    period: hour
    level: 1
    threshold: 0.05
    clear: 0.03
    critical: 0.10
    for: 10m
`

// An imbalance goes pending, fires after for:, holds inside the hysteresis band, resolves below
// clear and comes back as a new alert: Notify hears each change once.
func TestImbalanceLifecycleWithHysteresis(t *testing.T) {
	site := demoSite(t)
	t0 := time.Date(2026, 3, 2, 10, 25, 0, 0, time.UTC)
	c := &clock{t: t0}
	rec := &recorder{}
	db := openTestDB(t, filepath.Join(t.TempDir(), "state.db"))
	m := newManager(t, db, site, rulesOf(t, site, imbalanceRule), c, rec)
	ctx := context.Background()
	steps := []struct {
		min      int
		eps      float64
		state    string // of leak_m01 after the step; "" none
		notified string // status handed to Notify at this step; "" none
		severity string
	}{
		{0, 0.06, StatePending, "", "warning"},
		{5, 0.07, StatePending, "", "warning"},
		{10, 0.06, StateFiring, "firing", "warning"},
		{12, 0.045, StateFiring, "", "warning"}, // band: stays firing, no flapping
		{14, 0.055, StateFiring, "", "warning"},
		{16, 0.04, StateFiring, "", "warning"},
		{18, 0.02, "", "resolved", "warning"},
		{20, 0.12, StatePending, "", "critical"},
		{25, 0.02, "", "", ""}, // pending never fired: dropped silently
	}
	for _, st := range steps {
		at := t0.Add(time.Duration(st.min) * time.Minute)
		c.set(at)
		m.Sink(ctx, hourSnap(at, st.eps))
		vs, err := m.Alerts(ctx, Filter{Site: "demo"})
		if err != nil {
			t.Fatal(err)
		}
		var got *View
		for i := range vs {
			if vs[i].Rule == "leak_m01" {
				got = &vs[i]
			}
		}
		switch {
		case st.state == "" && got != nil:
			t.Errorf("+%dm ε=%g: alert %s still %s", st.min, st.eps, got.ID, got.State)
		case st.state != "" && (got == nil || got.State != st.state || got.Severity != st.severity):
			t.Errorf("+%dm ε=%g: got %+v, want state %s severity %s", st.min, st.eps, got, st.state, st.severity)
		}
		n := rec.take("leak_m01")
		if st.notified == "" && len(n) > 0 || st.notified != "" && (len(n) != 1 || n[0].Status != st.notified) {
			t.Errorf("+%dm ε=%g: notified %+v, want %q", st.min, st.eps, n, st.notified)
		}
		if st.notified == "firing" && !n[0].StartsAt.Equal(t0) {
			t.Errorf("startsAt = %s, want when the condition began %s", n[0].StartsAt, t0)
		}
		if st.notified == "resolved" && !n[0].EndsAt.Equal(at) {
			t.Errorf("endsAt = %s, want %s", n[0].EndsAt, at)
		}
	}
	hist, err := m.Alerts(ctx, Filter{State: StateResolved})
	if err != nil || len(hist) != 1 || hist[0].Labels["meter"] != "M01" || hist[0].Labels["level"] != "1" {
		t.Errorf("history = %+v (%v), want the one resolved alert of M01", hist, err)
	}
}

// A restart (the state DB reopened by a new manager) keeps every alert's state, its
// acknowledgement and its for: clock, and Notify is not called again for what was already sent;
// a still-firing alert is resent only after Resend, as Alertmanager expects.
func TestRestartKeepsStateAndSendsNoDuplicate(t *testing.T) {
	site := demoSite(t)
	t0 := time.Date(2026, 3, 2, 10, 25, 0, 0, time.UTC)
	c := &clock{t: t0}
	rec := &recorder{}
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	db1 := openTestDB(t, path)
	m1 := newManager(t, db1, site, rulesOf(t, site, imbalanceRule), c, rec)
	m1.Sink(ctx, hourSnap(t0, 0.06))
	c.add(11 * time.Minute)
	m1.Sink(ctx, hourSnap(c.now(), 0.06))
	if n := rec.take("leak_m01"); len(n) != 1 {
		t.Fatalf("first run notified %d times", len(n))
	}
	vs, _ := m1.Alerts(ctx, Filter{State: StateFiring})
	id := vs[0].ID
	if _, err := m1.Act(ctx, "ack", Action{ID: mustID(t, id), Who: "li.wei", Text: "valve pit checked"}); err != nil {
		t.Fatal(err)
	}
	db1.Close()

	db2 := openTestDB(t, path)
	m2 := newManager(t, db2, site, rulesOf(t, site, imbalanceRule), c, rec)
	vs, err := m2.Alerts(ctx, Filter{})
	if err != nil || len(vs) == 0 {
		t.Fatalf("after restart: %v, %v", vs, err)
	}
	var v *View
	for i := range vs {
		if vs[i].ID == id {
			v = &vs[i]
		}
	}
	if v == nil || v.State != StateAcknowledged || v.AcknowledgedBy != "li.wei" || v.AckComment != "valve pit checked" || !v.StartsAt.Equal(t0) {
		t.Fatalf("after restart alert %s = %+v", id, v)
	}
	c.add(10 * time.Second)
	m2.Sink(ctx, hourSnap(c.now(), 0.06))
	m2.Tick(ctx)
	if n := rec.take("leak_m01"); len(n) != 0 {
		t.Errorf("restart re-notified %+v", n)
	}
	c.add(time.Minute)
	m2.Tick(ctx)
	if n := rec.take("leak_m01"); len(n) != 1 || n[0].Status != "firing" || !n[0].StartsAt.Equal(t0) {
		t.Errorf("resend after Resend: %+v", n)
	}
	// Resolved state also survives: resolve, restart, no second resolved notification.
	c.add(time.Minute)
	m2.Sink(ctx, hourSnap(c.now(), 0.01))
	if n := rec.take("leak_m01"); len(n) != 1 || n[0].Status != "resolved" {
		t.Fatalf("resolution: %+v", n)
	}
	db2.Close()
	db3 := openTestDB(t, path)
	m3 := newManager(t, db3, site, rulesOf(t, site, imbalanceRule), c, rec)
	m3.Sink(ctx, hourSnap(c.now(), 0.01))
	m3.Tick(ctx)
	if n := rec.take("leak_m01"); len(n) != 0 {
		t.Errorf("restart after resolution notified %+v", n)
	}
}

// Liveness: a meter with no reading for 3 intervals goes stale (edge label from its readings);
// its edge going offline inhibits it; a reading resolves it.
func TestStaleEdgeOfflineAndInhibition(t *testing.T) {
	site := demoSite(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	rec := &recorder{}
	m := newManager(t, openTestDB(t, filepath.Join(t.TempDir(), "s.db")), site, nil, c, rec)
	ctx := context.Background()
	read := func(meter string, total, flow float64) {
		m.Readings([]collector.Reading{{Site: "demo", Meter: meter, Edge: "edge-1", Time: c.now(), Points: []collector.Point{
			{Name: collector.PointTotal, Value: total}, {Name: collector.PointFlow, Value: flow}}}})
	}
	for _, mt := range site.Meters {
		read(mt.ID, 100, 10)
	}
	c.add(3 * time.Minute)
	m.Tick(ctx)
	if n := rec.take("meter_stale"); len(n) != 0 {
		t.Fatalf("stale at exactly 3 intervals: %+v", n)
	}
	for _, mt := range site.Meters {
		if mt.ID != "M07" {
			read(mt.ID, 101, 10)
		}
	}
	c.add(10 * time.Second)
	m.Tick(ctx)
	n := rec.take("meter_stale")
	if len(n) != 1 || n[0].Labels["meter"] != "M07" || n[0].Labels["edge"] != "edge-1" || !n[0].StartsAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("stale M07: %+v", n)
	}
	m.Status("demo", "edge-1", false, c.now())
	c.add(61 * time.Second)
	m.Tick(ctx)
	if n := rec.take("edge_offline"); len(n) != 1 || n[0].Labels["edge"] != "edge-1" || n[0].Labels["severity"] != "critical" {
		t.Fatalf("edge offline: %+v", n)
	}
	vs, _ := m.Alerts(ctx, Filter{Site: "demo"})
	for _, v := range vs {
		if v.Rule == "meter_stale" && !v.Inhibited {
			t.Errorf("stale %s not inhibited by its offline edge", v.Labels["meter"])
		}
	}
	c.add(2 * time.Minute)
	m.Tick(ctx)
	if n := rec.take("meter_stale"); len(n) != 0 {
		t.Errorf("inhibited stale alerts were resent: %d", len(n))
	}
	m.Status("demo", "edge-1", true, c.now())
	for _, mt := range site.Meters {
		read(mt.ID, 102, 10)
	}
	m.Tick(ctx)
	if n := rec.take("meter_stale"); len(n) == 0 || n[0].Status != "resolved" {
		t.Errorf("stale not resolved after readings: %+v", n)
	}
}

// A totalizer that stands still while its own flow shows water is stuck after 5 readings; it
// resolves when it moves.
func TestStuckTotalizer(t *testing.T) {
	site := demoSite(t)
	c := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	m := newManager(t, openTestDB(t, filepath.Join(t.TempDir(), "s.db")), site, nil, c, rec)
	ctx := context.Background()
	read := func(total, flow float64) {
		m.Readings([]collector.Reading{{Site: "demo", Meter: "M08", Edge: "e", Points: []collector.Point{
			{Name: collector.PointTotal, Value: total}, {Name: collector.PointFlow, Value: flow}}}})
		c.add(time.Minute)
		m.Tick(ctx)
	}
	read(50, 0) // a standing meter at zero flow is not stuck
	for range 6 {
		read(50, 0)
	}
	if n := rec.take("meter_stuck"); len(n) != 0 {
		t.Fatalf("no flow, yet stuck: %+v", n)
	}
	for i := range 5 {
		read(50, 12)
		if n := rec.take("meter_stuck"); (len(n) == 1) != (i == 4) {
			t.Fatalf("reading %d with flow: notified %+v", i+1, n)
		}
	}
	read(50.2, 12)
	if n := rec.take("meter_stuck"); len(n) != 1 || n[0].Status != "resolved" {
		t.Errorf("moving again: %+v", n)
	}
}

func mustID(t testing.TB, s string) int64 {
	t.Helper()
	var id int64
	for _, c := range s {
		id = id*10 + int64(c-'0')
	}
	return id
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// A CUSUM's running sum survives a restart: S⁺ reaches 5.0 (not above h = 5) before it, and the
// next closed hour after it takes the sum to 7.5 and fires; a detector starting from zero would
// be at 2.5.
func TestDetectorStateSurvivesRestart(t *testing.T) {
	site := demoSite(t)
	rules := `
site: demo
rules:
  - {name: cusum_kl, kind: cusum, series: site_leakage_rate, mu0: 0, sigma: 1, k: 0.5, h: 5}
`
	t0 := time.Date(2026, 3, 2, 0, 59, 0, 0, time.UTC)
	c := &clock{t: t0}
	rec := &recorder{}
	path := filepath.Join(t.TempDir(), "d.db")
	ctx := context.Background()
	snap := func(h int, v float64) engine.Snapshot {
		at := t0.Add(time.Duration(h) * time.Hour)
		s := engine.Snapshot{Site: "demo", Boundary: engine.BoundarySite, At: at}
		s.Hour = engine.Figures{Period: engine.Hour, Indicators: engine.Indicators{From: at.Truncate(time.Hour)},
			Balance: &engine.Balance{Whole: engine.SiteBalance{Vi: 100, Vl: 100 * v}}}
		return s
	}
	db1 := openTestDB(t, path)
	m1 := newManager(t, db1, site, rulesOf(t, site, rules), c, rec)
	for h, v := range []float64{0, 0, 3, 3, 3} {
		m1.Sink(ctx, snap(h, v))
	}
	if n := rec.take("cusum_kl"); len(n) != 0 {
		t.Fatalf("fired before the restart: %+v", n)
	}
	db1.Close()
	m2 := newManager(t, openTestDB(t, path), site, rulesOf(t, site, rules), c, rec)
	m2.Sink(ctx, snap(5, 0))
	n := rec.take("cusum_kl")
	if len(n) != 1 || n[0].Status != "firing" || n[0].Annotations["description"] == "" {
		t.Fatalf("after restart: %+v", n)
	}
	vs, _ := m2.Alerts(ctx, Filter{State: StateFiring})
	for _, v := range vs {
		if v.Rule == "cusum_kl" && v.Value != 7.5 {
			t.Errorf("S⁺ = %v, want 7.5", v.Value)
		}
	}
}
