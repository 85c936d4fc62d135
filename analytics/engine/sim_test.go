package engine_test

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/sim"
)

// truthBuckets are the ledger buckets of [from, to) built from the simulator's exact truth, one
// per meter and minute: what a perfect ledger would hold.
func truthBuckets(p *sim.Plant, site string, from, to time.Time) []ledger.Bucket {
	var bs []ledger.Bucket
	for m := from; m.Before(to); m = m.Add(time.Minute) {
		tr := p.Truth(m, m.Add(time.Minute))
		for id, v := range tr.Meters {
			bs = append(bs, ledger.Bucket{Site: site, Meter: id, Start: m.UTC(), Volume: v, Coverage: 1})
		}
	}
	return bs
}

// TestSimulatorProperty runs the demo site model on the simulator's truth over random intervals:
// the engine's R equals the truth's, every derived flow equals what really flowed, and the site
// balance closes on exactly the simulator's leak: the model accounts for every other path the
// water takes, so the leakage Kl the demo shows is the plant's real one. The simulator's noise is on flow rates only; its totalizers, and so
// these buckets, are exact, so nothing else may be left over.
func TestSimulatorProperty(t *testing.T) {
	cfg, err := sim.LoadConfig("../../configs/demo/plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Start = "2026-03-02T00:00:00+08:00"
	plant, err := sim.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	site, err := analytics.LoadSite("../../configs/demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := engine.New([]*analytics.Site{site}, st)

	rel := func(got, want float64) float64 { return math.Abs(got-want) / math.Max(1, math.Abs(want)) }
	for i := range 12 {
		from := plant.Start().Add(time.Duration(rng.IntN(3*24*60)) * time.Minute)
		to := from.Add(time.Duration(1+rng.IntN(2*24*60)) * time.Minute)
		if i == 0 {
			to = from.Add(time.Duration(1+rng.IntN(6*60)) * time.Minute)
		}
		bs := truthBuckets(plant, site.ID, from, to)
		truth := plant.Truth(from, to)
		var ind engine.Indicators
		var bal engine.Balance
		if i == 0 {
			// The first interval goes through the store and the whole engine.
			if err := st.WriteBuckets(context.Background(), bs); err != nil {
				t.Fatal(err)
			}
			if ind, err = e.Indicators(context.Background(), site.ID, from, to); err != nil {
				t.Fatal(err)
			}
			if bal, err = e.Balance(context.Background(), site.ID, from, to); err != nil {
				t.Fatal(err)
			}
		} else {
			d := engine.Data{Totals: engine.Totals(bs)}
			ind, bal = engine.Compute(site, d, from, to), engine.ComputeBalance(site, d.Totals, from, to)
		}
		span := to.Sub(from)
		if ind.ReuseRate == nil || rel(*ind.ReuseRate, truth.ReuseRate) > 1e-9 || rel(*ind.ReuseRateWithVu, truth.ReuseRateWithVU) > 1e-9 {
			t.Errorf("[%v +%v]: R %v (with Vu %v), truth %v (%v)", from, span, ind.ReuseRate, ind.ReuseRateWithVu, truth.ReuseRate, truth.ReuseRateWithVU)
		}
		if ind.Coverage != 1 {
			t.Errorf("[%v +%v]: coverage %v with every minute present", from, span, ind.Coverage)
		}
		for _, f := range ind.Flows {
			want, ok := truth.Flows[f.ID]
			if !ok {
				t.Errorf("flow %s of the site model is not a flow of the simulator", f.ID)
			}
			if rel(f.Volume, want) > 1e-9 {
				t.Errorf("[%v +%v]: flow %s %v m³, truth %v", from, span, f.ID, f.Volume, want)
			}
		}
		if rel(bal.Whole.Vl, truth.VL) > 1e-9 || rel(ind.Volumes.Vl, truth.VL) > 1e-9 {
			t.Errorf("[%v +%v]: balance residual %v (indicators %v), want the leak %v",
				from, span, bal.Whole.Vl, ind.Volumes.Vl, truth.VL)
		}
		if kl := ind.Rates.LeakageRate.Value; kl == nil || rel(*kl, truth.VL/truth.VI) > 1e-9 {
			t.Errorf("[%v +%v]: Kl %v, want the true leak over intake %v", from, span, ind.Rates.LeakageRate.Value, truth.VL/truth.VI)
		}
		if !bal.Whole.ClosureOK {
			t.Errorf("[%v +%v]: closure check fails: %+v", from, span, bal.Whole)
		}
		// Every unit balances to zero but the distribution main, whose residual is the leak.
		for _, n := range bal.Nodes {
			want := 0.0
			if n.ID == "dist" {
				want = truth.VL
			}
			if rel(n.Residual, want) > 1e-9 {
				t.Errorf("[%v +%v]: node %s residual %v, want %v", from, span, n.ID, n.Residual, want)
			}
		}
	}
}
