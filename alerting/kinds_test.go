package alerting

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

func fp(v float64) *float64 { return &v }

// Each figure and flag kind on a snapshot built by hand: what fires, with which labels and
// severity, and what stays quiet.
func TestKindsOnSnapshots(t *testing.T) {
	site := demoSite(t)
	at := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	rules := `
site: demo
rules:
  - {name: resid, kind: node_residual, period: day, threshold: 0.1, clear: 0.08, critical: 0.3}
  - {name: flowing, kind: parent_flowing, period: hour, level: 1}
  - {name: ipp, kind: intake_per_product, period: month, general: 5, advanced: 3}
  - {name: reuse_target, kind: reuse_rate, period: day, threshold: 0.95, clear: 0.96}
`
	c := &clock{t: at}
	rec := &recorder{}
	m := newManager(t, openTestDB(t, filepath.Join(t.TempDir(), "k.db")), site, rulesOf(t, site, rules), c, rec)
	ctx := context.Background()
	m.Buckets([]ledger.Bucket{
		{Site: "demo", Meter: "M08", Start: at.Add(-3 * time.Hour), Flags: ledger.Spike},
		{Site: "demo", Meter: "M08", Start: at.Add(-2 * time.Hour), Flags: ledger.Spike},
		{Site: "demo", Meter: "M08", Start: at.Add(-time.Hour), Flags: ledger.Spike | ledger.Clamped},
		{Site: "demo", Meter: "M09", Start: at.Add(-time.Hour), Flags: ledger.Reset},
		{Site: "demo", Meter: "M09", Start: at.Add(-48 * time.Hour), Flags: ledger.Fault},
	})
	hourFrom, dayFrom := at.Add(-30*time.Minute), at.Add(-12*time.Hour)
	monthFrom := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	snap := engine.Snapshot{Site: "demo", Boundary: engine.BoundarySite, At: at}
	snap.Hour = engine.Figures{Period: engine.Hour, Indicators: engine.Indicators{From: hourFrom, Flows: []engine.FlowVolume{
		{Meter: "M01", Coverage: 1}, {Meter: "M07", Coverage: 0.5}}},
		Balance: &engine.Balance{Imbalances: []engine.Imbalance{
			{Parent: "M02", Level: 1, ParentVolume: 10, ChildrenVolume: 0.05, Epsilon: 0.995, Status: "alarm", Children: []string{"M07", "M11"}},
		}}}
	r := 0.93
	snap.Day = engine.Figures{Period: engine.Day, Indicators: engine.Indicators{From: dayFrom, ReuseRate: &r, Declared: "reuse_rate",
		Rates: engine.Rates{ReuseRate: engine.Indicator{Coverage: 0.99}}},
		Balance: &engine.Balance{Coverage: 0.98,
			Imbalances: []engine.Imbalance{{Parent: "M01", Level: 1, ParentVolume: 1000, ChildrenVolume: 1100, Epsilon: -0.1, Status: "meter_fault", Children: []string{"M04", "M05"}}},
			Nodes:      []engine.Node{{ID: "ws1", Type: "unit", In: 100, Residual: 35, Closure: fp(0.35)}, {ID: "ws2", Type: "unit", In: 100, Residual: 9, Closure: fp(0.09)}},
			Flows:      []engine.FlowVolume{{From: "dist", To: "ws1", Meter: "M04"}},
			Whole:      engine.SiteBalance{UnitIntakes: 80, TotalIntake: 100, ClosureError: 0.2, ClosureThreshold: 0.1, ClosureOK: false}}}
	rate, req := 0.875, 0.95
	snap.Month = engine.Figures{Period: engine.Month, Indicators: engine.Indicators{From: monthFrom,
		Rates:    engine.Rates{IntakePerProduct: engine.Indicator{Value: fp(4)}},
		Metering: []engine.LevelMetering{{Level: 2, EquippingRate: &rate, EquippingTarget: &req}}}}
	snap.Plans = []engine.PlanStatus{
		{Plan: "site 2026", From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), At: at,
			Coverage: 1, UsedFraction: 0.92, Projected: 4e6, ProjectedOver: true, Volume: 900000},
		{Plan: "well 2026-03", From: monthFrom, To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), At: at,
			Coverage: 0.1, UsedFraction: 0.85, ProjectedOver: true, Volume: 40000}, // 6 % of the month covered: not judged
	}
	m.Sink(ctx, snap)
	got := map[string]Alert{}
	for _, call := range rec.calls {
		for _, a := range call {
			key := a.Labels["alertname"] + "/" + a.Labels["meter"] + a.Labels["node"] + a.Labels["plan"] + a.Labels["threshold"] + a.Labels["level"]
			got[key] = a
		}
	}
	want := map[string]string{ // key → severity
		"meter_spikes/M08":                   "warning",
		"meter_reset_unrecorded/M09":         "warning",
		"meter_fault_imbalance/M011":         "", // for: 30m, pending
		"resid/ws1":                          "critical",
		"flowing/M021":                       "warning",
		"ipp/":                               "info",
		"reuse_target/":                      "warning",
		"closure_check/":                     "",
		"metering_rate/2":                    "info",
		"plan_threshold/site 202680.00 %":    "info",
		"plan_threshold/site 202690.00 %":    "warning",
		"plan_projected_overrun/site 2026":   "warning",
		"meter_verification/M05":             "", // mechanical DN50 verified 2023-01-10: replace by 2027-01-10, not within 30 days
		"plan_threshold/site 2026100.00 %":   "", // 92 % used
		"plan_threshold/well 2026-0380.00 %": "", // too little of the month covered
		"meter_reverse_steps/M08":            "", // one clamped step, three needed
		"meter_reverse_steps/M09":            "", // outside the 24 h window
		"resid/ws2":                          "", // 9 % < 10 %
		"reuse_rate_below_benchmark/":        "", // 93 % > the 92.9 % benchmark
		"meter_coverage/M07":                 "", // for: 10m, pending
	}
	for k, sev := range want {
		a, ok := got[k]
		switch {
		case sev == "" && ok && k != "closure_check/":
			t.Errorf("%s notified: %s", k, a.Annotations["description"])
		case sev != "" && !ok:
			t.Errorf("%s not notified", k)
		case sev != "" && a.Labels["severity"] != sev:
			t.Errorf("%s severity %s, want %s", k, a.Labels["severity"], sev)
		}
	}
	// closure_check has for: 1h: pending now, fires an hour of event time later.
	if _, ok := got["closure_check/"]; ok {
		t.Error("closure_check fired before its for: 1h")
	}
	rec.take("")
	snap.At = at.Add(61 * time.Minute)
	c.set(snap.At)
	m.Sink(ctx, snap)
	late := rec.take("")
	for _, name := range []string{"closure_check", "meter_fault_imbalance"} {
		n := 0
		for _, a := range late {
			if a.Labels["alertname"] == name && a.Status == "firing" && a.Annotations["summary_zh"] != "" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s after its for: notified %d times", name, n)
		}
	}
	// Bad quality: three bad readings in 15 minutes.
	for range 3 {
		m.Readings([]collector.Reading{{Site: "demo", Meter: "M12", Points: []collector.Point{{Name: collector.PointTotal, Quality: collector.Bad}}}})
	}
	m.Tick(ctx)
	if n := rec.take("meter_bad_quality"); len(n) != 1 || n[0].Labels["meter"] != "M12" {
		t.Errorf("bad quality: %+v", n)
	}
	c.add(16 * time.Minute)
	m.Tick(ctx)
	if n := rec.take("meter_bad_quality"); len(n) != 1 || n[0].Status != "resolved" {
		t.Errorf("bad quality after the window: %+v", n)
	}
}
