package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
)

// loopSite is worked example 1's model: intake M1 into an indirect cooling loop circulating on
// M2, blowdown on M3, evaporation derived.
const loopSite = `
id: ev
park: pk
indicators:
  benchmark: {sector: test, year: 2021, reuse_rate: 0.95, source: a test}
nodes:
  - {id: city, type: source, kind: municipal}
  - {id: loop, type: unit, kind: cooling_indirect}
  - {id: sewer, type: sink, kind: discharge}
  - {id: air, type: sink, kind: consumption}
meters:
  - {id: M1, level: 1}
  - {id: M2, level: 3}
  - {id: M3, level: 1}
flows:
  - {id: intake, from: city, to: loop, kind: intake, meter: M1}
  - {id: circulation, from: loop, to: loop, kind: circulating, meter: M2}
  - {id: blowdown, from: loop, to: sewer, kind: discharge, meter: M3}
  - {id: evaporation, from: loop, to: air, kind: consumption, derived: {add: [intake], sub: [blowdown]}}
plans:
  - {period: year, year: 2000, volume: 1000000}
`

func parseSite(t *testing.T, src string) *analytics.Site {
	t.Helper()
	var s analytics.Site
	if err := config.Parse("site.yaml", []byte(src), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// minute returns the buckets of one minute of the loop site: 1 m³ of intake, 9 of circulation
// and 0.7 of blowdown (R = 90 %).
func minute(site string, at time.Time) []ledger.Bucket {
	at = ledger.Align(at)
	return []ledger.Bucket{
		{Site: site, Meter: "M1", Start: at, Volume: 1, Coverage: 1},
		{Site: site, Meter: "M2", Start: at, Volume: 9, Coverage: 1},
		{Site: site, Meter: "M3", Start: at, Volume: 0.7, Coverage: 1},
	}
}

// sink collects snapshots.
type sink struct {
	mu    sync.Mutex
	snaps []engine.Snapshot
}

func (s *sink) put(_ context.Context, snap engine.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps = append(s.snaps, snap)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.snaps)
}

// running is an evaluator running in a synctest bubble on a real SQLite store.
type running struct {
	st   *store.SQLite
	e    *engine.Engine
	ev   *engine.Evaluator
	sink *sink
	stop func()
}

func startEvaluator(t *testing.T, sites []*analytics.Site, o engine.EvaluatorOptions) *running {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{st: st, e: engine.New(sites, st), sink: &sink{}}
	o.Results, o.Sink = st, r.sink.put
	r.ev = engine.NewEvaluator(r.e, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ev.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	}
	return r
}

// add stores buckets and tells the evaluator, as ingest does.
func (r *running) add(t *testing.T, bs []ledger.Bucket) {
	t.Helper()
	if err := r.st.WriteBuckets(context.Background(), bs); err != nil {
		t.Fatal(err)
	}
	r.ev.Notify(bs)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestEvaluatorSnapshotWithin10s: data arrives, and within 10 s of the injected clock the
// snapshot, the stored results and the sink all show it.
func TestEvaluatorSnapshotWithin10s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := parseSite(t, loopSite)
		r := startEvaluator(t, []*analytics.Site{s}, engine.EvaluatorOptions{Now: time.Now})
		defer r.stop()
		synctest.Wait()
		first, ok := r.ev.Snapshot("ev")
		if !ok {
			t.Fatal("no snapshot after start")
		}
		if first.Hour.Indicators.ReuseRate != nil {
			t.Errorf("reuse rate %v without data", *first.Hour.Indicators.ReuseRate)
		}

		time.Sleep(5 * time.Minute)
		arrived := time.Now()
		var bs []ledger.Bucket
		for i := 5; i >= 1; i-- {
			bs = append(bs, minute("ev", arrived.Add(-time.Duration(i)*time.Minute))...)
		}
		r.add(t, bs)
		time.Sleep(10 * time.Second)
		synctest.Wait()

		snap, _ := r.ev.Snapshot("ev")
		if snap.At.Before(arrived) || snap.At.After(arrived.Add(10*time.Second)) {
			t.Fatalf("snapshot at %v, want within 10 s after the data arrived at %v", snap.At, arrived)
		}
		hour := snap.Hour.Indicators
		if !near(hour.Volumes.Vi, 5) || hour.ReuseRate == nil || !near(*hour.ReuseRate, 0.9) {
			t.Errorf("hour: Vi %v, R %v; want 5 m³ and 0.9", hour.Volumes.Vi, hour.ReuseRate)
		}
		for _, f := range snap.Periods() {
			if !near(f.Indicators.Volumes.Vr, 45) {
				t.Errorf("%s: Vr %v, want 45", f.Period, f.Indicators.Volumes.Vr)
			}
		}
		if snap.Day.Balance == nil || !snap.Day.Balance.Whole.ClosureOK {
			t.Errorf("day balance %+v, want the closure check to pass", snap.Day.Balance)
		}
		if len(snap.Plans) != 1 || !near(snap.Plans[0].Used, 5) {
			t.Errorf("plans %+v, want the year plan with 5 m³ used", snap.Plans)
		}

		// The results Grafana charts, at the period's start.
		hourStart, _ := engine.Hour.Span(arrived, s.Location())
		res, err := r.st.Results(context.Background(), "ev", "site", "hour", hourStart, hourStart.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !near(res[0].Fields["r"], 0.9) || !near(res[0].Fields["vi"], 5) || res[0].Fields["closure_ok"] != 1 {
			t.Errorf("hour results %+v", res)
		}
		res, err = r.st.Results(context.Background(), "ev", "unit:loop", "year", time.Time{}, arrived)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !near(res[0].Fields["rc"], 0.9) {
			t.Errorf("unit results %+v, want the loop's Rc", res)
		}
		res, err = r.st.Results(context.Background(), "pk", "park", "day", time.Time{}, arrived)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !near(res[0].Fields["vr"], 45) {
			t.Errorf("park results %+v", res)
		}
		if park, ok := r.ev.Snapshot("pk"); !ok || park.Boundary != "park" || !near(park.Month.Indicators.Volumes.Vi, 5) {
			t.Errorf("park snapshot %v %+v", ok, park.Month.Indicators.Volumes)
		}
		if r.sink.count() < 2 {
			t.Errorf("the sink saw %d snapshots, want the first and the one with data", r.sink.count())
		}
	})
}

// TestEvaluatorKeepsUpWithSteadyData: data every 250 ms never lets the debounce settle, yet a
// snapshot follows the data within MaxDelay.
func TestEvaluatorKeepsUpWithSteadyData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := parseSite(t, loopSite)
		r := startEvaluator(t, []*analytics.Site{s}, engine.EvaluatorOptions{Now: time.Now, Debounce: time.Second, MaxDelay: 3 * time.Second})
		defer r.stop()
		synctest.Wait()
		start := time.Now()
		var lastMinute time.Time
		for time.Since(start) < 20*time.Second {
			time.Sleep(250 * time.Millisecond)
			if m := ledger.Align(time.Now()); !m.Equal(lastMinute) {
				r.add(t, minute("ev", m))
				lastMinute = m
			} else {
				r.ev.Notify(minute("ev", m)) // rewritten bucket, as a later reading in the minute does
			}
			synctest.Wait()
			snap, _ := r.ev.Snapshot("ev")
			if lag := time.Since(snap.At); lag > 3*time.Second+250*time.Millisecond {
				t.Fatalf("at %v the snapshot is %v old with data arriving every 250 ms", time.Since(start), lag)
			}
		}
	})
}

// TestEvaluatorMatchesEngine runs three days with late data into earlier hours, days and the
// previous month, and checks that the evaluator's cached sums give the same figures as the
// engine computing each period from scratch, and that the rewritten closed periods are stored.
func TestEvaluatorMatchesEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := parseSite(t, loopSite)
		// The bubble's clock starts at 2000-01-01 08:00 in Shanghai; run from late on 31 January.
		loc := s.Location()
		time.Sleep(time.Until(time.Date(2000, 1, 31, 22, 0, 0, 0, loc)))
		r := startEvaluator(t, []*analytics.Site{s}, engine.EvaluatorOptions{Now: time.Now, Interval: 10 * time.Minute})
		defer r.stop()
		ctx := context.Background()
		end := time.Date(2000, 2, 3, 5, 0, 0, 0, loc)
		var late []ledger.Bucket
		for step := 0; time.Now().Before(end); step++ {
			// Twenty minutes at a time, to keep the test short; the evaluator runs once per step.
			time.Sleep(20 * time.Minute)
			var bs []ledger.Bucket
			for i := 20; i >= 1; i-- {
				bs = append(bs, minute("ev", time.Now().Add(-time.Duration(i)*time.Minute))...)
			}
			// Every 7 hours, a reading held back by an outage arrives for a minute 30 hours ago.
			if step%21 == 20 {
				for _, b := range minute("ev", time.Now().Add(-30*time.Hour)) {
					b.Volume *= 3
					late = append(late, b)
					bs = append(bs, b)
				}
			}
			r.add(t, bs)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		snap, ok := r.ev.Snapshot("ev")
		if !ok {
			t.Fatal("no snapshot")
		}
		if len(late) == 0 {
			t.Fatal("the test sent no late data")
		}
		for _, f := range snap.Periods() {
			want, err := r.e.Indicators(ctx, "ev", f.Indicators.From, f.Indicators.To)
			if err != nil {
				t.Fatal(err)
			}
			got := f.Indicators
			if !near(got.Volumes.Vi, want.Volumes.Vi) || !near(got.Volumes.Vr, want.Volumes.Vr) || !near(got.Coverage, want.Coverage) {
				t.Errorf("%s [%v, %v): evaluator Vi %v Vr %v coverage %v, engine Vi %v Vr %v coverage %v", f.Period, got.From, got.To,
					got.Volumes.Vi, got.Volumes.Vr, got.Coverage, want.Volumes.Vi, want.Volumes.Vr, want.Coverage)
			}
		}
		// Every closed hour and day that late data changed has its result rewritten.
		for _, b := range late[len(late)-6:] {
			for _, p := range []engine.Period{engine.Hour, engine.Day} {
				from, to := p.Span(b.Start, loc)
				res, err := r.st.Results(ctx, "ev", "site", string(p), from, from.Add(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				want, err := r.e.Indicators(ctx, "ev", from, to)
				if err != nil {
					t.Fatal(err)
				}
				if len(res) != 1 || !near(res[0].Fields["vi"], want.Volumes.Vi) {
					t.Errorf("%s result at %v = %+v, want vi %v", p, from, res, want.Volumes.Vi)
				}
			}
		}
		// January's month result took the late data of 31 January.
		jan := time.Date(2000, 1, 1, 0, 0, 0, 0, loc)
		res, err := r.st.Results(ctx, "ev", "site", "month", jan, jan.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want, err := r.e.Indicators(ctx, "ev", jan, jan.AddDate(0, 1, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || !near(res[0].Fields["vi"], want.Volumes.Vi) {
			t.Errorf("January result %+v, want vi %v", res, want.Volumes.Vi)
		}
	})
}

// TestLogSink logs a reuse rate below the site's benchmark once, and its recovery.
func TestLogSink(t *testing.T) {
	s := parseSite(t, loopSite)
	e := engine.New([]*analytics.Site{s}, nil)
	var buf bytes.Buffer
	logSink := e.LogSink(slog.New(slog.NewTextHandler(&buf, nil)))
	snap := func(r float64) engine.Snapshot {
		return engine.Snapshot{Site: "ev", Boundary: "site", Day: engine.Figures{Indicators: engine.Indicators{ReuseRate: &r, Declared: "reuse_rate"}}}
	}
	for _, r := range []float64{0.96, 0.9, 0.91, 0.97} {
		logSink(context.Background(), snap(r))
	}
	out := buf.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "reuse_rate=0.9 ") || strings.Count(out, "back above") != 1 {
		t.Errorf("log:\n%s\nwant one warning at 0.9 and one recovery", out)
	}
}
