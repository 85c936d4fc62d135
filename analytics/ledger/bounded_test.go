package ledger_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// TestFarApartReadingsCostLittle feeds readings decades and centuries apart, in and out of
// order, through a Ledger: each Add must return a bounded number of buckets (the default
// MaxSpread of a day is 1 441 minutes at most, whatever the distance), finish, and conserve the
// volume. Before MaxSpread, a reading dated 1970 next to one of 2026 asked for 29 million buckets
// and one dated 2199 never returned.
func TestFarApartReadingsCostLittle(t *testing.T) {
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
	order := []struct {
		t     time.Time
		total float64
	}{
		{at(2026, 11, 1), 1000},
		{at(2026, 11, 1).Add(time.Minute), 1001},
		{at(2199, 1, 1), 9000},
		{at(1970, 1, 2), 10},
		{at(2027, 11, 1), 2000},
		{at(2036, 11, 1), 5000},
		{at(2026, 11, 1).Add(2 * time.Minute), 1002},
		{at(1677, 9, 22), 1},
		{at(2262, 1, 1), 9999},
	}
	spec := ledger.MeterSpec{Site: site, Meter: meter, RegisterMax: 100000}
	h, tb := newHistory(), table{}
	l := ledger.New([]ledger.MeterSpec{spec}, h, nil)
	var rs []collector.Reading
	for i, o := range order {
		r := collector.Reading{Site: site, Meter: meter, Seq: uint64(i + 1), Time: o.t, TimeSource: collector.TimeSourceCollector,
			Points: []collector.Point{{Name: collector.PointTotal, Value: o.total, Quality: collector.Good}}}
		rs = append(rs, r)
		h.write(r)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		bs, err := l.Add(ctx, r)
		cancel()
		if err != nil {
			t.Fatalf("add reading %d (%v): %v", i, o.t, err)
		}
		if len(bs) > 3*1441 {
			t.Fatalf("reading %d (%v) changed %d buckets; a long gap must cost a few", i, o.t, len(bs))
		}
		for _, b := range bs {
			tb[b.Start] = b
		}
	}
	got := sum(tb.sorted())
	// 1 → 10 → 1000 → 1001 → 1002 → 2000 → 5000 → 9000 → 9999, all increases.
	if want := 9999.0 - 1; math.Abs(got-want) > 1e-6 {
		t.Errorf("ledger holds %v m³, want %v", got, want)
	}
	bs, _ := ledger.Compute(spec, rs)
	if len(bs) > 20*1441 {
		t.Errorf("Compute returned %d buckets for %d readings", len(bs), len(rs))
	}
	if c := sum(bs); math.Abs(c-got) > 1e-6 {
		t.Errorf("Compute holds %v m³, the ledger %v", c, got)
	}
	if len(tb) > 40 {
		t.Errorf("ledger table has %d buckets for %d readings far apart; want a few per reading", len(tb), len(rs))
	}
	for _, b := range tb {
		if b.Volume > 0 && b.Coverage == 0 && b.Flags&ledger.Gap == 0 {
			t.Errorf("uncovered bucket %v with %v m³ not flagged gap", b.Start, b.Volume)
		}
	}
}
