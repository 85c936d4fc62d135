package ledger_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// swapScenario is a ledger scenario with a replacement record (testdata/replacements).
type swapScenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Meter       struct {
		RegisterMax float64       `yaml:"register_max"`
		Q4          float64       `yaml:"q4"`
		Interval    time.Duration `yaml:"interval"`
	} `yaml:"meter"`
	Replacement struct {
		At         time.Duration `yaml:"at"`
		OldFinal   float64       `yaml:"old_final"`
		NewInitial float64       `yaml:"new_initial"`
	} `yaml:"replacement"`
	Readings []struct {
		At    time.Duration `yaml:"at"`
		Total float64       `yaml:"total"`
	} `yaml:"readings"`
	Want struct {
		Buckets       []wantBucket `yaml:"buckets"`
		WithoutRecord wantBucket   `yaml:"without_record"`
	} `yaml:"want"`
}

func checkBucket(t *testing.T, what string, got ledger.Bucket, w wantBucket) {
	t.Helper()
	if !got.Start.Equal(t0.Add(w.At)) || math.Abs(got.Volume-w.Volume) > tol || got.Flags.String() != w.Flags || math.Abs(got.Coverage-w.Coverage) > tol {
		t.Errorf("%s: bucket at %v = {%v %.6f %q %.3f}, want {%v %.6f %q %.3f}", what, got.Start.Sub(t0), got.Start.Sub(t0), got.Volume, got.Flags, got.Coverage,
			w.At, w.Volume, w.Flags, w.Coverage)
	}
}

// TestReplacementRecord: a swap's replacement record fills the reset interval's volume, whether
// the record is known when the readings arrive (Compute, Ledger.Add) or entered afterwards
// (Ledger.Recompute); without it the interval stays empty and flagged reset.
func TestReplacementRecord(t *testing.T) {
	data, err := os.ReadFile("testdata/replacements/swap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var sc swapScenario
	if err := dec.Decode(&sc); err != nil {
		t.Fatal(err)
	}
	spec := ledger.MeterSpec{Site: site, Meter: meter, RegisterMax: sc.Meter.RegisterMax, Q4: sc.Meter.Q4, Interval: sc.Meter.Interval}
	var rs []collector.Reading
	for i, r := range sc.Readings {
		rs = append(rs, collector.Reading{Site: site, Meter: meter, Seq: uint64(i + 1), Time: t0.Add(r.At),
			Points: []collector.Point{{Name: collector.PointTotal, Value: r.Total, Unit: "m3", Quality: collector.Good}}})
	}
	rec := ledger.Replacement{Time: t0.Add(sc.Replacement.At), OldFinal: sc.Replacement.OldFinal, NewInitial: sc.Replacement.NewInitial}
	known := true
	swaps := func(s, m string, from, to time.Time) (ledger.Replacement, bool) {
		if !known || s != site || m != meter || !rec.Time.After(from) || rec.Time.After(to) {
			return ledger.Replacement{}, false
		}
		return rec, true
	}

	bs, st := ledger.ComputeWith(spec, rs, swaps)
	if len(bs) != len(sc.Want.Buckets) {
		t.Fatalf("Compute: %d buckets, want %d", len(bs), len(sc.Want.Buckets))
	}
	for i, w := range sc.Want.Buckets {
		checkBucket(t, "Compute", bs[i], w)
	}
	if st.Resets != 1 {
		t.Errorf("Compute: %d resets counted, want 1 (a swap is still a reset)", st.Resets)
	}

	// The ledger fed in order with the record known.
	h := newHistory()
	tb := table{}
	feed(t, ledger.New([]ledger.MeterSpec{spec}, h, nil, ledger.WithReplacements(swaps)), h, tb, rs)
	got := tb.sorted()
	for i, w := range sc.Want.Buckets[:len(sc.Want.Buckets)-1] {
		checkBucket(t, "Ledger.Add", got[i], w)
	}

	// The record entered after the readings: the ledger first flags the reset, then Recompute
	// gives the interval's buckets with the volume.
	known = false
	h2 := newHistory()
	tb2 := table{}
	l := ledger.New([]ledger.MeterSpec{spec}, h2, nil, ledger.WithReplacements(swaps))
	feed(t, l, h2, tb2, rs)
	checkBucket(t, "before the record", tb2[t0.Add(sc.Want.WithoutRecord.At)], sc.Want.WithoutRecord)
	known = true
	re, err := l.Recompute(context.Background(), site, meter, rec.Time)
	if err != nil {
		t.Fatal(err)
	}
	if len(re) == 0 {
		t.Fatal("Recompute returned no bucket")
	}
	for _, b := range re {
		tb2[b.Start] = b
	}
	for i, w := range sc.Want.Buckets[:len(sc.Want.Buckets)-1] {
		checkBucket(t, "after Recompute", tb2.sorted()[i], w)
	}

	// A record that contradicts the readings (old final below the old meter's last reading) is
	// not used.
	rec.OldFinal = 4000
	bs, _ = ledger.ComputeWith(spec, rs, swaps)
	checkBucket(t, "contradicting record", bs[1], sc.Want.WithoutRecord)
}
