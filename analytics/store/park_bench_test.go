package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/collector/config"
)

// The park benchmark: a month of 1-minute buckets of a park of 5 sites × 100 meters in SQLite,
// and the time and memory to read it and to compute the park's and each site's indicators and
// balances from it.
const (
	parkSites     = 5
	meterPerSite  = 100
	parkCoolLoops = 10
	parkWorkshops = 33 // 2 intakes + 1 discharge + 10 loops × 3 + 33 workshops × 2 + 1 cascade = 100 meters
	monthMinutes  = 30 * 24 * 60
)

// parkSite is a synthetic site of 100 meters: two intakes into a distribution main, 33 workshops
// (supply and effluent metered, use derived, one cascade), 10 indirect cooling loops (make-up,
// circulation and blowdown metered, evaporation derived) and the site discharge.
func parkSite(id string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\npark: bench-park\nnodes:\n", id)
	b.WriteString("  - {id: city, type: source, kind: municipal}\n  - {id: well, type: source, kind: well}\n")
	b.WriteString("  - {id: dist, type: unit, kind: distribution}\n  - {id: outfall, type: unit, kind: outfall}\n")
	b.WriteString("  - {id: sewer, type: sink, kind: discharge}\n  - {id: product, type: sink, kind: consumption}\n  - {id: air, type: sink, kind: consumption}\n")
	for i := range parkWorkshops {
		fmt.Fprintf(&b, "  - {id: w%02d, type: unit, kind: workshop, tier: %d}\n", i, 1+i%2)
	}
	for i := range parkCoolLoops {
		fmt.Fprintf(&b, "  - {id: c%02d, type: unit, kind: cooling_indirect}\n", i)
	}
	var meters, flows strings.Builder
	meter := func(id string, level int, parent string) {
		fmt.Fprintf(&meters, "  - {id: %s, level: %d, parent: %q}\n", id, level, parent)
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
	for i := range parkWorkshops {
		w := fmt.Sprintf("w%02d", i)
		meter("S"+w, 2, "MC")
		meter("E"+w, 2, "")
		flow(w+"_in", "dist", w, "internal", "S"+w)
		flow(w+"_out", w, "outfall", "internal", "E"+w)
		if i == 1 {
			fmt.Fprintf(&flows, "  - {id: %s_use, from: %s, to: product, kind: consumption, derived: {add: [%s_in, cascade], sub: [%s_out]}}\n", w, w, w, w)
		} else if i == 0 {
			fmt.Fprintf(&flows, "  - {id: %s_use, from: %s, to: product, kind: consumption, derived: {add: [%s_in], sub: [%s_out, cascade]}}\n", w, w, w, w)
		} else {
			fmt.Fprintf(&flows, "  - {id: %s_use, from: %s, to: product, kind: consumption, derived: {add: [%s_in], sub: [%s_out]}}\n", w, w, w, w)
		}
	}
	meter("CAS", 2, "")
	flow("cascade", "w00", "w01", "cascade", "CAS")
	for i := range parkCoolLoops {
		c := fmt.Sprintf("c%02d", i)
		meter("M"+c, 2, "MW")
		meter("R"+c, 3, "")
		meter("B"+c, 3, "")
		flow(c+"_makeup", "dist", c, "internal", "M"+c)
		flow(c+"_circ", c, c, "circulating", "R"+c)
		flow(c+"_blowdown", c, "outfall", "internal", "B"+c)
		fmt.Fprintf(&flows, "  - {id: %s_evap, from: %s, to: air, kind: consumption, derived: {add: [%s_makeup], sub: [%s_blowdown]}}\n", c, c, c, c)
	}
	b.WriteString("meters:\n" + meters.String() + "flows:\n" + flows.String())
	return b.String()
}

// parkFixture opens (building it the first time, which takes a minute or two) the SQLite file of
// the park's month, kept in the temporary folder across runs.
func parkFixture(b *testing.B) (*SQLite, []*analytics.Site, time.Time) {
	b.Helper()
	loc, _ := time.LoadLocation("Asia/Shanghai")
	month := time.Date(2026, 3, 1, 0, 0, 0, 0, loc)
	var sites []*analytics.Site
	for i := range parkSites {
		var s analytics.Site
		if err := config.Parse("park-site.yaml", []byte(parkSite(fmt.Sprintf("site%d", i))), &s); err != nil {
			b.Fatal(err)
		}
		if len(s.Meters) != meterPerSite {
			b.Fatalf("synthetic site has %d meters, want %d", len(s.Meters), meterPerSite)
		}
		sites = append(sites, &s)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("aqualoop-bench-park-%dx%d-v3.db", parkSites, meterPerSite))
	done := path + ".complete"
	if _, err := os.Stat(done); err != nil {
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		st, err := OpenSQLite(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		// One statement per meter generates its month in SQLite itself; the volumes vary by
		// meter and minute so that no sum is trivially constant.
		const gen = `WITH RECURSIVE minute(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM minute WHERE i < ?)
			INSERT INTO buckets (site, meter, start, volume, flags, coverage)
			SELECT ?, ?, ? + i * 60000000000, ? * (1 + 0.1 * ((i * 7 + ?) % 13) / 13.0), 0, 1 FROM minute`
		ctx := context.Background()
		for si, s := range sites {
			tx, err := st.w.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			for mi, m := range s.Meters {
				perMinute := 1.0
				if strings.HasPrefix(m.ID, "R") {
					perMinute = 80 // circulation
				}
				if _, err := tx.ExecContext(ctx, gen, monthMinutes-1, s.ID, m.ID, month.UnixNano(), perMinute, si*meterPerSite+mi); err != nil {
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
		// The roll-ups were kept by the buckets' triggers, as for any write.
		ins := make([]engine.Input, 0, parkSites)
		for _, s := range sites {
			q, z, d := 5000.0, 1200.0, 900.0
			ins = append(ins, engine.Input{Site: s.ID, From: month, To: month.AddDate(0, 1, 0), Product: &q, ProductUnit: "t", OutputValue: &z, Steam: &d})
		}
		if err := st.WriteInputs(ctx, ins); err != nil {
			b.Fatal(err)
		}
		if _, err := st.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		st.Close()
		fi, _ := os.Stat(path)
		b.Logf("built %s: %d buckets in %v, %d MB", path, parkSites*meterPerSite*monthMinutes, time.Since(start).Round(time.Second), fi.Size()>>20)
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	st, err := OpenSQLite(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, sites, month
}

// BenchmarkParkMonth reads and computes one month of a park of 500 meters (21.6 million
// 1-minute buckets). read: the store sums each site's month per meter and reads its inputs.
// compute: the park's indicators plus every site's indicators and balance, from what was read.
// engine: both, through the Engine as the API does.
func BenchmarkParkMonth(b *testing.B) {
	st, sites, month := parkFixture(b)
	ctx := context.Background()
	e := engine.New(sites, st)
	from, to := month, month.AddDate(0, 1, 0)
	read := func(b *testing.B) []engine.Data {
		ds := make([]engine.Data, len(sites))
		for i, s := range sites {
			d, err := e.Read(ctx, s, from, to)
			if err != nil {
				b.Fatal(err)
			}
			ds[i] = d
		}
		return ds
	}
	ds := read(b)
	if n := ds[0].Totals[0].Buckets; n != monthMinutes {
		b.Fatalf("a meter has %d buckets in the month, want %d", n, monthMinutes)
	}
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			read(b)
		}
	})
	b.Run("compute", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			park := engine.ComputePark("bench-park", sites, ds, from, to)
			if park.ReuseRate == nil {
				b.Fatal("no reuse rate")
			}
			for i, s := range sites {
				engine.Compute(s, ds[i], from, to)
				engine.ComputeBalance(s, ds[i].Totals, from, to)
			}
		}
	})
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.ParkIndicators(ctx, "bench-park", from, to); err != nil {
				b.Fatal(err)
			}
			for _, s := range sites {
				if _, err := e.Balance(ctx, s.ID, from, to); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	// For comparison: the same month of one site's 100 meters read bucket by bucket.
	b.Run("buckets-of-one-site", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bs, err := st.Buckets(ctx, sites[0].ID, from, to)
			if err != nil {
				b.Fatal(err)
			}
			if len(bs) != meterPerSite*monthMinutes {
				b.Fatalf("%d buckets", len(bs))
			}
		}
	})
}
