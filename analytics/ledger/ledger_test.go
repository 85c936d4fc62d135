package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

const (
	site  = "plant"
	meter = "M01"
	tol   = 1e-6
)

// history is an in-memory History: the fake of the ledger's consumer interface. Writing a
// reading at the time of a stored one replaces it (the real stores keep the first and set a
// different one aside; the scenarios never write two different readings at one time).
type history struct {
	mu   sync.Mutex
	rs   map[string][]collector.Reading // by site/meter, sorted by time
	fail error                          // when set, every read fails
}

var _ ledger.History = (*history)(nil)

func newHistory() *history { return &history{rs: map[string][]collector.Reading{}} }

func (h *history) write(r collector.Reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := r.Site + "/" + r.Meter
	rs := h.rs[k]
	i, found := slices.BinarySearchFunc(rs, r.Time, func(x collector.Reading, t time.Time) int { return x.Time.Compare(t) })
	if found {
		rs[i] = r
		return
	}
	h.rs[k] = slices.Insert(rs, i, r)
}

func (h *history) Readings(_ context.Context, site, meter string, from, to time.Time) ([]collector.Reading, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return nil, h.fail
	}
	rs := h.rs[site+"/"+meter]
	lo := sort.Search(len(rs), func(i int) bool { return !rs[i].Time.Before(from) })
	hi := sort.Search(len(rs), func(i int) bool { return !rs[i].Time.Before(to) })
	if lo >= hi {
		return nil, nil
	}
	return slices.Clone(rs[lo:hi]), nil
}

func (h *history) LastReading(_ context.Context, site, meter string, t time.Time) (collector.Reading, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return collector.Reading{}, false, h.fail
	}
	rs := h.rs[site+"/"+meter]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Time.After(t) })
	if i == 0 {
		return collector.Reading{}, false, nil
	}
	return rs[i-1], true, nil
}

// table is the bucket table a store would hold: the last value written for each start.
type table map[time.Time]ledger.Bucket

func (tb table) sorted() []ledger.Bucket {
	out := make([]ledger.Bucket, 0, len(tb))
	for _, b := range tb {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b ledger.Bucket) int { return a.Start.Compare(b.Start) })
	return out
}

// feed stores each reading, adds it to l and writes the buckets l returns into tb.
func feed(t testing.TB, l *ledger.Ledger, h *history, tb table, rs []collector.Reading) {
	t.Helper()
	for _, r := range rs {
		h.write(r)
		bs, err := l.Add(context.Background(), r)
		if err != nil {
			t.Fatalf("add reading at %s: %v", r.Time.Format(time.TimeOnly), err)
		}
		for _, b := range bs {
			if b.Site != r.Site || b.Meter != r.Meter || !b.Start.Equal(ledger.Align(b.Start)) {
				t.Fatalf("bucket %+v does not belong to %s/%s on a minute", b, r.Site, r.Meter)
			}
			tb[b.Start] = b
		}
	}
}

type scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Meter       struct {
		RegisterMax float64       `yaml:"register_max"`
		Q4          float64       `yaml:"q4"`
		FlowOnly    bool          `yaml:"flow_only"`
		Interval    time.Duration `yaml:"interval"`
		GapAfter    time.Duration `yaml:"gap_after"`
		MaxSpread   time.Duration `yaml:"max_spread"`
		Noise       float64       `yaml:"noise"`
	} `yaml:"meter"`
	Readings []struct {
		At      time.Duration `yaml:"at"`
		Total   *float64      `yaml:"total"`
		Flow    *float64      `yaml:"flow"`
		Quality string        `yaml:"quality"`
	} `yaml:"readings"`
	Want struct {
		Buckets []wantBucket   `yaml:"buckets"`
		Stats   map[string]int `yaml:"stats"`
	} `yaml:"want"`
	// Ledger, when given, is the full Stats of a Ledger fed the readings in file order.
	Ledger map[string]int `yaml:"ledger"`
}

type wantBucket struct {
	At       time.Duration `yaml:"at"`
	Volume   float64       `yaml:"volume"`
	Flags    string        `yaml:"flags"`
	Coverage float64       `yaml:"coverage"`
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (sc *scenario) spec() ledger.MeterSpec {
	return ledger.MeterSpec{
		Site: site, Meter: meter,
		RegisterMax: sc.Meter.RegisterMax, Q4: sc.Meter.Q4, FlowOnly: sc.Meter.FlowOnly,
		Interval: sc.Meter.Interval, GapAfter: sc.Meter.GapAfter, Noise: sc.Meter.Noise,
		MaxSpread: sc.Meter.MaxSpread,
	}
}

// readings returns the scenario's readings in file order.
func (sc *scenario) readings(t *testing.T) []collector.Reading {
	var out []collector.Reading
	for i, r := range sc.Readings {
		q := collector.Good
		if r.Quality != "" {
			var err error
			if q, err = collector.ParseQuality(r.Quality); err != nil {
				t.Fatalf("reading %d: %v", i, err)
			}
		}
		rd := collector.Reading{Site: site, Meter: meter, Seq: uint64(i + 1), Time: t0.Add(r.At), TimeSource: collector.TimeSourceDevice}
		if r.Total != nil {
			rd.Points = append(rd.Points, collector.Point{Name: collector.PointTotal, Value: *r.Total, Unit: "m3", Quality: q})
		}
		if r.Flow != nil {
			rd.Points = append(rd.Points, collector.Point{Name: collector.PointFlow, Value: *r.Flow, Unit: "m3/h", Quality: q})
		}
		out = append(out, rd)
	}
	return out
}

func loadScenarios(t *testing.T) map[string]*scenario {
	t.Helper()
	files, err := filepath.Glob("testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	out := map[string]*scenario{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		var sc scenario
		if err := dec.Decode(&sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = &sc
	}
	return out
}

func statsMap(s ledger.Stats) map[string]int {
	m := map[string]int{
		"samples": s.Samples, "rollovers": s.Rollovers, "resets": s.Resets, "clamped": s.Clamped,
		"spikes": s.Spikes, "faults": s.Faults, "gaps": s.Gaps, "duplicates": s.Duplicates,
		"late": s.Late, "unusable": s.Unusable,
	}
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}

// events keeps the counts that describe the data, not its delivery.
func events(m map[string]int) map[string]int {
	out := map[string]int{}
	for _, k := range []string{"rollovers", "resets", "clamped", "spikes", "faults", "gaps"} {
		if m[k] != 0 {
			out[k] = m[k]
		}
	}
	return out
}

func checkStats(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if want == nil {
		want = map[string]int{}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s stats = %v, want %v", what, got, want)
	}
}

func checkBuckets(t *testing.T, what string, got []ledger.Bucket, want []wantBucket) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d buckets, want %d:\n%s", what, len(got), len(want), dump(got))
		return
	}
	for i, w := range want {
		g := got[i]
		if !g.Start.Equal(t0.Add(w.At)) || math.Abs(g.Volume-w.Volume) > tol ||
			g.Flags.String() != w.Flags || math.Abs(g.Coverage-w.Coverage) > tol {
			t.Errorf("%s: bucket %d = {%s %.9f %q %.4f}, want {%s %.9f %q %.4f}", what, i,
				g.Start.Sub(t0), g.Volume, g.Flags, g.Coverage, w.At, w.Volume, w.Flags, w.Coverage)
		}
	}
}

func dump(bs []ledger.Bucket) string {
	var b bytes.Buffer
	for _, x := range bs {
		fmt.Fprintf(&b, "  {at: %s, volume: %.9f, flags: %q, coverage: %.4f}\n", x.Start.Sub(t0), x.Volume, x.Flags, x.Coverage)
	}
	return b.String()
}

// TestScenarios runs every scenario through Compute, and through a Ledger in file order, in
// time order, reversed, shuffled and restarted after every reading: all must give the expected
// buckets.
func TestScenarios(t *testing.T) {
	for file, sc := range loadScenarios(t) {
		t.Run(file, func(t *testing.T) {
			spec := sc.spec()
			rs := sc.readings(t)
			sorted := slices.Clone(rs)
			slices.SortStableFunc(sorted, func(a, b collector.Reading) int { return a.Time.Compare(b.Time) })

			bs, st := ledger.Compute(spec, sorted)
			checkBuckets(t, "compute", bs, sc.Want.Buckets)
			checkStats(t, "compute", statsMap(st), sc.Want.Stats)

			orders := map[string][]collector.Reading{"file order": rs, "time order": sorted, "reversed": slices.Clone(rs)}
			slices.Reverse(orders["reversed"])
			for seed := range uint64(5) {
				sh := slices.Clone(rs)
				rnd := rand.New(rand.NewPCG(seed, 42))
				rnd.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
				orders[fmt.Sprintf("shuffle %d", seed)] = sh
			}
			for name, order := range orders {
				h, tb := newHistory(), table{}
				l := ledger.New([]ledger.MeterSpec{spec}, h, nil)
				feed(t, l, h, tb, order)
				checkBuckets(t, name, tb.sorted(), sc.Want.Buckets)
				checkStats(t, name+" events", events(statsMap(l.Stats(meter))), events(sc.Want.Stats))
				if name == "file order" && sc.Ledger != nil {
					checkStats(t, "ledger in file order", statsMap(l.Stats(meter)), sc.Ledger)
				}
			}

			// A restart after any reading: a new Ledger over the same History carries on.
			for k := 1; k < len(rs); k++ {
				h, tb := newHistory(), table{}
				feed(t, ledger.New([]ledger.MeterSpec{spec}, h, nil), h, tb, rs[:k])
				feed(t, ledger.New([]ledger.MeterSpec{spec}, h, nil), h, tb, rs[k:])
				checkBuckets(t, fmt.Sprintf("restart after %d", k), tb.sorted(), sc.Want.Buckets)
			}
		})
	}
}

// totalizer generates readings of a meter whose register counts up at a varying rate, wraps at
// max (when not 0), and is read at irregular times with gaps, unusable and repeated readings.
// want is the unwrapped difference between its first and last good readings.
func totalizer(rnd *rand.Rand, max float64, n int) (rs []collector.Reading, want float64) {
	v := rnd.Float64() * 50000
	if max > 0 {
		v = math.Mod(v+max-5000, max) // start near the top so that it wraps
	}
	t := t0.Add(time.Duration(rnd.IntN(3600)) * time.Second)
	rate := 0.5 + rnd.Float64()*20 // m³/h
	var prev float64
	have := false
	for i := range n {
		dt := time.Duration(1+rnd.IntN(150)) * time.Second
		if rnd.IntN(20) == 0 {
			dt = time.Duration(5+rnd.IntN(40)) * time.Minute // a gap
		}
		t = t.Add(dt)
		if rnd.IntN(10) == 0 {
			rate = 0.5 + rnd.Float64()*20
		}
		v += rate * dt.Hours()
		if max > 0 && v >= max {
			v -= max
		}
		val := math.Round(v*100) / 100
		if max > 0 && val >= max {
			val -= max
		}
		r := collector.Reading{Site: site, Meter: meter, Seq: uint64(i), Time: t,
			Points: []collector.Point{{Name: collector.PointTotal, Value: val, Quality: collector.Good}}}
		if rnd.IntN(15) == 0 {
			r.Points[0].Quality = collector.Bad
			r.Points[0].Value = rnd.Float64() * 1e6
			rs = append(rs, r)
			continue
		}
		if have {
			d := val - prev
			if d < 0 {
				d += max
			}
			want += d
		}
		prev, have = val, true
		rs = append(rs, r)
		if rnd.IntN(12) == 0 {
			rs = append(rs, r) // delivered twice
		}
	}
	return rs, want
}

// TestVolumeIsConserved: whatever the reading times, gaps, unusable readings, repeats and the
// order of delivery, the buckets add up to the totalizer's unwrapped difference.
func TestVolumeIsConserved(t *testing.T) {
	for seed := range uint64(60) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		max := []float64{0, 100000, 42949672.96}[seed%3]
		rs, want := totalizer(rnd, max, 80+rnd.IntN(80))
		spec := ledger.MeterSpec{Site: site, Meter: meter, RegisterMax: max, Interval: time.Minute}
		if seed%2 == 0 {
			spec.Q4 = 100 // well above the generated rates: no step may look like a spike
		}

		bs, st := ledger.Compute(spec, rs)
		if got := sum(bs); math.Abs(got-want) > tol {
			t.Errorf("seed %d: compute sums to %.9f, want %.9f", seed, got, want)
		}
		if st.Faults+st.Resets+st.Spikes+st.Clamped != 0 {
			t.Errorf("seed %d: compute found events in a clean totalizer: %+v", seed, st)
		}

		shuffled := slices.Clone(rs)
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for name, order := range map[string][]collector.Reading{"in order": rs, "shuffled": shuffled} {
			h, tb := newHistory(), table{}
			l := ledger.New([]ledger.MeterSpec{spec}, h, nil)
			feed(t, l, h, tb, order)
			got := tb.sorted()
			if s := sum(got); math.Abs(s-want) > tol {
				t.Errorf("seed %d %s: ledger sums to %.9f, want %.9f", seed, name, s, want)
			}
			if !sameBuckets(got, bs) {
				t.Errorf("seed %d %s: ledger buckets differ from compute", seed, name)
			}
			if ev, want := events(statsMap(l.Stats(meter))), events(statsMap(st)); fmt.Sprint(ev) != fmt.Sprint(want) {
				t.Errorf("seed %d %s: ledger events %v, compute %v", seed, name, ev, want)
			}
		}
	}
}

func sum(bs []ledger.Bucket) float64 {
	var s float64
	for _, b := range bs {
		s += b.Volume
	}
	return s
}

func sameBuckets(a, b []ledger.Bucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Start.Equal(b[i].Start) || a[i].Flags != b[i].Flags ||
			math.Abs(a[i].Volume-b[i].Volume) > tol || math.Abs(a[i].Coverage-b[i].Coverage) > tol {
			return false
		}
	}
	return true
}

// TestHistoryErrorChangesNothing: when History fails, Add returns the error and the same
// reading can be given again with the result it would have had.
func TestHistoryErrorChangesNothing(t *testing.T) {
	sc := loadScenarios(t)["late.yaml"]
	spec := sc.spec()
	rs := sc.readings(t)
	h, tb := newHistory(), table{}
	l := ledger.New([]ledger.MeterSpec{spec}, h, nil)
	for i, r := range rs {
		h.write(r)
		if i == 0 || i >= 4 { // the first reading (loads from History) and the late ones
			h.fail = errors.New("store down")
			if _, err := l.Add(context.Background(), r); !errors.Is(err, h.fail) {
				t.Fatalf("reading %d: err = %v, want the store's error", i, err)
			}
			h.fail = nil
		}
		feed(t, l, h, tb, rs[i:i+1])
	}
	checkBuckets(t, "after errors", tb.sorted(), sc.Want.Buckets)
	checkStats(t, "after errors", statsMap(l.Stats(meter)), sc.Ledger)
}

// TestUnknownMeter: a meter without a spec still gets its volumes.
func TestUnknownMeter(t *testing.T) {
	h, tb := newHistory(), table{}
	l := ledger.New(nil, h, nil)
	var rs []collector.Reading
	for i, v := range []float64{10, 11, 13} {
		rs = append(rs, collector.Reading{Site: site, Meter: "X9", Time: t0.Add(time.Duration(i) * time.Minute),
			Points: []collector.Point{{Name: collector.PointTotal, Value: v}}})
	}
	feed(t, l, h, tb, rs)
	if got := sum(tb.sorted()); got != 3 {
		t.Errorf("volume = %v, want 3", got)
	}
	if st := l.Stats("X9"); st.Samples != 3 {
		t.Errorf("samples = %d, want 3", st.Samples)
	}
}

// TestMetrics counts readings by outcome.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	sc := loadScenarios(t)["late.yaml"]
	h, tb := newHistory(), table{}
	l := ledger.New([]ledger.MeterSpec{sc.spec()}, h, nil, ledger.WithMetrics(ledger.NewMetrics(reg)))
	feed(t, l, h, tb, sc.readings(t))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, lp := range m.GetLabel() {
				name += "{" + lp.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"aqualoop_ledger_readings_total{loaded}":   1,
		"aqualoop_ledger_readings_total{in_order}": 3,
		"aqualoop_ledger_readings_total{late}":     3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if got["aqualoop_ledger_buckets_total"] < 7 {
		t.Errorf("buckets_total = %v, want at least the 7 buckets", got["aqualoop_ledger_buckets_total"])
	}
}

// benchReadings is a meter read every 10 s for n readings.
func benchReadings(n int) []collector.Reading {
	rs := make([]collector.Reading, n)
	v := 1000.0
	for i := range rs {
		v += 0.01 + float64(i%7)*0.003
		rs[i] = collector.Reading{Site: site, Meter: meter, Seq: uint64(i), Time: t0.Add(time.Duration(i) * 10 * time.Second),
			Points: []collector.Point{{Name: collector.PointTotal, Value: v}, {Name: collector.PointFlow, Value: 3.6}}}
	}
	return rs
}

// BenchmarkAdd measures in-order Adds of one meter read every 10 s (History writes included;
// they are an append).
func BenchmarkAdd(b *testing.B) {
	rs := benchReadings(b.N + 1)
	h := newHistory()
	l := ledger.New([]ledger.MeterSpec{{Site: site, Meter: meter, RegisterMax: 1e6, Q4: 100, Interval: 10 * time.Second}}, h, nil)
	ctx := context.Background()
	h.write(rs[0])
	if _, err := l.Add(ctx, rs[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 1; i <= b.N; i++ {
		h.write(rs[i])
		if _, err := l.Add(ctx, rs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
}

// BenchmarkAddLate measures Adds of readings that arrive one interval late (every other reading
// swapped with its successor), each recomputed from History.
func BenchmarkAddLate(b *testing.B) {
	rs := benchReadings(b.N + 2)
	for i := 1; i+1 < len(rs); i += 2 {
		rs[i], rs[i+1] = rs[i+1], rs[i]
	}
	h := newHistory()
	l := ledger.New([]ledger.MeterSpec{{Site: site, Meter: meter, RegisterMax: 1e6, Q4: 100, Interval: 10 * time.Second}}, h, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		h.write(rs[i])
		if _, err := l.Add(ctx, rs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
}

// BenchmarkCompute measures the pure core over a day of 10-second readings.
func BenchmarkCompute(b *testing.B) {
	rs := benchReadings(8640)
	spec := ledger.MeterSpec{Site: site, Meter: meter, RegisterMax: 1e6, Q4: 100, Interval: 10 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		ledger.Compute(spec, rs)
	}
	b.ReportMetric(float64(len(rs)*b.N)/b.Elapsed().Seconds(), "readings/s")
}

// glitchy generates readings of a meter full of trouble: spikes, dips, zeros, resets, reverse
// steps, gaps and unusable readings, dense enough that they follow each other.
func glitchy(rnd *rand.Rand, flowOnly bool, n int) []collector.Reading {
	var rs []collector.Reading
	t := t0.Add(time.Duration(rnd.IntN(600)) * time.Second)
	v := 99000 + rnd.Float64()*900
	for i := range n {
		dt := time.Duration(5+rnd.IntN(90)) * time.Second
		if rnd.IntN(25) == 0 {
			dt = time.Duration(4+rnd.IntN(10)) * time.Minute
		}
		t = t.Add(dt)
		v += rnd.Float64() * 0.02 * dt.Seconds() // up to 72 m³/h against a Q4 of 60
		if v >= 100000 {
			v -= 100000
		}
		val := v
		switch rnd.IntN(12) {
		case 0:
			val += 50 + rnd.Float64()*500 // spike
		case 1:
			val -= rnd.Float64() * 0.05 // dip within noise
		case 2:
			val = 0 // device answering 0
		case 3:
			v = rnd.Float64() * 3 // reset, persists
			val = v
		case 4:
			v -= 100 // reverse step, persists
			val = v
		}
		name, unit := collector.PointTotal, "m3"
		if flowOnly {
			name, unit = collector.PointFlow, "m3/h"
			val = rnd.Float64()*80 - 5 // some negative, some above Q4 × 1.1
		}
		q := collector.Good
		if rnd.IntN(15) == 0 {
			q = collector.Bad
		}
		rs = append(rs, collector.Reading{Site: site, Meter: meter, Seq: uint64(i), Time: t,
			Points: []collector.Point{{Name: name, Value: val, Unit: unit, Quality: q}}})
	}
	return rs
}

// TestLedgerMatchesCompute: however readings arrive (in order, shuffled, mostly in order with
// stragglers, across restarts), the buckets a Ledger leaves in the store and its event counts
// are exactly those of Compute over all readings.
func TestLedgerMatchesCompute(t *testing.T) {
	for seed := range uint64(120) {
		rnd := rand.New(rand.NewPCG(seed, 99))
		flowOnly := seed%4 == 3
		rs := glitchy(rnd, flowOnly, 40+rnd.IntN(60))
		spec := ledger.MeterSpec{Site: site, Meter: meter, RegisterMax: 100000, Q4: 60, FlowOnly: flowOnly, Interval: time.Minute}
		want, wst := ledger.Compute(spec, rs)

		order := slices.Clone(rs)
		switch seed % 3 {
		case 1:
			rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		case 2: // stragglers: some readings move a few places later
			for i := range order {
				if j := i + rnd.IntN(6); rnd.IntN(4) == 0 && j < len(order) {
					order[i], order[j] = order[j], order[i]
				}
			}
		}
		h, tb := newHistory(), table{}
		l := ledger.New([]ledger.MeterSpec{spec}, h, nil)
		var ev ledger.Stats
		for i := 0; i < len(order); {
			k := i + 1 + rnd.IntN(len(order)-i)
			feed(t, l, h, tb, order[i:k])
			i = k
			if seed%5 == 0 { // restart between batches
				st := l.Stats(meter)
				ev.Rollovers += st.Rollovers
				l = ledger.New([]ledger.MeterSpec{spec}, h, nil)
			}
		}
		if got := tb.sorted(); !sameBuckets(got, want) {
			t.Errorf("seed %d (flow only %v): ledger differs from compute\nledger:\n%s\ncompute:\n%s", seed, flowOnly, dump(got), dump(want))
			continue
		}
		if seed%5 != 0 {
			if got, want := events(statsMap(l.Stats(meter))), events(statsMap(wst)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("seed %d: ledger events %v, compute %v", seed, got, want)
			}
		}
	}
}

func TestSpecsOf(t *testing.T) {
	s := &analytics.Site{ID: "plant", Meters: []analytics.Meter{
		{ID: "M01", RegisterMax: 100000, Q4: 60, Interval: 15 * time.Second},
		{ID: "F02", FlowOnly: true, Q4: 200},
	}}
	got := ledger.SpecsOf(s)
	want := []ledger.MeterSpec{
		{Site: "plant", Meter: "M01", RegisterMax: 100000, Q4: 60, Interval: 15 * time.Second},
		{Site: "plant", Meter: "F02", FlowOnly: true, Q4: 200},
	}
	if !slices.Equal(got, want) {
		t.Errorf("SpecsOf = %+v, want %+v", got, want)
	}
}
