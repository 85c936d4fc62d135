package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// The contract runs against both back ends: whatever passes here behaves the same for ingest,
// the ledger and the engine on either store.

func TestSQLite(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	testStore(t, s)
	testEngineStore(t, s)
}

func TestInflux(t *testing.T) {
	s := openTestInflux(t)
	// Small batches and chunks, so that the contract's few readings already go through split
	// writes and multi-document chunked answers.
	s.maxBatch, s.chunkSize = 7, 5
	testStore(t, s)
	testEngineStore(t, s)
}

// openTestInflux starts influxd, creates a database and opens the store on it, with an
// unreachable URL first to show that the first reachable one is used.
func openTestInflux(t testing.TB) *Influx {
	t.Helper()
	in := testenv.InfluxDB(t)
	in.CreateDatabase(t, "aqualoop")
	cfg := InfluxConfig{
		URLs:   []string{"http://" + deadAddr(t), in.URL()},
		Bucket: "aqualoop/autogen",
	}
	s, err := OpenInflux(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC)

const site = "plant-7.north" // '-' and '.' need quoting in InfluxQL identifiers

func reading(site, meter string, at time.Time, seq uint64, total float64) collector.Reading {
	return collector.Reading{
		Site: site, Meter: meter, Edge: "edge-1", Seq: seq, Time: at,
		TimeSource: collector.TimeSourceCollector,
		Points: []collector.Point{
			{Name: collector.PointTotal, Value: total, Unit: "m3"},
			{Name: collector.PointFlow, Value: 12.5, Unit: "m3/h"},
		},
	}
}

func sameReadings(t *testing.T, what string, got, want []collector.Reading) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %d readings %+v\n want %d readings %+v", what, len(got), got, len(want), want)
	}
}

func times(rs []collector.Reading) []time.Time {
	var ts []time.Time
	for _, r := range rs {
		ts = append(ts, r.Time)
	}
	return ts
}

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	far := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

	t.Run("readings round trip", func(t *testing.T) {
		good := collector.Reading{
			Site: site, Meter: "FT-101", Edge: "edge-1.a", Seq: 1 << 40, Time: t0,
			TimeSource: collector.TimeSourceDevice,
			Points: []collector.Point{
				{Name: collector.PointTotal, Value: 123456.789012345, Unit: "m3"},
				{Name: collector.PointFlow, Value: -0.000123456789, Unit: "m3/h", Quality: collector.Uncertain, Code: 0x40920000},
				{Name: "conductivity", Value: 1.5e12, Unit: "uS/cm"},
			},
		}
		bad := collector.Reading{
			Site: site, Meter: "FT-101", Seq: 1<<40 + 1, Time: t0.Add(time.Minute),
			TimeSource: collector.TimeSourceServer,
			Points: []collector.Point{
				{Name: collector.PointTotal, Value: 123457, Unit: "m3"},
				{Name: collector.PointFlow, Unit: "m3/h", Quality: collector.Bad, Code: 2,
					Error: "modbus exception 2 \"illegal data address\"\n\tat C:\\meters\\ft101 <é>"},
			},
		}
		// One nanosecond later: time is kept to the nanosecond.
		next := reading(site, "FT-101", bad.Time.Add(time.Nanosecond), 1<<40+2, 123457.5)
		if err := s.WriteReadings(ctx, []collector.Reading{next, good, bad}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Readings(ctx, site, "FT-101", t0, far)
		if err != nil {
			t.Fatal(err)
		}
		sameReadings(t, "Readings", got, []collector.Reading{good, bad, next})
	})

	t.Run("first reading kept, conflicts set aside", func(t *testing.T) {
		ev, ok := s.(Evidence)
		if !ok {
			t.Fatalf("%T does not keep conflicting readings (store.Evidence)", s)
		}
		first := reading(site, "FT-102", t0, 7, 100)
		first.Points = append(first.Points, collector.Point{Name: "pressure", Value: 3.2, Unit: "bar", Quality: collector.Uncertain, Code: 9})
		second := reading(site, "FT-102", t0, 8, 101)
		second.Edge = "edge-2"
		second.Points[1] = collector.Point{Name: collector.PointFlow, Quality: collector.Bad, Code: 4, Error: "timeout"}
		// Same seq, another value: a conflict too.
		third := reading(site, "FT-102", t0, 7, 100.5)
		if err := s.WriteReadings(ctx, []collector.Reading{first}); err != nil {
			t.Fatal(err)
		}
		// The replay of the first, the second twice and the third, in two batches: each
		// conflicting version is kept once, the replay not at all.
		if err := s.WriteReadings(ctx, []collector.Reading{second, first, second}); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteReadings(ctx, []collector.Reading{third, second, first}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Readings(ctx, site, "FT-102", time.Time{}, far)
		if err != nil {
			t.Fatal(err)
		}
		sameReadings(t, "Readings after conflicts", got, []collector.Reading{first})
		last, ok, err := s.LastReading(ctx, site, "FT-102", far)
		if err != nil || !ok {
			t.Fatalf("LastReading: %v %v", ok, err)
		}
		sameReadings(t, "LastReading after conflicts", []collector.Reading{last}, []collector.Reading{first})

		cs, err := ev.Conflicts(ctx, site, "FT-102", time.Time{}, far)
		if err != nil {
			t.Fatal(err)
		}
		var set []collector.Reading
		for _, c := range cs {
			if c.Received.IsZero() {
				t.Errorf("conflict %+v has no received time", c.Reading)
			}
			set = append(set, c.Reading)
		}
		slices.SortFunc(set, func(a, b collector.Reading) int { return int(a.Seq) - int(b.Seq) })
		sameReadings(t, "Conflicts", set, []collector.Reading{third, second})

		// Every meter of the site, and a range that excludes them.
		all, err := ev.Conflicts(ctx, site, "", t0, t0.Add(time.Nanosecond))
		if err != nil || len(all) != 2 {
			t.Errorf("Conflicts of every meter: %d, %v; want 2", len(all), err)
		}
		none, err := ev.Conflicts(ctx, site, "FT-102", t0.Add(time.Nanosecond), far)
		if err != nil || len(none) != 0 {
			t.Errorf("Conflicts after t0: %d, %v; want 0", len(none), err)
		}
		other, err := ev.Conflicts(ctx, site, "FT-101", time.Time{}, far)
		if err != nil || len(other) != 0 {
			t.Errorf("Conflicts of FT-101: %d, %v; want 0", len(other), err)
		}
	})

	t.Run("range bounds", func(t *testing.T) {
		var all []collector.Reading
		for i := range 4 {
			all = append(all, reading(site, "FT-103", t0.Add(time.Duration(i)*time.Minute), uint64(i), float64(i)))
		}
		if err := s.WriteReadings(ctx, all); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			from, to time.Time
			want     []collector.Reading
		}{
			{"from is included, to is excluded", t0.Add(time.Minute), t0.Add(3 * time.Minute), all[1:3]},
			{"everything", time.Time{}, far, all},
			{"empty range", t0, t0, nil},
			{"one nanosecond", t0.Add(3 * time.Minute), t0.Add(3*time.Minute + 1), all[3:]},
			{"just before the first", t0.Add(-time.Hour), t0, nil},
			{"reversed", t0.Add(3 * time.Minute), t0, nil},
			{"after the last", t0.Add(3*time.Minute + 1), far, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Readings(ctx, site, "FT-103", tt.from, tt.to)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(times(got), times(tt.want)) {
					t.Errorf("Readings(%v, %v) times = %v, want %v", tt.from, tt.to, times(got), times(tt.want))
				}
			})
		}
	})

	t.Run("last reading", func(t *testing.T) {
		a := reading(site, "FT-104", t0, 1, 10)
		b := reading(site, "FT-104", t0.Add(time.Minute), 2, 11)
		if err := s.WriteReadings(ctx, []collector.Reading{b, a}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			meter  string
			at     time.Time
			want   collector.Reading
			wantOK bool
		}{
			{"between", "FT-104", t0.Add(30 * time.Second), a, true},
			{"exactly at", "FT-104", b.Time, b, true},
			{"one nanosecond before", "FT-104", b.Time.Add(-1), a, true},
			{"far future", "FT-104", far, b, true},
			{"before the first", "FT-104", t0.Add(-1), collector.Reading{}, false},
			{"zero time", "FT-104", time.Time{}, collector.Reading{}, false},
			{"unknown meter", "FT-999", far, collector.Reading{}, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, ok, err := s.LastReading(ctx, site, tt.meter, tt.at)
				if err != nil {
					t.Fatal(err)
				}
				if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
					t.Errorf("LastReading(%s, %v) = %+v, %v; want %+v, %v", tt.meter, tt.at, got, ok, tt.want, tt.wantOK)
				}
			})
		}
	})

	t.Run("buckets", func(t *testing.T) {
		const bsite = "park-2.east"
		m := ledger.Align(t0)
		b := func(meter string, min int, vol float64, flags ledger.Flag, cov float64) ledger.Bucket {
			return ledger.Bucket{Site: bsite, Meter: meter, Start: m.Add(time.Duration(min) * time.Minute), Volume: vol, Flags: flags, Coverage: cov}
		}
		in := []ledger.Bucket{
			b("M2", 1, 0.25, 0, 1),
			b("M1", 2, 1.125, ledger.Gap|ledger.Estimated, 0.5),
			b("M2", 0, 0.5, 0, 1),
			b("M1", 0, 1.0, 0, 1),
			b("M1", 1, 0.75, ledger.Rollover, 1),
			b("M1", 3, 9, 0, 1),
		}
		if err := s.WriteBuckets(ctx, in); err != nil {
			t.Fatal(err)
		}
		// Late data replaces a bucket.
		if err := s.WriteBuckets(ctx, []ledger.Bucket{b("M1", 1, 0.875, ledger.Rollover|ledger.Spike, 0.75)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Buckets(ctx, bsite, m, m.Add(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		want := []ledger.Bucket{
			b("M1", 0, 1.0, 0, 1),
			b("M1", 1, 0.875, ledger.Rollover|ledger.Spike, 0.75),
			b("M1", 2, 1.125, ledger.Gap|ledger.Estimated, 0.5),
			b("M2", 0, 0.5, 0, 1),
			b("M2", 1, 0.25, 0, 1),
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Buckets:\n got  %+v\n want %+v", got, want)
		}
		got, err = s.Buckets(ctx, bsite, m.Add(time.Minute), m.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if want := []ledger.Bucket{b("M1", 1, 0.875, ledger.Rollover|ledger.Spike, 0.75), b("M2", 1, 0.25, 0, 1)}; !reflect.DeepEqual(got, want) {
			t.Errorf("Buckets of one minute:\n got  %+v\n want %+v", got, want)
		}
		got, err = s.Buckets(ctx, "park-2", time.Time{}, far)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("a site whose id is a prefix of another sees %d buckets: %+v", len(got), got)
		}
	})

	t.Run("sites kept apart", func(t *testing.T) {
		a := reading("site-a.1", "M01", t0, 1, 111)
		b := reading("site-b.1", "M01", t0, 1, 222)
		if err := s.WriteReadings(ctx, []collector.Reading{a, b}); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteBuckets(ctx, []ledger.Bucket{
			{Site: "site-a.1", Meter: "M01", Start: ledger.Align(t0), Volume: 1, Coverage: 1},
			{Site: "site-b.1", Meter: "M01", Start: ledger.Align(t0), Volume: 2, Coverage: 1},
		}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []collector.Reading{a, b} {
			got, err := s.Readings(ctx, want.Site, "M01", time.Time{}, far)
			if err != nil {
				t.Fatal(err)
			}
			sameReadings(t, "Readings of "+want.Site, got, []collector.Reading{want})
			last, ok, err := s.LastReading(ctx, want.Site, "M01", far)
			if err != nil || !ok {
				t.Fatalf("LastReading(%s) = %v, %v", want.Site, ok, err)
			}
			sameReadings(t, "LastReading of "+want.Site, []collector.Reading{last}, []collector.Reading{want})
		}
		for site, vol := range map[string]float64{"site-a.1": 1, "site-b.1": 2} {
			got, err := s.Buckets(ctx, site, time.Time{}, far)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Volume != vol {
				t.Errorf("Buckets(%s) = %+v, want one of volume %v", site, got, vol)
			}
		}
	})

	t.Run("ids that need escaping", func(t *testing.T) {
		// Not valid on the wire (wire.ValidID), but the store must not depend on that.
		const odd = `FT 1'o"c\k`
		r := reading(site, odd, t0, 5, 55)
		if err := s.WriteReadings(ctx, []collector.Reading{r, reading(site, "FT 1", t0, 6, 66)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Readings(ctx, site, odd, time.Time{}, far)
		if err != nil {
			t.Fatal(err)
		}
		sameReadings(t, "Readings of "+odd, got, []collector.Reading{r})
	})

	t.Run("rejected data", func(t *testing.T) {
		nan := reading(site, "FT-105", t0, 1, math.NaN())
		zero := reading(site, "FT-105", time.Time{}, 1, 1)
		tooLate := reading(site, "FT-105", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 1, 1)
		noSite := reading("", "FT-105", t0, 1, 1)
		hugeSeq := reading(site, "FT-105", t0, math.MaxUint64, 1)
		for name, r := range map[string]collector.Reading{"NaN": nan, "zero time": zero, "after 2262": tooLate, "no site": noSite, "seq above int64": hugeSeq} {
			if err := s.WriteReadings(ctx, []collector.Reading{reading(site, "FT-105", t0.Add(time.Hour), 1, 1), r}); !errors.Is(err, ErrRejected) {
				t.Errorf("%s: WriteReadings = %v, want ErrRejected", name, err)
			}
		}
		if err := s.WriteBuckets(ctx, []ledger.Bucket{{Site: site, Meter: "FT-105", Start: t0, Volume: math.Inf(1)}}); !errors.Is(err, ErrRejected) {
			t.Errorf("infinite volume: WriteBuckets = %v, want ErrRejected", err)
		}
		// A rejected batch is refused before anything is written.
		got, err := s.Readings(ctx, site, "FT-105", time.Time{}, far)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("a rejected batch left %d readings", len(got))
		}
		if err := s.WriteReadings(ctx, nil); err != nil {
			t.Errorf("writing nothing: %v", err)
		}
		if err := s.WriteBuckets(ctx, nil); err != nil {
			t.Errorf("writing no buckets: %v", err)
		}
	})

	t.Run("concurrent writers", func(t *testing.T) {
		const writers, each = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				meter := fmt.Sprintf("CW-%d", w)
				for i := range each {
					r := reading(site, meter, t0.Add(time.Duration(i)*time.Second), uint64(i), float64(i))
					if err := s.WriteReadings(ctx, []collector.Reading{r}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for w := range writers {
			got, err := s.Readings(ctx, site, fmt.Sprintf("CW-%d", w), time.Time{}, far)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != each {
				t.Errorf("writer %d: %d readings stored, want %d", w, len(got), each)
			}
		}
	})
}

// BenchmarkWriteReadings writes batches of readings of two points each, as ingest does after a
// broker outage.
func BenchmarkWriteReadings(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"sqlite", func(b *testing.B) Store {
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"influx", func(b *testing.B) Store { return openTestInflux(b) }},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			for _, batch := range []int{1, 100, 1000} {
				b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
					ctx := context.Background()
					rs := make([]collector.Reading, batch)
					start := time.Now().Truncate(time.Second)
					n := 0
					for b.Loop() {
						for i := range rs {
							rs[i] = reading(site, fmt.Sprintf("B-%d", i%20), start.Add(time.Duration(n)*time.Millisecond), uint64(n), float64(n))
							n++
						}
						if err := s.WriteReadings(ctx, rs); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
				})
			}
		})
	}
}
