package store

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// engineStore is what the engine and the API need of either back end beyond Store.
type engineStore interface {
	Store
	engine.Store
	engine.Results
	WriteInputs(ctx context.Context, ins []engine.Input) error
	Results(ctx context.Context, site, boundary, period string, from, to time.Time) ([]engine.Result, error)
}

func fp(v float64) *float64 { return &v }

// testEngineStore is the contract of the engine's side of a store, run against both back ends.
func testEngineStore(t *testing.T, s engineStore) {
	ctx := context.Background()
	far := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	m := ledger.Align(t0)

	t.Run("meter totals", func(t *testing.T) {
		const tsite = "totals.site-1"
		b := func(meter string, min int, vol float64, flags ledger.Flag, cov float64) ledger.Bucket {
			return ledger.Bucket{Site: tsite, Meter: meter, Start: m.Add(time.Duration(min) * time.Minute), Volume: vol, Flags: flags, Coverage: cov}
		}
		in := []ledger.Bucket{
			b("M2", 0, 0.5, 0, 1),
			b("M1", 0, 1.25, 0, 1),
			b("M1", 1, 0.75, ledger.Rollover, 1),
			b("M1", 2, 2, ledger.Gap|ledger.Estimated, 0.5),
			b("M2", 1, 0.25, ledger.Spike, 0.25),
			b("M1", 3, 9, ledger.Fault, 1),
			b("M3", 5, 7, 0, 1),
			{Site: "totals.site", Meter: "M1", Start: m, Volume: 100, Coverage: 1}, // a site whose id is a prefix
		}
		if err := s.WriteBuckets(ctx, in); err != nil {
			t.Fatal(err)
		}
		// A rewrite of one bucket counts once, with its new value.
		if err := s.WriteBuckets(ctx, []ledger.Bucket{b("M1", 0, 1.0, ledger.Clamped, 1)}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			from, to time.Time
			want     []engine.MeterTotal
		}{
			{"three minutes", m, m.Add(3 * time.Minute), []engine.MeterTotal{
				{Meter: "M1", Volume: 3.75, Coverage: 2.5, Buckets: 3, Flags: ledger.Clamped | ledger.Rollover | ledger.Gap | ledger.Estimated},
				{Meter: "M2", Volume: 0.75, Coverage: 1.25, Buckets: 2, Flags: ledger.Spike},
			}},
			{"everything", time.Time{}, far, []engine.MeterTotal{
				{Meter: "M1", Volume: 12.75, Coverage: 3.5, Buckets: 4, Flags: ledger.Clamped | ledger.Rollover | ledger.Gap | ledger.Estimated | ledger.Fault},
				{Meter: "M2", Volume: 0.75, Coverage: 1.25, Buckets: 2, Flags: ledger.Spike},
				{Meter: "M3", Volume: 7, Coverage: 1, Buckets: 1},
			}},
			{"to is excluded", m.Add(3 * time.Minute), m.Add(5 * time.Minute), []engine.MeterTotal{
				{Meter: "M1", Volume: 9, Coverage: 1, Buckets: 1, Flags: ledger.Fault},
			}},
			{"nothing", m.Add(6 * time.Minute), far, nil},
			{"reversed", m.Add(3 * time.Minute), m, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.MeterTotals(ctx, tsite, tt.from, tt.to)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 0 || len(tt.want) != 0 {
					if !reflect.DeepEqual(got, tt.want) {
						t.Errorf("MeterTotals:\n got  %+v\n want %+v", got, tt.want)
					}
				}
				// The store's sums are the engine's sums of the same buckets.
				bs, err := s.Buckets(ctx, tsite, tt.from, tt.to)
				if err != nil {
					t.Fatal(err)
				}
				if sum := engine.Totals(bs); len(sum) != len(got) || len(sum) > 0 && !reflect.DeepEqual(sum, got) {
					t.Errorf("engine.Totals of the same buckets = %+v, store = %+v", sum, got)
				}
			})
		}
	})

	t.Run("inputs", func(t *testing.T) {
		const isite = "inputs-site"
		day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		march := engine.Input{Site: isite, From: day, To: day.AddDate(0, 1, 0), Product: fp(1200.5), ProductUnit: "t", OutputValue: fp(3400), Steam: fp(0)}
		april := engine.Input{Site: isite, From: day.AddDate(0, 1, 0), To: day.AddDate(0, 2, 0), OutputValue: fp(100)}
		other := engine.Input{Site: isite + "-2", From: day, To: day.AddDate(0, 1, 0), Steam: fp(7)}
		if err := s.WriteInputs(ctx, []engine.Input{april, march, other}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			from, to time.Time
			want     []engine.Input
		}{
			{"both", time.Time{}, far, []engine.Input{march, april}},
			{"overlapping the end of march", day.AddDate(0, 1, -1), day.AddDate(0, 1, 1), []engine.Input{march, april}},
			{"ending where april starts", day.Add(-time.Hour), day.AddDate(0, 1, 0), []engine.Input{march}},
			{"starting where march ends", day.AddDate(0, 1, 0), far, []engine.Input{april}},
			{"before", time.Time{}, day, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Inputs(ctx, isite, tt.from, tt.to)
				if err != nil {
					t.Fatal(err)
				}
				if (len(got) != 0 || len(tt.want) != 0) && !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Inputs:\n got  %s\n want %s", inputsString(got), inputsString(tt.want))
				}
			})
		}
		// Same start: replaced whole, including the figures the new one leaves out.
		march2 := engine.Input{Site: isite, From: day, To: day.AddDate(0, 0, 31), Steam: fp(55.5)}
		if err := s.WriteInputs(ctx, []engine.Input{march2}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Inputs(ctx, isite, day, day.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []engine.Input{march2}; !reflect.DeepEqual(got, want) {
			t.Errorf("after rewrite:\n got  %s\n want %s", inputsString(got), inputsString(want))
		}
		for name, bad := range map[string]engine.Input{
			"no figure":          {Site: isite, From: day, To: day.Add(time.Hour)},
			"empty period":       {Site: isite, From: day, To: day, Steam: fp(1)},
			"negative":           {Site: isite, From: day, To: day.Add(time.Hour), Steam: fp(-1)},
			"NaN":                {Site: isite, From: day, To: day.Add(time.Hour), OutputValue: fp(math.NaN())},
			"product, no unit":   {Site: isite, From: day, To: day.Add(time.Hour), Product: fp(1)},
			"no site":            {From: day, To: day.Add(time.Hour), Steam: fp(1)},
			"after 2262 (to)":    {Site: isite, From: day, To: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Steam: fp(1)},
			"zero from and to":   {Site: isite, Steam: fp(1)},
			"reversed period":    {Site: isite, From: day.Add(time.Hour), To: day, Steam: fp(1)},
			"infinite product":   {Site: isite, From: day, To: day.Add(time.Hour), Product: fp(math.Inf(1)), ProductUnit: "t"},
			"negative out value": {Site: isite, From: day, To: day.Add(time.Hour), OutputValue: fp(-0.5)},
		} {
			if err := s.WriteInputs(ctx, []engine.Input{april, bad}); !errors.Is(err, ErrRejected) {
				t.Errorf("%s: WriteInputs = %v, want ErrRejected", name, err)
			}
		}
		if err := s.WriteInputs(ctx, nil); err != nil {
			t.Errorf("writing no inputs: %v", err)
		}
	})

	t.Run("results", func(t *testing.T) {
		const rsite = "results-site"
		h := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
		r := func(boundary, period string, start time.Time, fields map[string]float64) engine.Result {
			return engine.Result{Site: rsite, Boundary: boundary, Period: period, Start: start, Fields: fields}
		}
		h0 := r("site", "hour", h, map[string]float64{"r": 0.95, "vi": 120.5, "coverage": 1, "rc": 0.984})
		h1 := r("site", "hour", h.Add(time.Hour), map[string]float64{"r": 0.9, "vi": 0})
		unit := r("unit:ws1", "hour", h, map[string]float64{"r": 0.5})
		day := r("site", "day", h, map[string]float64{"r": 0.93})
		if err := s.WriteResults(ctx, []engine.Result{h1, unit, h0, day}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Results(ctx, rsite, "site", "hour", time.Time{}, far)
		if err != nil {
			t.Fatal(err)
		}
		if want := []engine.Result{h0, h1}; !reflect.DeepEqual(got, want) {
			t.Errorf("Results:\n got  %+v\n want %+v", got, want)
		}
		got, err = s.Results(ctx, rsite, "unit:ws1", "hour", h, h.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []engine.Result{unit}; !reflect.DeepEqual(got, want) {
			t.Errorf("Results of a unit:\n got  %+v\n want %+v", got, want)
		}
		// A rewrite replaces the result whole: rc became undefined and is gone.
		h0b := r("site", "hour", h, map[string]float64{"r": 0.96, "vi": 130})
		if err := s.WriteResults(ctx, []engine.Result{h0b}); err != nil {
			t.Fatal(err)
		}
		got, err = s.Results(ctx, rsite, "site", "hour", h, h.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []engine.Result{h0b}; !reflect.DeepEqual(got, want) {
			t.Errorf("after rewrite:\n got  %+v\n want %+v", got, want)
		}
		// Without any figure, the result is gone.
		if err := s.WriteResults(ctx, []engine.Result{r("site", "hour", h, nil)}); err != nil {
			t.Fatal(err)
		}
		got, err = s.Results(ctx, rsite, "site", "hour", h, h.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("a result without figures reads back as %+v", got)
		}
		for name, bad := range map[string]engine.Result{
			"NaN":            r("site", "hour", h, map[string]float64{"r": math.NaN()}),
			"infinite":       r("site", "hour", h, map[string]float64{"r": math.Inf(-1)}),
			"reserved field": r("site", "hour", h, map[string]float64{"fields": 1}),
			"tag as field":   r("site", "hour", h, map[string]float64{"site": 1}),
			"odd field name": r("site", "hour", h, map[string]float64{"R c": 1}),
			"no boundary":    r("", "hour", h, map[string]float64{"r": 1}),
			"zero start":     r("site", "hour", time.Time{}, map[string]float64{"r": 1}),
		} {
			if err := s.WriteResults(ctx, []engine.Result{h1, bad}); !errors.Is(err, ErrRejected) {
				t.Errorf("%s: WriteResults = %v, want ErrRejected", name, err)
			}
		}
		if err := s.WriteResults(ctx, nil); err != nil {
			t.Errorf("writing no results: %v", err)
		}
	})
}

func inputsString(ins []engine.Input) string {
	s := "["
	for _, in := range ins {
		f := func(v *float64) string {
			if v == nil {
				return "nil"
			}
			return strconv.FormatFloat(*v, 'g', -1, 64)
		}
		s += in.From.Format(time.RFC3339) + ".." + in.To.Format(time.RFC3339) + " Q=" + f(in.Product) + in.ProductUnit + " Z=" + f(in.OutputValue) + " D=" + f(in.Steam) + "; "
	}
	return s + "]"
}
