package report_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/report"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
)

// benchSite is a synthetic site of 500 meters, shaped like the store's park benchmark site:
// two intakes into a distribution main, 98 workshops (supply and effluent metered, use derived,
// one cascade), 100 indirect cooling loops (make-up, circulation and blowdown metered,
// evaporation derived) and the site discharge.
func benchSite() string {
	const workshops, loops = 98, 100
	var b, meters, flows strings.Builder
	b.WriteString("id: big\nname: 500-meter site\ntimezone: Asia/Shanghai\nnodes:\n")
	b.WriteString("  - {id: city, type: source, kind: municipal}\n  - {id: well, type: source, kind: well}\n")
	b.WriteString("  - {id: dist, type: unit, kind: distribution}\n  - {id: outfall, type: unit, kind: outfall}\n")
	b.WriteString("  - {id: sewer, type: sink, kind: discharge}\n  - {id: product, type: sink, kind: consumption}\n  - {id: air, type: sink, kind: consumption}\n")
	meter := func(id string, level int, parent string) {
		fmt.Fprintf(&meters, "  - {id: %s, level: %d, parent: %q, dn: 80, verified_on: \"2025-06-01\"}\n", id, level, parent)
	}
	flow := func(id, from, to, kind, m string) {
		fmt.Fprintf(&flows, "  - {id: %s, from: %s, to: %s, kind: %s, meter: %s}\n", id, from, to, kind, m)
	}
	meter("MC", 1, "")
	meter("MW", 1, "")
	meter("MD", 1, "")
	flow("city_in", "city", "dist", "intake", "MC")
	flow("well_in", "well", "dist", "intake", "MW")
	flow("discharge", "outfall", "sewer", "discharge", "MD")
	for i := range workshops {
		w := fmt.Sprintf("w%02d", i)
		fmt.Fprintf(&b, "  - {id: %s, type: unit, kind: workshop}\n", w)
		meter("S"+w, 2, "MC")
		meter("E"+w, 2, "")
		flow(w+"_in", "dist", w, "internal", "S"+w)
		flow(w+"_out", w, "outfall", "internal", "E"+w)
		switch i {
		case 0:
			fmt.Fprintf(&flows, "  - {id: %s_use, from: %s, to: product, kind: consumption, derived: {add: [%s_in], sub: [%s_out, cascade]}}\n", w, w, w, w)
		case 1:
			fmt.Fprintf(&flows, "  - {id: %s_use, from: %s, to: product, kind: consumption, derived: {add: [%s_in, cascade], sub: [%s_out]}}\n", w, w, w, w)
		default:
			fmt.Fprintf(&flows, "  - {id: %s_use, from: %s, to: product, kind: consumption, derived: {add: [%s_in], sub: [%s_out]}}\n", w, w, w, w)
		}
	}
	meter("CAS", 2, "")
	flow("cascade", "w00", "w01", "cascade", "CAS")
	for i := range loops {
		c := fmt.Sprintf("c%02d", i)
		fmt.Fprintf(&b, "  - {id: %s, type: unit, kind: cooling_indirect}\n", c)
		meter("M"+c, 2, "MW")
		meter("R"+c, 3, "")
		meter("B"+c, 3, "")
		flow(c+"_makeup", "dist", c, "internal", "M"+c)
		flow(c+"_circ", c, c, "circulating", "R"+c)
		flow(c+"_blowdown", c, "outfall", "internal", "B"+c)
		fmt.Fprintf(&flows, "  - {id: %s_evap, from: %s, to: air, kind: consumption, derived: {add: [%s_makeup], sub: [%s_blowdown]}}\n", c, c, c, c)
	}
	b.WriteString("meters:\n" + meters.String() + "flows:\n" + flows.String())
	b.WriteString("plans:\n  - {period: year, year: 2024, volume: 9.0e7}\n  - {period: year, year: 2025, volume: 9.0e7}\n  - {period: year, year: 2026, volume: 9.0e7}\n")
	b.WriteString("indicators:\n  benchmark: {sector: all, year: 2021, reuse_rate: 0.929, source: bench}\n")
	return b.String()
}

// benchFixture opens (building it the first time, kept in the temporary folder) a SQLite store
// with 2026 of the 500-meter site at one bucket per meter per `step`, from `from` to `to`.
func benchFixture(b *testing.B, name string, from, to time.Time, step time.Duration) (*store.SQLite, *analytics.Site) {
	b.Helper()
	var s analytics.Site
	src := benchSite()
	if err := config.Parse("big.yaml", []byte(src), &s); err != nil {
		b.Fatal(err)
	}
	if len(s.Meters) != 500 {
		b.Fatalf("%d meters", len(s.Meters))
	}
	path := filepath.Join(os.TempDir(), "aqualoop-bench-report-"+name+"-v1.db")
	if _, err := os.Stat(path + ".complete"); err != nil {
		os.Remove(path)
		st, err := store.OpenSQLite(path)
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		n := int(to.Sub(from) / step)
		const gen = `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
			INSERT INTO buckets (site, meter, start, volume, flags, coverage)
			SELECT ?, ?, ? + i * ?, ? * (1 + 0.1 * ((i * 7 + ?) % 13) / 13.0), 0, 1 FROM k`
		for mi, m := range s.Meters {
			per := step.Minutes()
			if strings.HasPrefix(m.ID, "R") {
				per *= 80
			}
			if _, err := db.Exec(gen, n-1, s.ID, m.ID, from.UnixNano(), int64(step), per, mi); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO bucket_meters (site, meter) VALUES (?, ?)`, s.ID, m.ID); err != nil {
				b.Fatal(err)
			}
		}
		db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		db.Close()
		b.Logf("built %s: %d buckets in %v", path, n*len(s.Meters), time.Since(start).Round(time.Second))
		os.WriteFile(path+".complete", nil, 0o644)
	}
	st, err := store.OpenSQLite(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, &s
}

// BenchmarkAnnualPack builds the signed annual pack (PDF, XLSX with the hourly sheet, CSV, zip)
// of a 500-meter site from a store holding one bucket per meter and hour for 2026 (4.38 million
// buckets; a year of 1-minute buckets, 263 million, is beyond a test fixture: see
// docs/performance.md for how the cost scales).
// Run: go test -run '^$' -bench AnnualPack -benchtime 3x ./analytics/report
func BenchmarkAnnualPack(b *testing.B) {
	fonts, err := report.LoadFonts("", "")
	if err != nil {
		b.Skip(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	key, _, err := report.LoadKey(filepath.Join(b.TempDir(), "k.key"), true)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, st *store.SQLite, s *analytics.Site, period string) {
		e := engine.New([]*analytics.Site{s}, st)
		opts := report.Options{Engine: e, Store: st, Now: func() time.Time { return time.Date(2027, 1, 2, 0, 0, 0, 0, loc) }, Version: "bench"}
		b.ReportAllocs()
		var size int
		var peak uint64
		for b.Loop() {
			per, err := report.ParsePeriod(period, loc, opts.Now())
			if err != nil {
				b.Fatal(err)
			}
			p, err := report.Build(context.Background(), s, per, opts)
			if err != nil {
				b.Fatal(err)
			}
			var out bytes.Buffer
			if err := p.WriteZip(&out, report.LangZH, fonts, report.SiteFile{Name: "big.yaml", Data: []byte(benchSite())}, key); err != nil {
				b.Fatal(err)
			}
			size = out.Len()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		b.ReportMetric(float64(size)/(1<<20), "MB-pack")
		b.ReportMetric(float64(peak)/(1<<20), "MB-heap-inuse")
	}
	b.Run("year-hourly-buckets", func(b *testing.B) {
		st, s := benchFixture(b, "year-hourly", time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 0, 0, loc), time.Hour)
		run(b, st, s, "2026")
	})
}
