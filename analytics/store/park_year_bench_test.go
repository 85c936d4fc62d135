package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// The park year: the 500-meter park of BenchmarkParkMonth over the whole of 2026 in its zone
// (Asia/Shanghai). A year of 1-minute buckets would be 263 million rows, which this benchmark
// does not need: a period of whole local hours reads only roll-ups. So the fixture holds the
// roll-ups a year of buckets would have produced, generated directly, with no buckets:
//
//   - SQLite: every UTC hour from 2025-12-31T00:00Z for 367 days (4.4 M hour rows) and the days
//     summed from them in SQL;
//   - InfluxDB: every UTC day of the same span, and the UTC hours of the days that a local
//     month, day or year of the benchmarks reads at its edges (the last UTC day of every month,
//     and all of December 2026, for the evaluator's days); per meter and packed per site, with
//     the packed UTC months summed from the days.
//
// Each hour of a meter carries 60 buckets' worth (n = 60, coverage 60) with a volume that
// varies by meter and hour, so that no sum is trivially constant.

var parkYear = time.Date(2026, 1, 1, 0, 0, 0, 0, shanghai())

func shanghai() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err) // the test binary needs the zone database; time/tzdata is linked by Go's test runner where absent
	}
	return loc
}

const (
	yearHours = 367 * 24
)

var yearFirstHour = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)

func benchParkSites(b testing.TB) []*analytics.Site {
	var sites []*analytics.Site
	for i := range parkSites {
		var s analytics.Site
		if err := config.Parse("park-site.yaml", []byte(parkSite(fmt.Sprintf("site%d", i))), &s); err != nil {
			b.Fatal(err)
		}
		sites = append(sites, &s)
	}
	return sites
}

// hourVolume is the generated volume of meter index mi in hour i (both stores use it).
func hourVolume(perMinute float64, i, mi int) float64 {
	return perMinute * 60 * (1 + 0.1*float64((i*7+mi)%13)/13.0)
}

func perMinute(meter string) float64 {
	if strings.HasPrefix(meter, "R") {
		return 80
	}
	return 1
}

func yearInputs(sites []*analytics.Site) []engine.Input {
	var ins []engine.Input
	for _, s := range sites {
		for m := range 12 {
			q, z, d := 5000.0, 1200.0, 900.0
			from := parkYear.AddDate(0, m, 0)
			ins = append(ins, engine.Input{Site: s.ID, From: from, To: from.AddDate(0, 1, 0), Product: &q, ProductUnit: "t", OutputValue: &z, Steam: &d})
		}
	}
	return ins
}

func parkYearSQLite(b testing.TB, sites []*analytics.Site) *SQLite {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("aqualoop-bench-park-year-%dx%d-v1.db", parkSites, meterPerSite))
	done := path + ".complete"
	if _, err := os.Stat(done); err != nil {
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(f)
		}
		st, err := OpenSQLite(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		const gen = `WITH RECURSIVE hour(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM hour WHERE i < ?)
			INSERT INTO rollup_hours (site, meter, start, volume, coverage, n, flags)
			SELECT ?, ?, ? + i * 3600000000000, ? * 60 * (1 + 0.1 * ((i * 7 + ?) % 13) / 13.0), 60, 60, 0 FROM hour`
		ctx := context.Background()
		for si, s := range sites {
			tx, err := st.w.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			for mi, m := range s.Meters {
				if _, err := tx.ExecContext(ctx, gen, yearHours-1, s.ID, m.ID, yearFirstHour.UnixNano(), perMinute(m.ID), si*meterPerSite+mi); err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO bucket_meters (site, meter) VALUES (?, ?)`, s.ID, m.ID); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := st.w.ExecContext(ctx, fmt.Sprintf(`INSERT INTO rollup_days (site, meter, start, volume, coverage, n, flags)
			SELECT site, meter, start - (start %% %d) AS d, SUM(volume), SUM(coverage), SUM(n), 0 FROM rollup_hours GROUP BY site, meter, d`, dayNs)); err != nil {
			b.Fatal(err)
		}
		if err := st.WriteInputs(ctx, yearInputs(sites)); err != nil {
			b.Fatal(err)
		}
		if _, err := st.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		st.Close()
		b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	st, err := OpenSQLite(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func parkYearInflux(b testing.TB, sites []*analytics.Site) *Influx {
	in := testenv.InfluxDB(b)
	// The roll-ups in their own retention policy with year-long shard groups, as
	// docs/scale.md recommends; the buckets, inputs and results in autogen (weekly shards).
	st, err := OpenInflux(context.Background(), InfluxConfig{URLs: []string{in.URL()}, Bucket: "park/autogen", RollupBucket: "park/rollups", CreateDatabase: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	start := time.Now()
	wantHours := func(day time.Time) bool {
		return day.AddDate(0, 0, 1).Day() == 1 || !day.Before(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	}
	pt := func(measurement, site, meter string, at time.Time, vol, n float64) *write.Point {
		return write.NewPointWithMeasurement(measurement).AddTag("site", site).AddTag("meter", meter).
			AddField("volume", vol).AddField("coverage", n).AddField("n", int64(n)).AddField("flags", int64(0)).SetTime(at)
	}
	// The packed rows (packed.go) hold the same sums as the per-meter rows: per hour and day
	// every meter's row of that period, per UTC month every meter's days summed in order.
	parts := map[sitePart]int{}
	packed := func(pts []*write.Point, measurement, site string, at time.Time, rows map[string]sums) []*write.Point {
		p, err := packedPoints(parts, measurement, site, at.UnixNano(), rows)
		if err != nil {
			b.Fatal(err)
		}
		return append(pts, p...)
	}
	for si, s := range sites {
		var pts []*write.Point
		hours := map[time.Time]map[string]sums{}
		days := map[time.Time]map[string]sums{}
		months := map[time.Time]map[string]map[int64]sums{}
		for mi, m := range s.Meters {
			for d := range yearHours / 24 {
				day := yearFirstHour.AddDate(0, 0, d)
				sum := 0.0
				for h := range 24 {
					i := d*24 + h
					v := hourVolume(perMinute(m.ID), i, si*meterPerSite+mi)
					sum += v
					if wantHours(day) {
						at := day.Add(time.Duration(h) * time.Hour)
						pts = append(pts, pt("volume_hour", s.ID, m.ID, at, v, 60))
						if hours[at] == nil {
							hours[at] = map[string]sums{}
						}
						hours[at][m.ID] = sums{volume: v, coverage: 60, n: 60}
					}
				}
				pts = append(pts, pt("volume_day", s.ID, m.ID, day, sum, 24*60))
				if days[day] == nil {
					days[day] = map[string]sums{}
				}
				days[day][m.ID] = sums{volume: sum, coverage: 24 * 60, n: 24 * 60}
				month := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
				if months[month] == nil {
					months[month] = map[string]map[int64]sums{}
				}
				if months[month][m.ID] == nil {
					months[month][m.ID] = map[int64]sums{}
				}
				months[month][m.ID][day.UnixNano()] = days[day][m.ID]
			}
		}
		for at, rows := range hours {
			pts = packed(pts, "site_hour", s.ID, at, rows)
		}
		for at, rows := range days {
			pts = packed(pts, "site_day", s.ID, at, rows)
		}
		for at, perMeter := range months {
			rows := map[string]sums{}
			for m, ds := range perMeter {
				rows[m] = sumInOrder(ds)
			}
			pts = packed(pts, "site_month", s.ID, at, rows)
		}
		if err := st.writePointsTo(ctx, st.roller, "write fixture", pts); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.WriteInputs(ctx, yearInputs(sites)); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote the park year's roll-ups to influxd in %v", time.Since(start).Round(time.Second))
	return st
}

// ParkYearStore is what BenchmarkParkYear (store_test) reads.
type ParkYearStore interface {
	engine.Store
	Inputs(ctx context.Context, site string, from, to time.Time) ([]engine.Input, error)
	WriteInputs(ctx context.Context, ins []engine.Input) error
}

// ParkYearFixture opens the park year of kind "sqlite" or "influx" for BenchmarkParkYear.
func ParkYearFixture(b *testing.B, kind string) (ParkYearStore, []*analytics.Site) {
	sites := benchParkSites(b)
	if kind == "influx" {
		return parkYearInflux(b, sites), sites
	}
	return parkYearSQLite(b, sites), sites
}

// HourVolume and PerMinute are the fixture's generated volumes, for checks.
var (
	HourVolume    = hourVolume
	PerMinute     = perMinute
	YearFirstHour = yearFirstHour
	ParkYear      = parkYear
)

const MetersPerSite = meterPerSite
