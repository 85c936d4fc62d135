package alerting

import (
	"math"
	"testing"
	"time"
)

// DOMAIN.md worked example 8, through the rule's detector (k and h in σ): S⁺ by hand is
// 0, 0, 1.5, 3, 4.5, 6 and the alarm comes at the 6th reading.
func TestCUSUMWorkedExample8(t *testing.T) {
	r := &Rule{Kind: KindCUSUM, Mu0: f64(10), Sigma: f64(1), K: 0.5, H: 5, Baseline: 24}
	d := newDetector(r)
	want := []float64{0, 0, 1.5, 3, 4.5, 6}
	for i, x := range []float64{10, 10, 12, 12, 12, 12} {
		d.feed(x)
		if math.Abs(d.stat-want[i]) > 1e-12 {
			t.Errorf("reading %d: S⁺ = %g, want %g", i+1, d.stat, want[i])
		}
		if d.active != (i == 5) {
			t.Errorf("reading %d: alarm %v", i+1, d.active)
		}
	}
}

// DOMAIN.md worked example 11: z = 10.40, 10.72, 10.976, 11.1808 against the time-varying upper
// limits 10.600, 10.768, 10.859, 10.912 (computed by hand from μ₀ + Lσ√(λ/(2−λ)(1−(1−λ)^{2t})));
// the alarm comes at the 3rd reading.
func TestEWMAWorkedExample11(t *testing.T) {
	r := &Rule{Kind: KindEWMA, Mu0: f64(10), Sigma: f64(1), Lambda: 0.2, L: 3, Baseline: 24}
	d := newDetector(r)
	wantZ := []float64{10.40, 10.72, 10.976, 11.1808}
	wantHi := []float64{10.600, 10.768, 10.859, 10.912}
	for i := range 4 {
		d.feed(12)
		_, hi := d.ewma.Limits()
		if math.Abs(d.stat-wantZ[i]) > 1e-9 || math.Abs(hi-wantHi[i]) > 5e-4 {
			t.Errorf("reading %d: z = %.4f (want %.4f), upper limit %.4f (want %.3f)", i+1, d.stat, wantZ[i], hi, wantHi[i])
		}
		if d.active != (i >= 2) {
			t.Errorf("reading %d: alarm %v", i+1, d.active)
		}
	}
}

// A detector without μ₀ and σ learns them from its first closed hours, and an hour counts once
// the next one begins, with the last figure seen for it.
func TestDetectorLearnsBaselineFromClosedHours(t *testing.T) {
	r := &Rule{Kind: KindCUSUM, K: 0.5, H: 5, Baseline: 4}
	d := newDetector(r)
	h0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	vals := []float64{9, 11, 9, 11} // mean 10, sample σ = √(4/3) ≈ 1.1547
	for i, v := range vals {
		d.observe(h0.Add(time.Duration(i)*time.Hour), v-5) // an early figure of the hour, replaced below
		d.observe(h0.Add(time.Duration(i)*time.Hour), v)
	}
	if d.cusum != nil {
		t.Fatal("the 4th hour is not closed yet")
	}
	d.observe(h0.Add(4*time.Hour), 20)
	if d.cusum == nil {
		t.Fatal("baseline not learned after 4 closed hours")
	}
	sd := math.Sqrt((1 + 1 + 1 + 1) / 3.0)
	if math.Abs(d.cusum.Mu0-10) > 1e-12 || math.Abs(d.cusum.K-0.5*sd) > 1e-12 || math.Abs(d.cusum.H-5*sd) > 1e-12 {
		t.Errorf("cusum = %+v, want μ₀ 10, k %.6f, h %.6f", *d.cusum, 0.5*sd, 5*sd)
	}
}

// DOMAIN.md worked example 12: the daily minimum of the rolling 1-hour mean of 96 quarter-hour
// means, undefined (not zero) with fewer than 92 quarters. Values by hand: a day at 5 m³/h with a
// night dip 1, 2, 3, 4 at quarters 8-11 has windows 4, 3.25, 2.75, 2.5, 3.5 around the dip, so
// MNF 2.5; with quarter 9 missing, the windows through it are skipped and the least left is
// (5+5+5+1)/4 = 4.
func TestNightFlowWorkedExample12(t *testing.T) {
	day := func() []float64 {
		q := make([]float64, 96)
		for i := range q {
			q[i] = 5
		}
		copy(q[8:], []float64{1, 2, 3, 4})
		return q
	}
	if v, ok := NightFlow(day()); !ok || math.Abs(v-2.5) > 1e-12 {
		t.Errorf("MNF = %v, %v; want 2.5", v, ok)
	}
	q := day()
	q[9] = math.NaN()
	if v, ok := NightFlow(q); !ok || math.Abs(v-4) > 1e-12 {
		t.Errorf("MNF with quarter 9 missing = %v, %v; want 4", v, ok)
	}
	q = day()
	for _, i := range []int{20, 30, 40, 50} {
		q[i] = math.NaN()
	}
	if _, ok := NightFlow(q); !ok {
		t.Error("92 quarters must define the MNF")
	}
	q[60] = math.NaN()
	if v, ok := NightFlow(q); ok {
		t.Errorf("91 quarters gave MNF %v; it is undefined", v)
	}
}
