package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/collector"
)

// parkSite is a site of 1 000 meters: 10 level-1 intakes, each feeding a main with 99 metered
// level-2 branches to workshops that drain to the sewer.
func parkSite(b *testing.B) (*analytics.Site, []engine.MeterTotal) {
	s := &analytics.Site{ID: "park", Timezone: "Asia/Shanghai"}
	s.Nodes = append(s.Nodes, analytics.Node{ID: "sewer", Type: analytics.Sink})
	var totals []engine.MeterTotal
	for k := range 10 {
		src, main := fmt.Sprintf("src%d", k), fmt.Sprintf("main%d", k)
		parent := fmt.Sprintf("P%d", k)
		s.Nodes = append(s.Nodes, analytics.Node{ID: src, Type: analytics.Source}, analytics.Node{ID: main, Type: analytics.Unit})
		s.Meters = append(s.Meters, analytics.Meter{ID: parent, Level: 1, Interval: time.Minute, VerifiedOn: "2025-06-01", DN: 100})
		s.Flows = append(s.Flows, analytics.Flow{ID: "in" + parent, From: src, To: main, Kind: analytics.Intake, Meter: parent})
		totals = append(totals, engine.MeterTotal{Meter: parent, Volume: 1000, Coverage: 60, Buckets: 60})
		for j := range 99 {
			id, u := fmt.Sprintf("C%d_%d", k, j), fmt.Sprintf("u%d_%d", k, j)
			s.Nodes = append(s.Nodes, analytics.Node{ID: u, Type: analytics.Unit})
			s.Meters = append(s.Meters, analytics.Meter{ID: id, Level: 2, Parent: parent, Interval: time.Minute, VerifiedOn: "2025-06-01", DN: 50})
			s.Flows = append(s.Flows, analytics.Flow{ID: "f" + id, From: main, To: u, Kind: analytics.Internal, Meter: id},
				analytics.Flow{ID: "d" + id, From: u, To: "sewer", Kind: analytics.Discharge})
			totals = append(totals, engine.MeterTotal{Meter: id, Volume: 9.9, Coverage: 60, Buckets: 60})
		}
	}
	s.Default()
	return s, totals
}

const benchRules = `
rules:
  - {name: imbalance_l1, kind: imbalance, period: hour, level: 1}
  - {name: residual, kind: node_residual, period: hour, node: main0}
  - {name: cusum_site, kind: cusum, series: site_residual, mu0: 0, sigma: 1}
`

func benchManager(b *testing.B) (*Manager, *analytics.Site, engine.Snapshot, *clock, *recorder) {
	s, totals := parkSite(b)
	f, err := ParseRules("bench.yaml", []byte(benchRules), []*analytics.Site{s})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 10, 59, 0, 0, time.UTC)
	c := &clock{t: at}
	rec := &recorder{}
	m := newManager(b, openTestDB(b, filepath.Join(b.TempDir(), "bench.db")), s, []*RulesFile{f}, c, rec)
	from := at.Truncate(time.Hour)
	bal := engine.ComputeBalance(s, totals, from, at)
	snap := engine.Snapshot{Site: "park", Boundary: engine.BoundarySite, At: at}
	snap.Hour = engine.Figures{Period: engine.Hour, Indicators: engine.Compute(s, engine.Data{Totals: totals}, from, at), Balance: &bal}
	snap.Day = snap.Hour
	snap.Day.Period = engine.Day
	snap.Day.Indicators.From = at.Add(-10 * time.Hour)
	var rs []collector.Reading
	for _, mt := range s.Meters {
		rs = append(rs, collector.Reading{Site: "park", Meter: mt.ID, Edge: "e1", Time: at, Points: []collector.Point{
			{Name: collector.PointTotal, Value: 100}, {Name: collector.PointFlow, Value: 5}}})
	}
	m.Readings(rs)
	// Warm up: the first evaluation raises what the synthetic park has (its level-2 equipping
	// rate is below its requirement), so the timed loops measure steady state.
	m.Sink(context.Background(), snap)
	m.Tick(context.Background())
	rec.take("")
	return m, s, snap, c, rec
}

// BenchmarkSnapshotRules1000Meters is one evaluation of a 1 000-meter site's figure rules on an
// engine snapshot (defaults plus imbalance, node residual and CUSUM), nothing firing.
func BenchmarkSnapshotRules1000Meters(b *testing.B) {
	m, _, snap, c, _ := benchManager(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		snap.At = snap.At.Add(time.Duration(i%30) * time.Millisecond)
		c.set(snap.At)
		m.Sink(ctx, snap)
	}
}

// BenchmarkLivenessRules1000Meters is one liveness cycle (stale, offline edge, stuck, bad
// quality) over 1 000 meters, nothing firing.
func BenchmarkLivenessRules1000Meters(b *testing.B) {
	m, _, _, _, _ := benchManager(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		m.Tick(ctx)
	}
}

// BenchmarkThresholdToNotify is the alerting share of the time from data that crosses a
// threshold to the notifier: a snapshot whose hour shows a 30 % imbalance arrives and the alert
// (for: 0) reaches Notify, then a clean snapshot resolves it; per op, one crossing and one
// resolution, each written to the state DB before Notify.
func BenchmarkThresholdToNotify(b *testing.B) {
	m, _, snap, c, rec := benchManager(b)
	ctx := context.Background()
	leak := snap
	hb := *snap.Hour.Balance
	hb.Imbalances = append([]engine.Imbalance(nil), hb.Imbalances...)
	hb.Imbalances[0].Epsilon = 0.3
	leak.Hour.Balance = &hb
	b.ResetTimer()
	for i := range b.N {
		at := snap.At.Add(time.Duration(i) * time.Second)
		c.set(at)
		leak.At = at
		m.Sink(ctx, leak)
		snap.At = at.Add(time.Millisecond)
		m.Sink(ctx, snap)
	}
	b.StopTimer()
	if n := len(rec.take("imbalance_l1")); n != 2*b.N {
		b.Fatalf("notified %d times for %d crossings", n, b.N)
	}
}
