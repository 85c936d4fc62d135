package quota

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestEvaluate(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	nov := analytics.Plan{Period: analytics.PeriodMonth, Year: 2026, Month: 11, Source: "municipal", Volume: 1000}
	year := analytics.Plan{Period: analytics.PeriodYear, Year: 2026, Volume: 400000}
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, sh) }
	tests := []struct {
		name          string
		plan          analytics.Plan
		now           time.Time
		used          float64
		history       *History
		remaining     float64
		linear        float64
		lastYear      *float64
		projected     float64
		crossed       []float64
		projectedOver bool
	}{
		{
			name: "half-way through the month with 60 % used heads for 120 %",
			plan: nov, now: at(2026, 11, 16), used: 600,
			remaining: 400, linear: 1200, projected: 1200, projectedOver: true,
		},
		{
			name: "the same instant given in UTC",
			plan: nov, now: time.Date(2026, 11, 15, 16, 0, 0, 0, time.UTC), used: 600,
			remaining: 400, linear: 1200, projected: 1200, projectedOver: true,
		},
		{
			name: "80 % crossed",
			plan: nov, now: at(2026, 11, 28), used: 800,
			remaining: 200, linear: 800.0 / 27 * 30, projected: 800.0 / 27 * 30, crossed: []float64{0.8},
		},
		{
			name: "just below 80 % crosses nothing",
			plan: nov, now: at(2026, 11, 28), used: 799.9,
			remaining: 200.1, linear: 799.9 / 27 * 30, projected: 799.9 / 27 * 30,
		},
		{
			name: "90 % crossed",
			plan: nov, now: at(2026, 11, 30), used: 900,
			remaining: 100, linear: 900.0 / 29 * 30, projected: 900.0 / 29 * 30, crossed: []float64{0.8, 0.9},
		},
		{
			name: "overrun crosses all three",
			plan: nov, now: at(2026, 11, 30), used: 1200,
			remaining: -200, linear: 1200.0 / 29 * 30, projected: 1200.0 / 29 * 30, crossed: []float64{0.8, 0.9, 1.0},
			projectedOver: true,
		},
		{
			name: "last year took more in the second half than the linear pace says",
			plan: nov, now: at(2026, 11, 16), used: 400, history: &History{WholePeriod: 1100, SameSoFar: 450},
			remaining: 600, linear: 800, lastYear: ptr(1050), projected: 1050, projectedOver: true,
		},
		{
			name: "last year took less: the linear projection is the larger",
			plan: nov, now: at(2026, 11, 16), used: 400, history: &History{WholePeriod: 700, SameSoFar: 400},
			remaining: 600, linear: 800, lastYear: ptr(700), projected: 800,
		},
		{
			name: "before the period only last year projects",
			plan: nov, now: at(2026, 10, 20), used: 0, history: &History{WholePeriod: 950},
			remaining: 1000, linear: 0, lastYear: ptr(950), projected: 950,
		},
		{
			name: "before the period without history",
			plan: nov, now: at(2026, 10, 20), used: 0,
			remaining: 1000, linear: 0, projected: 0,
		},
		{
			name: "after the period the projection is what was used",
			plan: nov, now: at(2026, 12, 5), used: 1020, history: &History{WholePeriod: 990, SameSoFar: 300},
			remaining: -20, linear: 1020, lastYear: ptr(1020), projected: 1020, crossed: []float64{0.8, 0.9, 1.0},
			projectedOver: true,
		},
		{
			name: "annual plan at the end of June (181 of 365 days)",
			plan: year, now: at(2026, 7, 1), used: 181000,
			remaining: 219000, linear: 365000, projected: 365000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Evaluate(tt.plan, sh, tt.now, tt.used, tt.history)
			from, to := tt.plan.Span(sh)
			if !st.From.Equal(from) || !st.To.Equal(to) || !st.Now.Equal(tt.now) || st.Plan != tt.plan {
				t.Errorf("span %s..%s now %s plan %+v", st.From, st.To, st.Now, st.Plan)
			}
			if st.Used != tt.used || !near(st.Remaining, tt.remaining) || !near(st.UsedFraction, tt.used/tt.plan.Volume) {
				t.Errorf("used %g remaining %g fraction %g, want %g %g %g", st.Used, st.Remaining, st.UsedFraction, tt.used, tt.remaining, tt.used/tt.plan.Volume)
			}
			if !near(st.ProjectionLinear, tt.linear) {
				t.Errorf("linear projection %g, want %g", st.ProjectionLinear, tt.linear)
			}
			switch {
			case tt.lastYear == nil && st.ProjectionLastYear != nil:
				t.Errorf("last-year projection %g, want none", *st.ProjectionLastYear)
			case tt.lastYear != nil && (st.ProjectionLastYear == nil || !near(*st.ProjectionLastYear, *tt.lastYear)):
				t.Errorf("last-year projection %v, want %g", st.ProjectionLastYear, *tt.lastYear)
			}
			if !near(st.Projected, tt.projected) || st.ProjectedOver != tt.projectedOver {
				t.Errorf("projected %g over %v, want %g %v", st.Projected, st.ProjectedOver, tt.projected, tt.projectedOver)
			}
			if !slices.Equal(st.Crossed, tt.crossed) {
				t.Errorf("crossed %v, want %v", st.Crossed, tt.crossed)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func TestLastYear(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, sh) }
	nov := analytics.Plan{Period: analytics.PeriodMonth, Year: 2026, Month: 11, Volume: 1000}
	year := analytics.Plan{Period: analytics.PeriodYear, Year: 2028, Volume: 1000}
	tests := []struct {
		name            string
		plan            analytics.Plan
		now             time.Time
		from, soFar, to time.Time
	}{
		{"inside the month", nov, at(2026, 11, 16), at(2025, 11, 1), at(2025, 11, 16), at(2025, 12, 1)},
		{"now given in UTC", nov, time.Date(2026, 11, 15, 16, 0, 0, 0, time.UTC), at(2025, 11, 1), at(2025, 11, 16), at(2025, 12, 1)},
		{"before the month", nov, at(2026, 10, 20), at(2025, 11, 1), at(2025, 11, 1), at(2025, 12, 1)},
		{"after the month", nov, at(2027, 1, 5), at(2025, 11, 1), at(2025, 12, 1), at(2025, 12, 1)},
		{"leap day maps to the first of March", year, at(2028, 2, 29), at(2027, 1, 1), at(2027, 3, 1), at(2028, 1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, soFar, to := LastYear(tt.plan, sh, tt.now)
			if !from.Equal(tt.from) || !soFar.Equal(tt.soFar) || !to.Equal(tt.to) {
				t.Errorf("got %s, %s, %s; want %s, %s, %s", from, soFar, to, tt.from, tt.soFar, tt.to)
			}
		})
	}
}

// TestDemoPlansSized keeps the demo's plans meaningful: at the simulator's mean intake rates
// (configs/demo/plant.yaml: municipal M01 41.75 m³/h, well M02 46.405 m³/h) every plan ends its
// period between 70 % and 95 % used, so the demo's burn-down is neither idle nor always alarming.
func TestDemoPlansSized(t *testing.T) {
	s, err := analytics.LoadSite("../../configs/demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rate := map[string]float64{"municipal": 41.75, "well": 46.405, "": 41.75 + 46.405}
	if len(s.Plans) == 0 {
		t.Fatal("the demo site has no plans")
	}
	for _, p := range s.Plans {
		from, to := p.Span(s.Location())
		used := rate[p.Source] * to.Sub(from).Hours()
		st := Evaluate(p, s.Location(), to, used, nil)
		if st.UsedFraction < 0.70 || st.UsedFraction > 0.95 || st.ProjectedOver {
			t.Errorf("plan %s: %.0f of %.0f m³ used at the end (%.1f %%), want 70–95 %%", p, used, p.Volume, st.UsedFraction*100)
		}
	}
}

// A platform that started ten days into a 30-day month has measured 100 m³ over the last five
// days: the linear projection extrapolates that pace, 20 m³ a day, to the whole month (600 m³),
// not the 100 m³ spread over fifteen days (200 m³) that ignoring the missing data would give.
func TestEvaluateCoveredExtrapolatesMeasuredPace(t *testing.T) {
	loc := time.UTC
	p := analytics.Plan{Period: analytics.PeriodMonth, Year: 2026, Month: 11, Volume: 500}
	now := time.Date(2026, 11, 16, 0, 0, 0, 0, loc)
	st := EvaluateCovered(p, loc, now, 100, 5.0/15, nil)
	if math.Abs(st.ProjectionLinear-600) > 1e-9 || !st.ProjectedOver {
		t.Errorf("projection %v (over %v), want 600 and over the 500 m³ plan", st.ProjectionLinear, st.ProjectedOver)
	}
	full := Evaluate(p, loc, now, 100, nil)
	if math.Abs(full.ProjectionLinear-200) > 1e-9 || full.ProjectedOver {
		t.Errorf("fully covered projection %v, want 200", full.ProjectionLinear)
	}
}
