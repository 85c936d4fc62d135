package store

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// packedEnv is an influxd with database "packed", its roll-ups in retention policy "rollups" as
// docs/scale.md recommends, and the buckets written so far.
type packedEnv struct {
	t     *testing.T
	in    *testenv.Influx
	truth map[string]map[[2]any]ledger.Bucket // site → (meter, start) → bucket
}

func newPackedEnv(t *testing.T) *packedEnv {
	return &packedEnv{t: t, in: testenv.InfluxDB(t), truth: map[string]map[[2]any]ledger.Bucket{}}
}

// open opens the store (and so runs the fills of backfillRollups).
func (e *packedEnv) open() *Influx {
	e.t.Helper()
	s, err := OpenInflux(context.Background(), InfluxConfig{URLs: []string{e.in.URL()}, Bucket: "packed/autogen", RollupBucket: "packed/rollups", CreateDatabase: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func (e *packedEnv) write(s *Influx, bs []ledger.Bucket) {
	e.t.Helper()
	if err := s.WriteBuckets(context.Background(), bs); err != nil {
		e.t.Fatal(err)
	}
	for _, b := range bs {
		if e.truth[b.Site] == nil {
			e.truth[b.Site] = map[[2]any]ledger.Bucket{}
		}
		e.truth[b.Site][[2]any{b.Meter, b.Start.UnixNano()}] = b
	}
}

// exec runs InfluxQL statements that change the database.
func (e *packedEnv) exec(s *Influx, q string) {
	e.t.Helper()
	if _, err := s.query(context.Background(), http.MethodPost, s.db, q); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// check compares MeterTotals of site over [from, to) with the sum of the buckets written.
func (e *packedEnv) check(s *Influx, label, site string, from, to time.Time) {
	e.t.Helper()
	got, err := s.MeterTotals(context.Background(), site, from, to)
	if err != nil {
		e.t.Fatalf("%s: %s [%v, %v): %v", label, site, from, to, err)
	}
	var in []ledger.Bucket
	for _, b := range e.truth[site] {
		if !b.Start.Before(from) && b.Start.Before(to) {
			in = append(in, b)
		}
	}
	want := engine.Totals(in)
	if len(got) != len(want) {
		e.t.Fatalf("%s: %s [%v, %v): %d meters, want %d", label, site, from, to, len(got), len(want))
	}
	for j := range want {
		g, w := got[j], want[j]
		if g.Meter != w.Meter || g.Buckets != w.Buckets || g.Flags != w.Flags ||
			math.Abs(g.Volume-w.Volume) > 1e-9*math.Max(1, w.Volume) || math.Abs(g.Coverage-w.Coverage) > 1e-9*math.Max(1, w.Coverage) {
			e.t.Fatalf("%s: %s [%v, %v):\n got  %+v\n want %+v", label, site, from, to, g, w)
		}
	}
}

// parts returns the part tag values of site in measurement.
func partsOf(t *testing.T, s *Influx, measurement, site string) []string {
	t.Helper()
	ps, err := s.tagValues(context.Background(), measurement, "part", `"site" = `+quoteString(site))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestInfluxPackedParts: a site whose packed rows pass InfluxDB's 64 KiB string limit is split
// into parts, the parts grow as meters are added without leaving a meter in two parts, and the
// totals stay those of the buckets. The meter ids are long and full of what the text and the
// line protocol escape.
func TestInfluxPackedParts(t *testing.T) {
	e := newPackedEnv(t)
	s := e.open()
	const psite = "parts site"
	id := func(i int) string {
		// About 230 bytes; '\' only before a letter, which the line protocol keeps in a tag.
		return fmt.Sprintf("%03d pump %%;\"=,水表\\x ", i) + strings.Repeat("é; %", 40)
	}
	at := func(month time.Month, day, hour, minute int) time.Time {
		return time.Date(2026, month, day, hour, minute, 0, 0, time.UTC)
	}
	minutes := []time.Time{at(1, 31, 23, 30), at(2, 1, 0, 0), at(2, 10, 12, 7), at(2, 28, 23, 59), at(3, 1, 0, 30)}
	batch := func(lo, hi int) []ledger.Bucket {
		var bs []ledger.Bucket
		for i := lo; i < hi; i++ {
			for j, m := range minutes {
				bs = append(bs, ledger.Bucket{Site: psite, Meter: id(i), Start: m, Volume: float64(i) + float64(j)/7, Coverage: 1, Flags: ledger.Flag(1 << ((i + j) % 8))})
			}
		}
		return bs
	}
	periods := [][2]time.Time{
		{at(1, 31, 23, 30), at(3, 1, 1, 0)}, // buckets, hours, the month of February, buckets
		{at(2, 1, 0, 0), at(3, 1, 0, 0)},    // February
		{at(1, 1, 0, 0), at(4, 1, 0, 0)},    // three months
		{at(2, 10, 0, 0), at(2, 11, 0, 0)},  // a day
		{at(2, 10, 12, 0), at(2, 10, 13, 0)},
	}
	e.write(s, batch(0, 150))
	for _, p := range periods {
		e.check(s, "150 meters", psite, p[0], p[1])
	}
	before := len(partsOf(t, s, "site_month", psite))
	e.write(s, batch(150, 400))
	for _, p := range periods {
		e.check(s, "400 meters", psite, p[0], p[1])
	}
	after := len(partsOf(t, s, "site_month", psite))
	t.Logf("site_month parts: %d with 150 meters, %d with 400", before, after)
	if before < 2 || after <= before {
		t.Errorf("site_month has %d parts with 150 meters and %d with 400; want at least 2, then more", before, after)
	}
	// A restart: the part counts come from the store, and a rewrite of a period keeps them.
	s = e.open()
	e.write(s, batch(0, 1))
	for _, p := range periods {
		e.check(s, "after a restart", psite, p[0], p[1])
	}
	if n := len(partsOf(t, s, "site_month", psite)); n != after {
		t.Errorf("site_month parts %d after a restart, want %d", n, after)
	}
	// What a restarted store learns of the part counts, in one statement for three
	// measurements.
	s.rc.mu.Lock()
	s.rc.parts = map[sitePart]int{}
	err := s.loadParts(context.Background(), []sitePeriod{{site: psite}})
	learnt := maps.Clone(s.rc.parts)
	s.rc.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"site_hour", "site_day", "site_month"} {
		if got, want := learnt[sitePart{psite, m}], len(partsOf(t, s, m, psite)); got != want || got < 2 {
			t.Errorf("loadParts: %s has %d parts, want %d (at least 2)", m, got, want)
		}
	}
}

// TestInfluxPackedTorn: a packed row read with parts of two part counts, or with a part
// missing, is being rewritten: MeterTotals reads again and, when it stays so, fails rather than
// answering a sum that misses or doubles meters. A malformed text is an error, not a panic.
func TestInfluxPackedTorn(t *testing.T) {
	e := newPackedEnv(t)
	s := e.open()
	day := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	e.write(s, []ledger.Bucket{{Site: "torn", Meter: "A", Start: day.Add(time.Hour), Volume: 1, Coverage: 1}})
	e.check(s, "as written", "torn", day, day.AddDate(0, 0, 1))
	row := func(part int, text string) {
		cycle, value := cycleTag("site_day", day.UnixNano())
		p := write.NewPointWithMeasurement("site_day").AddTag("site", "torn").AddTag("part", strconv.Itoa(part)).AddTag(cycle, value).AddField(packedField, text).SetTime(day)
		if err := s.writePointsTo(context.Background(), s.roller, "test", []*write.Point{p}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		parts []string
	}{
		{"part 1 of 2 missing", []string{"2;A 1 1 1 0;"}},
		{"parts of 1 and 2", []string{"1;A 1 1 1 0;", "2;"}},
		{"malformed", []string{"1;A 1 1 x 0;"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, text := range tc.parts {
				row(i, text)
			}
			_, err := s.MeterTotals(context.Background(), "torn", day, day.AddDate(0, 0, 1))
			t.Log(err)
			if err == nil {
				t.Error("MeterTotals answered")
			}
		})
	}
}

// TestInfluxPackedBackfill: a database written before packed rows existed (per-meter roll-ups
// only), one whose fill was cut short, and one written before roll-ups existed (buckets only)
// get their packed rows at open, and MeterTotals, which reads them, gives the buckets' sums.
func TestInfluxPackedBackfill(t *testing.T) {
	e := newPackedEnv(t)
	s := e.open()
	rng := rand.New(rand.NewPCG(5, 8))
	sites := []string{"fill.a", "fill b"}
	start := time.Date(2026, 1, 25, 0, 0, 0, 0, time.UTC)
	for range 4 {
		var bs []ledger.Bucket
		for range 400 {
			b := ledger.Bucket{
				Site:     sites[rng.IntN(len(sites))],
				Meter:    fmt.Sprintf("M%d", rng.IntN(4)),
				Start:    start.Add(time.Duration(rng.IntN(70*24*60)) * time.Minute),
				Volume:   math.Round(rng.Float64()*1e6) / 1e3,
				Coverage: float64(rng.IntN(5)) / 4,
			}
			if rng.IntN(8) == 0 {
				b.Flags = ledger.Flag(1 << rng.IntN(8))
			}
			bs = append(bs, b)
		}
		e.write(s, bs)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	periods := [][2]time.Time{
		{start.AddDate(0, 0, -30), start.AddDate(0, 3, 0)},
		{time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 4, 1, 0, 0, 0, 0, shanghai)},
		{time.Date(2026, 2, 10, 7, 13, 0, 0, time.UTC), time.Date(2026, 3, 30, 2, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 5, 0, 0, 0, 0, shanghai), time.Date(2026, 3, 6, 0, 0, 0, 0, shanghai)},
	}
	checkAll := func(s *Influx, label string) {
		t.Helper()
		for _, site := range sites {
			for _, p := range periods {
				e.check(s, label, site, p[0], p[1])
			}
		}
	}
	checkAll(s, "as written")

	// An older release's database: per-meter roll-ups, no packed rows. Without them the months
	// read nothing, which shows that the checks below read the filled rows.
	for _, m := range []string{"site_hour", "site_day", "site_month"} {
		e.exec(s, "DROP MEASUREMENT "+quoteIdent(m))
	}
	if got, err := s.MeterTotals(context.Background(), sites[0], periods[1][0], periods[1][1]); err != nil || len(got) != 0 {
		t.Fatalf("without packed rows: %v, %v; want nothing", got, err)
	}
	s = e.open()
	checkAll(s, "filled from per-meter roll-ups")
	for _, site := range sites {
		if ps := partsOf(t, s, "site_hour", site); len(ps) == 0 {
			t.Errorf("%s has no site_hour rows", site)
		}
	}

	// A fill cut short: the site's last marker says not done, and a row is wrong (as if only
	// part of the site had been written). The next open fills the site again.
	bad := []*write.Point{
		write.NewPointWithMeasurement("rollup_fill").AddTag("site", sites[1]).AddField("done", false).SetTime(time.Now()),
		write.NewPointWithMeasurement("site_month").AddTag("site", sites[1]).AddTag("part", "0").AddField(packedField, "1;M0 1e9 1 1 0;").SetTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)),
	}
	if err := s.writePointsTo(context.Background(), s.roller, "test", bad); err != nil {
		t.Fatal(err)
	}
	s = e.open()
	checkAll(s, "after a fill cut short")
	// And a site whose fill was done is not filled again: a wrong row stays wrong.
	bad[0] = write.NewPointWithMeasurement("rollup_fill").AddTag("site", sites[1]).AddField("done", true).SetTime(time.Now())
	if err := s.writePointsTo(context.Background(), s.roller, "test", bad); err != nil {
		t.Fatal(err)
	}
	s = e.open()
	if got, err := s.MeterTotals(context.Background(), sites[1], periods[1][0], periods[1][1]); err != nil || len(got) == 0 || got[0].Volume < 1e9 {
		t.Errorf("a done site was filled again: %+v, %v", got, err)
	}
	e.exec(s, `DROP SERIES FROM `+quoteIdent("site_month")+` WHERE "site" = `+quoteString(sites[1]))
	e.exec(s, `DROP MEASUREMENT "rollup_fill"`)
	e.exec(s, `DROP MEASUREMENT "site_hour"`) // so that the next open fills both sites again

	s = e.open()
	checkAll(s, "filled again")

	// A database written before roll-ups existed: buckets only. Both fills run.
	for _, m := range []string{"volume_hour", "volume_day", "site_hour", "site_day", "site_month", "rollup_fill"} {
		e.exec(s, "DROP MEASUREMENT "+quoteIdent(m))
	}
	s = e.open()
	checkAll(s, "filled from buckets")
	// Writing on after a fill: the cache loads the filled rows' periods.
	e.write(s, []ledger.Bucket{{Site: sites[0], Meter: "M9", Start: time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC), Volume: 2, Coverage: 1}})
	checkAll(s, "written on after the fill")
}
