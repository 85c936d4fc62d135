package sim

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestEveryNodeBalances(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	types := nodeTypes()
	for _, f := range p.flows {
		if types[f.From] == "" || types[f.To] == "" {
			t.Fatalf("flow %s joins unknown nodes %q → %q", f.ID, f.From, f.To)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		at := p.Start().Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))
		b := p.prof.at(at)
		in, out := map[string]float64{}, map[string]float64{}
		var vi, vu, vco, vd, vl float64
		for _, f := range p.flows {
			r := f.rate.dot(b)
			out[f.From] += r
			in[f.To] += r
			switch f.Kind {
			case "intake":
				vi += r
			case "non_conventional":
				vu += r
			case "consumption":
				vco += r
			case "discharge":
				vd += r
			case KindLeak:
				vl += r
			}
		}
		for node, typ := range types {
			if typ != nodeUnit {
				continue
			}
			// Outflows include consumption and the leak (flows into sinks); a circulating flow is
			// on both sides.
			if d := in[node] - out[node]; math.Abs(d) > 1e-9 {
				t.Errorf("at %s node %s: in %.6f, out %.6f m³/h", at, node, in[node], out[node])
			}
		}
		if d := vi + vu - (vco + vd + vl); math.Abs(d) > 1e-9 {
			t.Errorf("at %s site: Vi+Vu = %.6f, Vco+Vd+Vl = %.6f", at, vi+vu, vco+vd+vl)
		}
	}
}

func TestFlowsNonNegativeOverADay(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	for i := 0; i <= 24*60; i++ {
		at := p.Start().Add(time.Duration(i) * time.Minute)
		b := p.prof.at(at)
		for _, f := range p.flows {
			if r := f.rate.dot(b); r < 0 {
				t.Fatalf("flow %s is %.4f m³/h at %s", f.ID, r, at)
			}
		}
	}
}

// The defaults reproduce DOMAIN.md's cooling tower example (Q 5000, ΔT 8, k 0.0014, N 4).
func TestCoolingTowerWorkedExample(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	rate := func(id string) lin {
		for _, f := range p.flows {
			if f.ID == id {
				return f.rate
			}
		}
		t.Fatalf("no flow %s", id)
		return lin{}
	}
	unit := [basisLen]float64{1, 1, 1, 1} // every profile at 1
	evap := rate("cooling_evaporation").dot(unit)
	blow := rate("cooling_blowdown").dot(unit)
	makeup := rate("reclaimed_intake").add(rate("reused_to_cooling")).add(rate("cooling_well")).dot(unit)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"evaporation", evap, 56.0}, {"blowdown", blow, 18.67}, {"make-up", makeup, 74.67}} {
		if math.Abs(c.got-c.want) > 0.005 {
			t.Errorf("%s = %.3f m³/h, want %.2f", c.name, c.got, c.want)
		}
	}
}

func TestNewRefusesNegativeFlow(t *testing.T) {
	tests := []struct {
		name    string
		change  func(c *Config)
		wantErr string
	}{
		{"ws2 takes more well water than cooling leaves", func(c *Config) { c.Network.WS2Well = 200 }, "cooling_well (M11)"},
		{"all make-up reclaimed and reuse too", func(c *Config) { c.Network.ReclaimedShare = 1 }, "cooling_well (M11)"},
		{"defaults", func(*Config) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			tt.change(c)
			_, err := New(c, testLogger(t))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "negative") {
				t.Fatalf("New error = %v, want one naming %q as negative", err, tt.wantErr)
			}
		})
	}
}

// The closed-form integrals agree with Simpson's rule on the rate functions, including across a
// daylight-saving change where the local profiles jump by an hour.
func TestIntegralMatchesSimpson(t *testing.T) {
	tests := []struct {
		zone, from string
		hours      float64
	}{
		{"Asia/Shanghai", "2025-01-06T05:17:00+08:00", 30},
		{"Europe/Berlin", "2025-03-29T20:00:00+01:00", 30}, // spring forward on 03-30
		{"Europe/Berlin", "2025-10-25T23:30:00+02:00", 7},  // fall back on 10-26
		{"UTC", "1969-12-31T22:00:00Z", 5},                 // before the Unix epoch
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.from, func(t *testing.T) {
			c := testConfig(t)
			c.Timezone = tt.zone
			p := newPlant(t, c, nil)
			from, err := time.Parse(time.RFC3339, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			to := from.Add(time.Duration(tt.hours * float64(time.Hour)))
			got := p.prof.integral(from, to)
			const step = 5 * time.Second
			n := int(to.Sub(from) / step)
			var want [basisLen]float64
			for i := 0; i <= n; i++ {
				w := 2.0
				switch {
				case i == 0 || i == n:
					w = 1
				case i%2 == 1:
					w = 4
				}
				b := p.prof.at(from.Add(time.Duration(i) * step))
				for k := range want {
					want[k] += w * b[k] * step.Hours() / 3
				}
			}
			for k := range want {
				// A DST jump makes the integrand discontinuous; Simpson is then off by about
				// one step of the jump.
				if math.Abs(got[k]-want[k]) > 1e-3 {
					t.Errorf("basis %d: closed form %.9f, Simpson %.9f", k, got[k], want[k])
				}
			}
			back := p.prof.integral(to, from)
			if back[1] != -got[1] {
				t.Errorf("reversed interval gives %v, want %v", back[1], -got[1])
			}
		})
	}
}

func TestTruthIndicators(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	day := p.Truth(p.Start(), p.Start().Add(24*time.Hour))
	if day.ReuseRate <= 0.9 || day.ReuseRate >= 1 {
		t.Errorf("reuse rate %.4f, want between 0.9 and 1", day.ReuseRate)
	}
	if want := day.VR / (day.VR + day.VI); day.ReuseRate != want {
		t.Errorf("reuse rate %v, want vr/(vr+vi) = %v", day.ReuseRate, want)
	}
	if want := day.VR / (day.VR + day.VI + day.VU); day.ReuseRateWithVU != want || want >= day.ReuseRate {
		t.Errorf("reuse rate with vu %v, want %v (below %v)", day.ReuseRateWithVU, want, day.ReuseRate)
	}
	m := day.Meters
	if want := m["M01"] + m["M02"]; math.Abs(day.VI-want) > 1e-9 {
		t.Errorf("vi %v, want M01+M02 = %v", day.VI, want)
	}
	if want := m["M12"] + m["M06"] + m["M09"] + m["M14"]; math.Abs(day.VR-want) > 1e-9 {
		t.Errorf("vr %v, want M12+M06+M09+M14 = %v", day.VR, want)
	}
	if day.VU != m["M03"] || day.VD != m["M16"] {
		t.Errorf("vu %v vd %v, want M03 %v and M16 %v", day.VU, day.VD, m["M03"], m["M16"])
	}
	if math.Abs(day.VL-24) > 1e-9 {
		t.Errorf("leak over a day %v m³, want 24", day.VL)
	}
	var vco float64
	for _, f := range p.Flows() {
		if f.Kind == "consumption" {
			vco += day.Flows[f.ID]
		}
	}
	if d := day.VI + day.VU - (vco + day.VD + day.VL); math.Abs(d) > 1e-6 {
		t.Errorf("site balance over a day off by %v m³", d)
	}
	// Volumes add up over adjacent intervals.
	mid := p.Start().Add(7*time.Hour + 13*time.Minute)
	a, b := p.Truth(p.Start(), mid), p.Truth(mid, p.Start().Add(24*time.Hour))
	for id, v := range day.Flows {
		if d := a.Flows[id] + b.Flows[id] - v; math.Abs(d) > 1e-6 {
			t.Errorf("flow %s: halves sum to %v, whole %v", id, a.Flows[id]+b.Flows[id], v)
		}
	}
	if empty := p.Truth(mid, mid); empty.ReuseRate != 0 || empty.VI != 0 {
		t.Errorf("empty interval gives %+v", empty)
	}
}

// BenchmarkTotalizer is the cost of one Modbus register image: a noisy flow rate and a totalizer
// integrated in closed form from the start.
func BenchmarkTotalizer(b *testing.B) {
	c := DefaultConfig()
	c.Start = "2025-01-06T00:00:00+08:00"
	p, err := New(c, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	m := p.meters[0]
	t := p.Start().Add(400 * 24 * time.Hour)
	for b.Loop() {
		t = t.Add(time.Second)
		_ = p.registers(m)
		_ = p.totalCounts(m, t)
	}
}

func BenchmarkTruthOfAYear(b *testing.B) {
	c := DefaultConfig()
	c.Timezone = "Europe/Berlin" // two offset changes to split at
	p, err := New(c, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, p.Location())
	for b.Loop() {
		_ = p.Truth(from, from.AddDate(1, 0, 0))
	}
}
