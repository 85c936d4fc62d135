package store

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// TestSplit checks that the pieces of a range cover it exactly, in order, and that every
// roll-up piece holds whole hours or days.
func TestSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for range 5000 {
		lo := base + rng.Int64N(40*dayNs) - 20*dayNs
		hi := lo + rng.Int64N(40*dayNs)
		if rng.IntN(3) == 0 {
			lo = floorTo(lo, hourNs)
		}
		if rng.IntN(3) == 0 {
			hi = floorTo(hi, dayNs) - 1
		}
		if hi < lo {
			continue
		}
		ps := split(lo, hi)
		next := lo
		for _, p := range ps {
			if p.lo != next || p.hi < p.lo {
				t.Fatalf("split(%d, %d) = %+v: gap or overlap at %d", lo, hi, ps, next)
			}
			step := int64(0)
			switch p.kind {
			case fromHours:
				step = hourNs
			case fromDays:
				step = dayNs
			}
			if step > 0 && (p.lo%step != 0 || (p.hi+1)%step != 0) {
				t.Fatalf("split(%d, %d): piece %+v is not whole periods", lo, hi, p)
			}
			next = p.hi + 1
		}
		if next != hi+1 {
			t.Fatalf("split(%d, %d) = %+v ends at %d", lo, hi, ps, next-1)
		}
	}
	if ps := split(minNanos, maxNanos); len(ps) != 5 {
		t.Errorf("the whole storable range splits into %d pieces, want 5", len(ps))
	}
	for _, r := range [][2]int64{{maxNanos - 5, maxNanos}, {minNanos, minNanos + 5}, {maxNanos - 3*dayNs, maxNanos}} {
		if ps := split(r[0], r[1]); ps[0].lo != r[0] || ps[len(ps)-1].hi != r[1] {
			t.Errorf("split(%d, %d) = %+v", r[0], r[1], ps)
		}
	}
}

// TestSplitMonths checks splitMonths as TestSplit checks split, and that its month pieces are
// whole UTC calendar months with no whole month left in a run of days.
func TestSplitMonths(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	isMonthStart := func(x int64) bool { return floorMonth(x) == x }
	months := 0
	check := func(lo, hi int64) {
		ps := splitMonths(lo, hi)
		next := lo
		for _, p := range ps {
			if p.lo != next || p.hi < p.lo {
				t.Fatalf("splitMonths(%d, %d) = %+v: gap or overlap at %d", lo, hi, ps, next)
			}
			switch p.kind {
			case fromMonths:
				months++
				if !isMonthStart(p.lo) || !isMonthStart(p.hi+1) {
					t.Fatalf("splitMonths(%d, %d): piece %+v is not whole months", lo, hi, p)
				}
			case fromDays:
				if p.lo%dayNs != 0 || (p.hi+1)%dayNs != 0 {
					t.Fatalf("splitMonths(%d, %d): piece %+v is not whole days", lo, hi, p)
				}
				if m0 := ceilMonth(p.lo); m0 < p.hi && ceilMonth(m0+1) <= p.hi+1 {
					t.Fatalf("splitMonths(%d, %d): days %+v hold the whole month from %v", lo, hi, p, fromNanos(m0))
				}
			}
			next = p.hi + 1
		}
		if next != hi+1 {
			t.Fatalf("splitMonths(%d, %d) = %+v ends at %d", lo, hi, ps, next-1)
		}
	}
	for range 5000 {
		lo := base + rng.Int64N(400*dayNs) - 200*dayNs
		hi := lo + rng.Int64N(400*dayNs)
		switch rng.IntN(4) {
		case 0:
			lo = floorMonth(lo)
		case 1:
			lo = floorTo(lo, dayNs)
		}
		if rng.IntN(3) == 0 {
			hi = floorMonth(hi) - 1
		}
		if hi >= lo {
			check(lo, hi)
		}
	}
	if months < 2000 {
		t.Errorf("only %d month pieces in 5000 ranges", months)
	}
	for _, r := range [][2]int64{{minNanos, maxNanos}, {maxNanos - 5, maxNanos}, {minNanos, minNanos + 5}, {maxNanos - 90*dayNs, maxNanos}, {minNanos, minNanos + 90*dayNs}} {
		check(r[0], r[1])
	}
}

func TestRollupsSQLite(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testRollups(t, s, nil)
}

// TestRollupsInflux also restarts the store half-way, so that the roll-up cache is loaded from
// what the first instance stored.
func TestRollupsInflux(t *testing.T) {
	in := testenv.InfluxDB(t)
	in.CreateDatabase(t, "aqualoop")
	open := func() rollupStore {
		s, err := OpenInflux(context.Background(), InfluxConfig{URLs: []string{in.URL()}, Bucket: "aqualoop/autogen"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	testRollups(t, open(), open)
}

type rollupStore interface {
	WriteBuckets(ctx context.Context, bs []ledger.Bucket) error
	MeterTotals(ctx context.Context, site string, from, to time.Time) ([]engine.MeterTotal, error)
}

// testRollups is the property of roll-ups: whatever the period, in whatever time zone, and
// whatever order buckets arrive in (late ones, corrected ones), MeterTotals answers what summing
// the stored buckets answers. The buckets are random in volume, coverage and flags and sparse
// in time, so some hours and days hold one bucket and some none.
//
// The data runs from 20 February to 5 April, so that periods spanning a month in any of the
// zones hold the whole of March (UTC), which InfluxDB reads from its packed month rows. With
// reopen, the store is opened again (a restart) after the second round.
func testRollups(t *testing.T, s rollupStore, reopen func() rollupStore) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	const rsite = "roll.site-1"
	meters := []string{"A", "B", "C"}
	start := time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
	const span = 45 * 24 * 60 // minutes
	truth := map[[2]any]ledger.Bucket{}
	random := func() ledger.Bucket {
		b := ledger.Bucket{
			Site:     rsite,
			Meter:    meters[rng.IntN(len(meters))],
			Start:    start.Add(time.Duration(rng.IntN(span)) * time.Minute),
			Volume:   math.Round(rng.Float64()*1e6) / 1e3,
			Coverage: float64(rng.IntN(5)) / 4,
		}
		if rng.IntN(8) == 0 {
			b.Flags = ledger.Flag(1 << rng.IntN(8))
		}
		return b
	}
	write := func(n int) {
		bs := make([]ledger.Bucket, n)
		for i := range bs {
			bs[i] = random()
		}
		if err := s.WriteBuckets(ctx, bs); err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			truth[[2]any{b.Meter, b.Start.UnixNano()}] = b
		}
	}
	zones := []*time.Location{time.UTC}
	for _, name := range []string{"Asia/Shanghai", "Asia/Kolkata", "America/St_Johns"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, loc)
	}
	period := func() (time.Time, time.Time) {
		loc := zones[rng.IntN(len(zones))]
		from := start.Add(time.Duration(rng.Int64N(int64(span) * int64(time.Minute)))).Add(-24 * time.Hour).In(loc)
		switch rng.IntN(6) {
		case 0: // a local day or several
			from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
			return from, from.AddDate(0, 0, 1+rng.IntN(10))
		case 1: // local hours
			from = from.Truncate(time.Hour)
			return from, from.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
		case 2: // the whole range, in local months
			from = time.Date(2026, 2, 1, 0, 0, 0, 0, loc)
			return from, from.AddDate(0, 3, 0)
		case 3: // a local month, or two
			from = time.Date(2026, time.Month(2+rng.IntN(3)), 1, 0, 0, 0, 0, loc)
			return from, from.AddDate(0, 1+rng.IntN(2), 0)
		case 4: // from a day in February to a day in April, minutes at either end
			from = time.Date(2026, 2, 15+rng.IntN(14), rng.IntN(24), rng.IntN(60), 0, 0, loc)
			return from, time.Date(2026, 4, 1+rng.IntN(7), rng.IntN(24), rng.IntN(60), 0, 0, loc)
		}
		return from.Truncate(time.Minute), from.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
	}
	monthPeriods := 0
	check := func(round int) {
		for i := range 40 {
			from, to := period()
			if lo, hi, ok := bounds(from, to); ok && slices.ContainsFunc(splitMonths(lo, hi), func(p piece) bool { return p.kind == fromMonths }) {
				monthPeriods++
			}
			got, err := s.MeterTotals(ctx, rsite, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var in []ledger.Bucket
			for _, b := range truth {
				if !b.Start.Before(from) && b.Start.Before(to) {
					in = append(in, b)
				}
			}
			want := engine.Totals(in)
			if len(got) != len(want) {
				t.Fatalf("round %d period %d [%v, %v): %d meters, want %d", round, i, from, to, len(got), len(want))
			}
			for j := range want {
				g, w := got[j], want[j]
				if g.Meter != w.Meter || g.Buckets != w.Buckets || g.Flags != w.Flags ||
					math.Abs(g.Volume-w.Volume) > 1e-9*math.Max(1, w.Volume) || math.Abs(g.Coverage-w.Coverage) > 1e-9*math.Max(1, w.Coverage) {
					t.Fatalf("round %d period %d [%v, %v):\n got  %+v\n want %+v", round, i, from, to, g, w)
				}
			}
		}
	}
	// Batches in random order: every batch after the first is late for some meter, and a
	// bucket written again (same meter and minute) is a correction.
	for round := range 4 {
		if round == 2 && reopen != nil {
			s = reopen()
		}
		for range 3 {
			write(300 + rng.IntN(300))
		}
		check(round)
	}
	if len(truth) < 3000 {
		t.Fatalf("only %d distinct buckets: the property saw too little data", len(truth))
	}
	if monthPeriods < 20 {
		t.Fatalf("only %d of the periods hold a whole UTC month", monthPeriods)
	}
}

// TestFlagBits: the roll-ups' union of flags covers every flag the ledger defines.
func TestFlagBits(t *testing.T) {
	if ledger.Fault >= 1<<flagBits {
		t.Fatalf("ledger flags reach %d; raise flagBits", ledger.Fault)
	}
}
