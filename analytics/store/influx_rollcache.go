package store

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// rollCache holds what the roll-ups of recently written periods are summed from: the buckets
// of each meter's hour, every meter's hour sums of a site's day and every meter's day sums of a
// site's month. With it, a batch of in-order buckets updates its hours, days and months in
// memory and costs one write of roll-up points, where re-summing them in InfluxDB cost two
// aggregate queries a batch and doubled influxd's CPU per reading. The packed rows
// (packed.go) hold all meters of a site, so the cache keeps all meters of each site's day and
// month it touched, not only the meters of the batch. A period not in the cache (the first
// touch after a start, a late bucket) is loaded from the store once: buckets for an hour, the
// per-meter hour roll-ups for a day, the per-meter day roll-ups for a month. Months are summed
// again from their days at every write, never by adding a difference, so no rounding drifts
// in.
//
// The cache is right as long as this process is the only writer of its sites' buckets, which
// the partition guarantees (docs/scale.md); it is dropped whole when it grows past its bounds,
// and entries touched by a failed write are forgotten.
type rollCache struct {
	mu     sync.Mutex
	hours  map[touched]map[int64]cell // (site, meter, hour) → bucket start → value
	days   map[sitePeriod]siteSpan    // (site, UTC day) → meter → hour start → hour sums
	months map[sitePeriod]siteSpan    // (site, UTC month) → meter → day start → day sums
	rows   int                        // sums held in days and months, for the bound
	// parts is, per site and packed measurement, the most parts a row has been written in (or
	// found with at the first touch): every row is written in at least that many, so a rewrite
	// never leaves a part of an earlier, larger row behind.
	parts map[sitePart]int
}

type cell struct {
	vol, cov float64
	flags    ledger.Flag
}

type sitePeriod struct {
	site  string
	start int64
}

// siteSpan is every meter's sums of the hours of a day or the days of a month.
type siteSpan map[string]map[int64]sums

type sitePart struct{ site, measurement string }

const (
	rollCacheMax  = 20000   // (site, meter, hour) entries
	rollCacheRows = 1 << 20 // sums in days and months: about 100 MB
)

// set stores v as meter's sums of the sub-period at start in span, counting new rows.
func (c *rollCache) set(span siteSpan, meter string, start int64, v sums) {
	m := span[meter]
	if m == nil {
		m = map[int64]sums{}
		span[meter] = m
	}
	if _, ok := m[start]; !ok {
		c.rows++
	}
	m[start] = v
}

// forget drops the entries of keys from spans.
func (c *rollCache) forget(spans map[sitePeriod]siteSpan, keys []sitePeriod) {
	for _, k := range keys {
		for _, m := range spans[k] {
			c.rows -= len(m)
		}
		delete(spans, k)
	}
}

// sumInOrder sums the values of m in the order of their keys, so that the same rows give the
// same float64 sum whatever the map's order.
func sumInOrder(m map[int64]sums) sums {
	var t sums
	for _, k := range slices.Sorted(maps.Keys(m)) {
		t.add(m[k])
	}
	return t
}

// cellSums sums an hour's buckets in time order, for the same reason as sumInOrder.
func cellSums(m map[int64]cell) sums {
	var t sums
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		t.add(sums{volume: v.vol, coverage: v.cov, n: 1, flags: v.flags})
	}
	return t
}

// rollUpCached brings the roll-ups of the hours, days and months bs (already written) touch up
// to date: per meter volume_hour and volume_day, per site site_hour, site_day and site_month.
func (s *Influx) rollUpCached(ctx context.Context, bs []ledger.Bucket) (err error) {
	c := &s.rc
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hours == nil || len(c.hours) > rollCacheMax || c.rows > rollCacheRows {
		c.hours, c.days, c.months, c.rows = map[touched]map[int64]cell{}, map[sitePeriod]siteSpan{}, map[sitePeriod]siteSpan{}, 0
	}
	if c.parts == nil {
		c.parts = map[sitePart]int{}
	}
	hours, days := touchedPeriods(bs)
	siteHours, siteDays, siteMonths := sitePeriods(hours, hourNs), sitePeriods(days, dayNs), siteMonthsOf(days)
	defer func() {
		if err != nil {
			for _, h := range hours {
				delete(c.hours, h)
			}
			c.forget(c.days, siteDays)
			c.forget(c.months, siteMonths)
		}
	}()
	var missing []touched
	for _, h := range hours {
		if _, ok := c.hours[h]; !ok {
			missing = append(missing, h)
		}
	}
	if err := s.loadHours(ctx, missing); err != nil {
		return err
	}
	for _, b := range bs {
		ns := b.Start.UnixNano()
		c.hours[touched{b.Site, b.Meter, floorTo(ns, hourNs)}][ns] = cell{b.Volume, b.Coverage, b.Flags}
	}
	if err := s.loadSpans(ctx, siteDays, siteMonths); err != nil {
		return err
	}
	if err := s.loadParts(ctx, siteDays); err != nil {
		return err
	}

	var pts []*write.Point
	for _, h := range hours {
		r := cellSums(c.hours[h])
		c.set(c.days[sitePeriod{h.site, floorTo(h.start, dayNs)}], h.meter, h.start, r)
		pts = append(pts, rollupPoint("volume_hour", h.site, r.row(h.meter, h.start)))
	}
	for _, d := range days {
		r := sumInOrder(c.days[sitePeriod{d.site, d.start}][d.meter])
		c.set(c.months[sitePeriod{d.site, floorMonth(d.start)}], d.meter, d.start, r)
		pts = append(pts, rollupPoint("volume_day", d.site, r.row(d.meter, d.start)))
	}
	for _, h := range siteHours {
		rows := map[string]sums{}
		for m, hs := range c.days[sitePeriod{h.site, floorTo(h.start, dayNs)}] {
			if v, ok := hs[h.start]; ok {
				rows[m] = v
			}
		}
		p, err := packedPoints(c.parts, "site_hour", h.site, h.start, rows)
		if err != nil {
			return err
		}
		pts = append(pts, p...)
	}
	for _, d := range siteDays {
		rows := map[string]sums{}
		for m, ds := range c.months[sitePeriod{d.site, floorMonth(d.start)}] {
			if v, ok := ds[d.start]; ok {
				rows[m] = v
			}
		}
		p, err := packedPoints(c.parts, "site_day", d.site, d.start, rows)
		if err != nil {
			return err
		}
		pts = append(pts, p...)
	}
	for _, mo := range siteMonths {
		rows := map[string]sums{}
		for m, ds := range c.months[mo] {
			rows[m] = sumInOrder(ds)
		}
		p, err := packedPoints(c.parts, "site_month", mo.site, mo.start, rows)
		if err != nil {
			return err
		}
		pts = append(pts, p...)
	}
	return s.writePointsTo(ctx, s.roller, "write roll-ups", pts)
}

func (v sums) row(meter string, start int64) aggRow {
	return aggRow{meter: meter, start: start, volume: v.volume, coverage: v.coverage, n: v.n, flagsOr: v.flags}
}

// packedPoints are the points of the packed row of site at start in measurement, in at least
// parts[(site, measurement)] parts; parts learns how many were needed.
func packedPoints(parts map[sitePart]int, measurement, site string, start int64, rows map[string]sums) ([]*write.Point, error) {
	key := sitePart{site, measurement}
	texts, err := packParts(rows, parts[key])
	if err != nil {
		return nil, fmt.Errorf("pack %s of %s at %v: %w", measurement, site, fromNanos(start).Format(time.RFC3339), err)
	}
	parts[key] = max(parts[key], len(texts))
	pts := make([]*write.Point, len(texts))
	cycle, value := cycleTag(measurement, start)
	for i, t := range texts {
		p := write.NewPointWithMeasurement(measurement).
			AddTag("site", site).
			AddTag("part", strconv.Itoa(i))
		if cycle != "" {
			p.AddTag(cycle, value)
		}
		pts[i] = p.AddField(packedField, t).SetTime(time.Unix(0, start))
	}
	return pts, nil
}

// sitePeriods lists the distinct (site, start floored to step) of keys, in order.
func sitePeriods(keys []touched, step int64) []sitePeriod {
	seen := map[sitePeriod]bool{}
	var out []sitePeriod
	for _, k := range keys {
		p := sitePeriod{k.site, floorTo(k.start, step)}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, compareSitePeriod)
	return out
}

// siteMonthsOf lists the distinct (site, UTC month) of days, in order.
func siteMonthsOf(days []touched) []sitePeriod {
	seen := map[sitePeriod]bool{}
	var out []sitePeriod
	for _, d := range days {
		p := sitePeriod{d.site, floorMonth(d.start)}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, compareSitePeriod)
	return out
}

func compareSitePeriod(a, b sitePeriod) int {
	if c := compareStr(a.site, b.site); c != 0 {
		return c
	}
	switch {
	case a.start < b.start:
		return -1
	case a.start > b.start:
		return 1
	}
	return 0
}

// bySite groups keys by site, with their meters and the span of their starts.
func bySite(keys []touched) map[string]*keySpan {
	out := map[string]*keySpan{}
	for _, k := range keys {
		sp := out[k.site]
		if sp == nil {
			sp = &keySpan{lo: k.start, hi: k.start, meters: map[string]bool{}, keys: map[touched]bool{}}
			out[k.site] = sp
		}
		sp.lo, sp.hi = min(sp.lo, k.start), max(sp.hi, k.start)
		sp.meters[k.meter] = true
		sp.keys[touched{meter: k.meter, start: k.start}] = true
	}
	return out
}

type keySpan struct {
	lo, hi int64
	meters map[string]bool
	keys   map[touched]bool // site left empty
}

// loadHours reads the stored buckets of the given hours into the cache.
func (s *Influx) loadHours(ctx context.Context, keys []touched) error {
	for _, h := range keys {
		s.rc.hours[h] = map[int64]cell{}
	}
	for site, sp := range bySite(keys) {
		q := fmt.Sprintf(`SELECT "meter", "volume", "coverage", "flags" FROM %s WHERE "site" = %s AND %s AND time >= %d AND time <= %d`,
			s.from("volume"), quoteString(site), meterFilter(slices.Sorted(maps.Keys(sp.meters))), sp.lo, sp.hi+hourNs-1)
		ss, err := s.query(ctx, http.MethodGet, s.db, q)
		if err != nil {
			return fmt.Errorf("read buckets of %s for roll-ups from %s: %w", site, s.base.Redacted(), err)
		}
		for _, se := range ss {
			col := se.col()
			for _, row := range se.Values {
				b, err := rowBucket(col, row)
				if err != nil {
					return fmt.Errorf("read buckets of %s for roll-ups: %w", site, err)
				}
				ns := b.Start.UnixNano()
				k := touched{meter: b.Meter, start: floorTo(ns, hourNs)}
				if sp.keys[k] {
					s.rc.hours[touched{site, b.Meter, k.start}][ns] = cell{b.Volume, b.Coverage, b.Flags}
				}
			}
		}
	}
	return nil
}

// loadStatements is the most statements loadSpans sends in one request, to keep the URL short.
const loadStatements = 50

// loadSpans reads into the cache, for the days and months not in it, every meter's stored hour
// roll-ups of the day and day roll-ups of the month. The per-meter rows are what the packed
// ones were built from, and a packed row caught half rewritten by a crash could not be trusted.
func (s *Influx) loadSpans(ctx context.Context, days, months []sitePeriod) error {
	type load struct {
		spans   map[sitePeriod]siteSpan
		key     sitePeriod
		measure string
		step    int64 // of the rows: hour for a day, day for a month
		end     int64 // exclusive
	}
	var todo []load
	for _, d := range days {
		if _, ok := s.rc.days[d]; !ok {
			todo = append(todo, load{s.rc.days, d, "volume_hour", hourNs, d.start + dayNs})
		}
	}
	for _, m := range months {
		if _, ok := s.rc.months[m]; !ok {
			end := ceilMonth(m.start + 1)
			todo = append(todo, load{s.rc.months, m, "volume_day", dayNs, end})
		}
	}
	for len(todo) > 0 {
		n := min(len(todo), loadStatements)
		batch := todo[:n]
		todo = todo[n:]
		stmts := make([]string, n)
		for i, l := range batch {
			stmts[i] = fmt.Sprintf(`SELECT "meter", "volume", "coverage", "n", "flags" FROM %s WHERE "site" = %s AND time >= %d AND time <= %d`,
				s.from(l.measure), quoteString(l.key.site), l.key.start, l.end-1)
		}
		res, err := s.queryStatements(ctx, s.db, stmts)
		if err != nil {
			return fmt.Errorf("read roll-ups for the packed roll-ups from %s: %w", s.base.Redacted(), err)
		}
		for i, l := range batch {
			span := siteSpan{}
			for _, se := range res[i] {
				col := se.col()
				for _, row := range se.Values {
					r, err := rowSums(col, row)
					if err != nil {
						// A roll-up point torn by a crash: the write it belonged to was not
						// acknowledged and is made again, which rewrites that meter's period.
						s.logger.Warn("incomplete roll-up skipped", "measurement", l.measure, "site", l.key.site, "err", err)
						continue
					}
					if floorTo(r.start, l.step) == r.start {
						s.rc.set(span, r.meter, r.start, r.sums())
					}
				}
			}
			l.spans[l.key] = span
		}
	}
	return nil
}

// rowSums reads one row of a per-meter roll-up (meter, time, volume, coverage, n, flags).
func rowSums(col map[string]int, row []any) (aggRow, error) {
	get := func(name string) any {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return nil
	}
	var r aggRow
	var err error
	var flags int64
	r.meter, _ = get("meter").(string)
	if r.start, err = asInt(get("time")); err != nil {
		return r, fmt.Errorf("time: %w", err)
	}
	if r.volume, err = asFloat(get("volume")); err != nil {
		return r, fmt.Errorf("%s at %d: volume: %w", r.meter, r.start, err)
	}
	if r.coverage, err = asFloat(get("coverage")); err != nil {
		return r, fmt.Errorf("%s at %d: coverage: %w", r.meter, r.start, err)
	}
	if r.n, err = asInt(get("n")); err != nil {
		return r, fmt.Errorf("%s at %d: n: %w", r.meter, r.start, err)
	}
	if flags, err = asInt(get("flags")); err != nil {
		return r, fmt.Errorf("%s at %d: flags: %w", r.meter, r.start, err)
	}
	r.flagsOr = ledger.Flag(flags)
	return r, nil
}

func (r aggRow) sums() sums {
	return sums{volume: r.volume, coverage: r.coverage, n: r.n, flags: r.flagsOr}
}

// loadParts learns, for the sites of keys not yet known, how many parts their packed rows
// have used (the part tag's values in the index, which cost no data read).
func (s *Influx) loadParts(ctx context.Context, keys []sitePeriod) error {
	var sites []string
	for _, k := range keys {
		if _, ok := s.rc.parts[sitePart{k.site, "site_hour"}]; !ok && !slices.Contains(sites, k.site) {
			sites = append(sites, k.site)
		}
	}
	for len(sites) > 0 {
		n := min(len(sites), loadStatements)
		batch := sites[:n]
		sites = sites[n:]
		stmts := make([]string, n)
		for i, site := range batch {
			stmts[i] = fmt.Sprintf(`SHOW TAG VALUES FROM %s, %s, %s WITH KEY = "part" WHERE "site" = %s`,
				s.from("site_hour"), s.from("site_day"), s.from("site_month"), quoteString(site))
		}
		res, err := s.queryStatements(ctx, s.db, stmts)
		if err != nil {
			return fmt.Errorf("read part counts of packed roll-ups from %s: %w", s.base.Redacted(), err)
		}
		for i, site := range batch {
			for _, m := range []string{"site_hour", "site_day", "site_month"} {
				s.rc.parts[sitePart{site, m}] = max(s.rc.parts[sitePart{site, m}], 0)
			}
			for _, se := range res[i] {
				col := se.col()
				for _, row := range se.Values {
					v, _ := row[col["value"]].(string)
					p, err := strconv.Atoi(v)
					if err != nil || p < 0 || p >= maxParts {
						// Not written by the store; readers refuse the rows it is in.
						s.logger.Warn("packed roll-up part is not a part number", "measurement", se.Name, "site", site, "part", v)
						continue
					}
					key := sitePart{site, se.Name}
					s.rc.parts[key] = max(s.rc.parts[key], p+1)
				}
			}
		}
	}
	return nil
}
