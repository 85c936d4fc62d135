package kpi

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

// pct formats a rate the way reports show it.
func pct(r float64) string { return fmt.Sprintf("%.2f %%", r*100) }

// TestWorkedExamples asserts the rounded figures of DOMAIN.md's worked examples (7 is the
// ledger's; see analytics/ledger/testdata/scenarios/rollover-example7.yaml).
func TestWorkedExamples(t *testing.T) {
	tests := []struct {
		name string
		f    func() (float64, bool)
		want string
	}{
		{"1 R", func() (float64, bool) { return ReuseRate(9000, 1000) }, "90.00 %"},
		{"2 R CISA 2021", func() (float64, bool) { return ReuseRate(8756175, 172772) }, "98.07 %"},
		{"3 Rc", func() (float64, bool) { return IndirectCoolingRate(150000, 2400) }, "98.43 %"},
		{"3 Rd", func() (float64, bool) { return DirectCoolingRate(20000, 1000) }, "95.24 %"},
		{"4 Rb", func() (float64, bool) { return CondensateRate(900, 1, 1500) }, "60.00 %"},
		{"5 Kl", func() (float64, bool) { return LeakageRate(Leakage(10000, 6100, 3300), 10000) }, "6.00 %"},
		{"5 Kd", func() (float64, bool) { return DischargeRate(3300, 10000) }, "33.00 %"},
		{"5 consumption", func() (float64, bool) { return ConsumptionRate(6100, 10000) }, "61.00 %"},
		{"6 Kw", func() (float64, bool) { return WastewaterReuseRate(1200, 3300) }, "26.67 %"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := tt.f()
			if !ok || pct(r) != tt.want {
				t.Errorf("got %s (defined %v), want %s", pct(r), ok, tt.want)
			}
		})
	}
	if vl := Leakage(10000, 6100, 3300); vl != 600 {
		t.Errorf("example 5: Vl = %v, want 600", vl)
	}
}

func TestIndicators(t *testing.T) {
	tests := []struct {
		name   string
		f      func() (float64, bool)
		want   float64
		wantOK bool
	}{
		{"reuse with Vu", func() (float64, bool) { return ReuseRateWithVu(9000, 800, 200) }, 0.9, true},
		{"non-conventional, Vi + Vu", func() (float64, bool) { return NonConventionalRate(250, 750, "") }, 0.25, true},
		{"non-conventional, explicit Vi + Vu", func() (float64, bool) { return NonConventionalRate(250, 750, IntakeAndNonConventional) }, 0.25, true},
		{"non-conventional, Vi only", func() (float64, bool) { return NonConventionalRate(250, 750, IntakeOnly) }, 1.0 / 3, true},
		{"intake per product", func() (float64, bool) { return IntakePerProduct(1200, 400) }, 3, true},
		{"intake per 10k CNY", func() (float64, bool) { return IntakePer10kCNY(1500, 60) }, 25, true},
		{"metering rate", func() (float64, bool) { return MeteringRate(950, 1000) }, 0.95, true},
		{"equipping rate", func() (float64, bool) { return EquippingRate(19, 20) }, 0.95, true},
		{"condensate with density", func() (float64, bool) { return CondensateRate(1000, 0.96, 1200) }, 0.8, true},
		{"negative leakage residual", func() (float64, bool) { return LeakageRate(-50, 1000) }, -0.05, true},
		{"leakage balance", func() (float64, bool) { return LeakageBalance(10000, 500, 6100, 3300, 400), true }, 700, true},
		// Undefined: zero, negative or non-finite denominators, bad parameters.
		{"R of an empty period", func() (float64, bool) { return ReuseRate(0, 0) }, 0, false},
		{"Kl without intake", func() (float64, bool) { return LeakageRate(5, 0) }, 0, false},
		{"Kd with negative intake", func() (float64, bool) { return DischargeRate(5, -1) }, 0, false},
		{"Rb without steam", func() (float64, bool) { return CondensateRate(900, 1, 0) }, 0, false},
		{"Rb without density", func() (float64, bool) { return CondensateRate(900, 0, 1500) }, 0, false},
		{"Ru with unknown base", func() (float64, bool) { return NonConventionalRate(1, 1, "half") }, 0, false},
		{"Ru Vi only without intake", func() (float64, bool) { return NonConventionalRate(100, 0, IntakeOnly) }, 0, false},
		{"per product without production", func() (float64, bool) { return IntakePerProduct(10, 0) }, 0, false},
		{"equipping with none required", func() (float64, bool) { return EquippingRate(3, 0) }, 0, false},
		{"NaN volume", func() (float64, bool) { return ReuseRate(math.NaN(), 10) }, 0, false},
		{"infinite intake", func() (float64, bool) { return MeteringRate(1, math.Inf(1)) }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.f()
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-12 || math.IsNaN(got) {
				t.Errorf("got %v (defined %v), want %v (defined %v)", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNonConventionalBaseValid(t *testing.T) {
	for _, b := range []NonConventionalBase{"", IntakeAndNonConventional, IntakeOnly} {
		if err := b.Valid(); err != nil {
			t.Errorf("%q: %v", b, err)
		}
	}
	if err := NonConventionalBase("vi+vu").Valid(); err == nil {
		t.Error(`"vi+vu" accepted`)
	}
}

// TestCUSUMExample8 is DOMAIN.md example 8: μ₀ = 10, σ = 1, k = 0.5, h = 5.
func TestCUSUMExample8(t *testing.T) {
	c, err := NewCUSUM(10, 0.5, 5)
	if err != nil {
		t.Fatal(err)
	}
	xs := []float64{10, 10, 12, 12, 12, 12}
	wantS := []float64{0, 0, 1.5, 3, 4.5, 6}
	for i, x := range xs {
		s, alarm := c.Update(x)
		if s != wantS[i] || alarm != (i == 5) {
			t.Errorf("reading %d: S⁺ = %v alarm %v, want %v alarm %v", i+1, s, alarm, wantS[i], i == 5)
		}
	}
	if s, alarm := c.Update(math.NaN()); s != 6 || !alarm {
		t.Errorf("NaN changed the sum: %v %v", s, alarm)
	}
	c.Reset()
	if s, alarm := c.Update(10); s != 0 || alarm {
		t.Errorf("after reset: %v %v", s, alarm)
	}
}

// TestEWMA: μ₀ = 10, σ = 1, λ = 0.2, L = 3. The limits widen as 0.6, 0.768, 0.859, 0.912...;
// z = 10, 10.4, 10.72, 10.976 crosses at the 4th reading.
func TestEWMA(t *testing.T) {
	e, err := NewEWMA(10, 1, 0.2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := e.Limits(); math.Abs(lo-9.4) > 1e-9 || math.Abs(hi-10.6) > 1e-9 {
		t.Errorf("first limits = %v, %v; want 9.4, 10.6", lo, hi)
	}
	xs := []float64{10, 12, 12, 12, 12}
	wantZ := []float64{10, 10.4, 10.72, 10.976, 11.1808}
	wantAlarm := []bool{false, false, false, true, true}
	for i, x := range xs {
		z, alarm := e.Update(x)
		if math.Abs(z-wantZ[i]) > 1e-9 || alarm != wantAlarm[i] {
			t.Errorf("reading %d: z = %v alarm %v, want %v alarm %v", i+1, z, alarm, wantZ[i], wantAlarm[i])
		}
	}
	if _, hi := e.Limits(); math.Abs(hi-10.944788768773211) > 1e-9 {
		t.Errorf("limit after 5 readings = %v, want 10.9448", hi)
	}
	// A drop is detected too (two-sided).
	d, _ := NewEWMA(10, 1, 0.3, 3)
	var alarm bool
	for range 3 {
		_, alarm = d.Update(7)
	}
	if !alarm {
		t.Error("a sustained drop of 3σ raised no alarm")
	}
}

func TestDetectorParameters(t *testing.T) {
	for _, p := range [][3]float64{{10, -1, 5}, {10, 0.5, 0}, {math.NaN(), 0.5, 5}} {
		if _, err := NewCUSUM(p[0], p[1], p[2]); !errors.Is(err, ErrParameter) {
			t.Errorf("NewCUSUM%v: err = %v, want ErrParameter", p, err)
		}
	}
	for _, p := range [][4]float64{{10, 0, 0.2, 3}, {10, 1, 0, 3}, {10, 1, 1.5, 3}, {10, 1, 0.2, 0}} {
		if _, err := NewEWMA(p[0], p[1], p[2], p[3]); !errors.Is(err, ErrParameter) {
			t.Errorf("NewEWMA%v: err = %v, want ErrParameter", p, err)
		}
	}
}

// TestCoolingTowerExample9 is DOMAIN.md example 9: Q = 5 000 m³/h, Δt = 8 °C, k = 0.0014, N = 4.
func TestCoolingTowerExample9(t *testing.T) {
	e := Evaporation(EvaporationCoefficient, 8, 5000)
	if got := fmt.Sprintf("%.1f", e); got != "56.0" {
		t.Errorf("E = %s, want 56.0", got)
	}
	b, okB := Blowdown(e, 4)
	m, okM := Makeup(e, 4)
	if got := fmt.Sprintf("%.2f %.2f", b, m); got != "18.67 74.67" || !okB || !okM {
		t.Errorf("blowdown, make-up = %s (%v %v), want 18.67 74.67", got, okB, okM)
	}
	if math.Abs(m-(e+b)) > 1e-9 {
		t.Errorf("make-up %v is not evaporation %v plus blowdown %v", m, e, b)
	}
	if n, ok := Cycles(2000, 500); !ok || n != 4 {
		t.Errorf("N = %v %v, want 4", n, ok)
	}
	for _, n := range []float64{1, 0.5} {
		if _, ok := Blowdown(e, n); ok {
			t.Errorf("blowdown defined at N = %v", n)
		}
		if _, ok := Makeup(e, n); ok {
			t.Errorf("make-up defined at N = %v", n)
		}
	}
	if _, ok := Cycles(2000, 0); ok {
		t.Error("cycles defined without make-up concentration")
	}
}
