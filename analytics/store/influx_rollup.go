package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// The roll-ups in InfluxDB (see rollup.go) are the measurements "volume_hour" and "volume_day",
// tags site and meter, at the UTC hour or day start: volume and coverage (float), n (integer,
// buckets summed) and flags (integer, their union); and the same sums packed per site in
// "site_hour", "site_day" and "site_month" (packed.go), which MeterTotals reads. The platform
// writes them itself after each bucket write (influx_rollcache.go), and fills them at open in a
// database written before they existed, with plain InfluxQL (GROUP BY time(1h) and time(1d)
// align to the Unix epoch, so UTC); no continuous query or task is involved, so they work the
// same on 1.8, 2.x and 3.x.

// aggRow is one meter's aggregate over one interval: the union of flags is known exactly when
// lo == hi, otherwise it is looked up.
type aggRow struct {
	meter     string
	start     int64
	volume    float64
	coverage  float64
	n         int64
	lo, hi    int64
	flagsOr   ledger.Flag
	flagsDone bool
}

// meterFilter is the InfluxQL condition "meter is one of ms".
func meterFilter(ms []string) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = `"meter" = ` + quoteString(m)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// aggregate sums measurement (volume or volume_hour) of site over [lo, hi] per meter and
// interval (1h or 1d).
func (s *Influx) aggregate(ctx context.Context, measurement, site string, meters []string, lo, hi int64, every string) ([]aggRow, error) {
	count := `COUNT("volume")`
	if measurement != "volume" {
		count = `SUM("n")`
	}
	q := fmt.Sprintf(`SELECT SUM("volume") AS "volume", SUM("coverage") AS "coverage", %s AS "n", MIN("flags") AS "lo", MAX("flags") AS "hi" FROM %s WHERE "site" = %s AND %s AND time >= %d AND time <= %d GROUP BY "meter", time(%s) fill(none)`,
		count, s.from(measurement), quoteString(site), meterFilter(meters), lo, hi, every)
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("sum %s of %s in %s: %w", measurement, site, s.base.Redacted(), err)
	}
	var out []aggRow
	var mixed []int
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			if row[col["volume"]] == nil {
				continue // no point in this interval
			}
			r := aggRow{meter: se.Tags["meter"]}
			var err error
			if r.start, err = asInt(row[col["time"]]); err == nil {
				if r.volume, err = asFloat(row[col["volume"]]); err == nil {
					if r.coverage, err = asFloat(row[col["coverage"]]); err == nil {
						if r.n, err = asInt(row[col["n"]]); err == nil {
							if r.lo, err = asInt(row[col["lo"]]); err == nil {
								r.hi, err = asInt(row[col["hi"]])
							}
						}
					}
				}
			}
			if err != nil {
				return nil, fmt.Errorf("sum %s of %s/%s: %w", measurement, site, r.meter, err)
			}
			if r.lo == r.hi {
				r.flagsOr, r.flagsDone = ledger.Flag(r.hi), true
			} else {
				mixed = append(mixed, len(out))
			}
			out = append(out, r)
		}
	}
	if len(mixed) > 0 {
		if err := s.unionFlags(ctx, measurement, site, out, mixed, every); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unionFlags reads the non-zero flags of the intervals whose flags differ and ORs them.
func (s *Influx) unionFlags(ctx context.Context, measurement, site string, rows []aggRow, mixed []int, every string) error {
	step := hourNs
	if every == "1d" {
		step = dayNs
	}
	var stmts []string
	for _, i := range mixed {
		r := rows[i]
		stmts = append(stmts, fmt.Sprintf(`SELECT "meter", "flags" FROM %s WHERE "site" = %s AND "meter" = %s AND "flags" != 0 AND time >= %d AND time <= %d`,
			s.from(measurement), quoteString(site), quoteString(r.meter), r.start, r.start+step-1))
	}
	ss, err := s.query(ctx, http.MethodGet, s.db, strings.Join(stmts, "; "))
	if err != nil {
		return fmt.Errorf("read flags of %s in %s: %w", site, s.base.Redacted(), err)
	}
	at := map[touched]int{}
	for _, i := range mixed {
		at[touched{meter: rows[i].meter, start: rows[i].start}] = i
	}
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			ns, err := asInt(row[col["time"]])
			if err != nil {
				return fmt.Errorf("read flags of %s: %w", site, err)
			}
			f, err := asInt(row[col["flags"]])
			if err != nil {
				return fmt.Errorf("read flags of %s: %w", site, err)
			}
			meter, _ := row[col["meter"]].(string)
			if i, ok := at[touched{meter: meter, start: floorTo(ns, step)}]; ok {
				rows[i].flagsOr |= ledger.Flag(f)
			}
		}
	}
	return nil
}

func rollupPoint(measurement, site string, r aggRow) *write.Point {
	return write.NewPointWithMeasurement(measurement).
		AddTag("site", site).
		AddTag("meter", r.meter).
		AddField("volume", r.volume).
		AddField("coverage", r.coverage).
		AddField("n", r.n).
		AddField("flags", int64(r.flagsOr)).
		SetTime(time.Unix(0, r.start))
}

func (s *Influx) writeRollup(ctx context.Context, measurement, site string, rows []aggRow) error {
	pts := make([]*write.Point, 0, len(rows))
	for _, r := range rows {
		pts = append(pts, rollupPoint(measurement, site, r))
	}
	return s.writePointsTo(ctx, s.roller, "write "+measurement, pts)
}

// torn is how many times MeterTotals reads when it finds a point with some of its fields only,
// or a packed row with some of its parts only.
const torn = 5

// packedMeasurement is where a piece of each roll-up kind is read.
var packedMeasurement = map[rangeKind]string{fromHours: "site_hour", fromDays: "site_day", fromMonths: "site_month"}

// MeterTotals sums a site's buckets with from <= start < to per meter, in meter order. The
// period is cut by splitMonths; all pieces go in one request: the buckets at the ragged edges
// summed per meter by influxd (MIN and MAX of their flags give the union unless they differ,
// when a second request reads those meters' flags), the hours, days and months inside read as
// packed rows and summed here, flags ORed exactly.
func (s *Influx) MeterTotals(ctx context.Context, site string, from, to time.Time) ([]engine.MeterTotal, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	pieces := splitMonths(lo, hi)
	stmts := make([]string, len(pieces))
	var bucketPieces []piece
	for i, p := range pieces {
		if p.kind == fromBuckets {
			bucketPieces = append(bucketPieces, p)
			stmts[i] = fmt.Sprintf(`SELECT SUM("volume") AS "volume", SUM("coverage") AS "coverage", COUNT("volume") AS "n", MIN("flags") AS "lo", MAX("flags") AS "hi" FROM %s WHERE "site" = %s AND time >= %d AND time <= %d GROUP BY "meter"`,
				s.from("volume"), quoteString(site), p.lo, p.hi)
			continue
		}
		measurement := packedMeasurement[p.kind]
		cond := ""
		if f := cycleFilter(measurement, p.lo, p.hi); f != "" {
			cond = " AND " + f
		}
		stmts[i] = fmt.Sprintf(`SELECT "part", %s FROM %s WHERE "site" = %s%s AND time >= %d AND time <= %d`,
			quoteIdent(packedField), s.from(measurement), quoteString(site), cond, p.lo, p.hi)
	}
	type acc struct {
		t      engine.MeterTotal
		lo, hi int64 // MIN and MAX of the flags in the bucket pieces
		inBkts bool  // the meter has buckets in a bucket piece
	}
	var byMeter map[string]*acc
	get := func(meter string) *acc {
		a := byMeter[meter]
		if a == nil {
			a = &acc{t: engine.MeterTotal{Meter: meter}}
			byMeter[meter] = a
		}
		return a
	}
	// sum reads the pieces once; it reports incomplete when a point was caught half written.
	sum := func() (incomplete bool, err error) {
		res, err := s.queryStatements(ctx, s.db, stmts)
		if err != nil {
			return false, fmt.Errorf("sum buckets of %s in %s: %w", site, s.base.Redacted(), err)
		}
		byMeter = map[string]*acc{}
		for i, p := range pieces {
			if p.kind != fromBuckets {
				rows := packedRows{}
				for _, se := range res[i] {
					col := se.col()
					for _, row := range se.Values {
						at, err := asInt(row[col["time"]])
						if err != nil {
							return false, fmt.Errorf("sum %s of %s: time: %w", packedMeasurement[p.kind], site, err)
						}
						part, _ := row[col["part"]].(string)
						text, ok := row[col[packedField]].(string)
						if !ok {
							return false, fmt.Errorf("sum %s of %s at %v: field %s is %T, not a string", packedMeasurement[p.kind], site, fromNanos(at), packedField, row[col[packedField]])
						}
						if err := rows.add(at, part, text); err != nil {
							return false, fmt.Errorf("sum %s of %s at %v: %w", packedMeasurement[p.kind], site, fromNanos(at), err)
						}
					}
				}
				if !rows.whole() {
					// A row rewritten with more parts, caught in the middle.
					return true, nil
				}
				for _, r := range rows {
					for _, m := range r.rows {
						a := get(m.meter)
						a.t.Volume += m.volume
						a.t.Coverage += m.coverage
						a.t.Buckets += int(m.n)
						a.t.Flags |= m.flags
					}
				}
				continue
			}
			for _, se := range res[i] {
				col := se.col()
				meter := se.Tags["meter"]
				for _, row := range se.Values {
					nulls := 0
					for _, c := range []string{"volume", "coverage", "n", "lo", "hi"} {
						if row[col[c]] == nil {
							nulls++
						}
					}
					switch nulls {
					case 0:
					case 5:
						// A series of the shard with no point in the range: InfluxDB answers nulls.
						continue
					default:
						// InfluxDB stores each field of a point on its own, so a query that runs
						// while a point is written can see its volume and not yet its coverage.
						return true, nil
					}
					v, err := asFloat(row[col["volume"]])
					if err != nil {
						return false, fmt.Errorf("sum buckets of %s: %s: volume: %w", site, meter, err)
					}
					c, err := asFloat(row[col["coverage"]])
					if err != nil {
						return false, fmt.Errorf("sum buckets of %s: %s: coverage: %w", site, meter, err)
					}
					n, err := asInt(row[col["n"]])
					if err != nil {
						return false, fmt.Errorf("sum buckets of %s: %s: count: %w", site, meter, err)
					}
					flo, err1 := asInt(row[col["lo"]])
					fhi, err2 := asInt(row[col["hi"]])
					if err1 != nil || err2 != nil {
						return false, fmt.Errorf("sum buckets of %s: %s: flags: %v %v", site, meter, err1, err2)
					}
					a := get(meter)
					a.t.Volume += v
					a.t.Coverage += c
					a.t.Buckets += int(n)
					if !a.inBkts {
						a.lo, a.hi, a.inBkts = flo, fhi, true
					} else {
						a.lo, a.hi = min(a.lo, flo), max(a.hi, fhi)
					}
				}
			}
		}
		return false, nil
	}
	for attempt := 1; ; attempt++ {
		incomplete, err := sum()
		if err != nil {
			return nil, err
		}
		if !incomplete {
			break
		}
		if attempt == torn {
			// Still half a point: a write cut off by a crash, which the next write of that
			// bucket completes (its ledger writes it again).
			return nil, fmt.Errorf("sum buckets of %s: a point in [%s, %s) has some of its fields or parts only", site, from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		}
	}
	if len(byMeter) == 0 {
		return nil, nil
	}
	var mixed []string
	for m, a := range byMeter {
		if !a.inBkts {
			continue
		}
		if a.lo == a.hi {
			a.t.Flags |= ledger.Flag(a.hi)
		} else {
			mixed = append(mixed, m)
		}
	}
	if len(mixed) > 0 {
		if err := s.bucketFlags(ctx, site, bucketPieces, mixed, byMeterFlags(func(m string) *ledger.Flag {
			if a := byMeter[m]; a != nil {
				return &a.t.Flags
			}
			return nil
		})); err != nil {
			return nil, err
		}
	}
	out := make([]engine.MeterTotal, 0, len(byMeter))
	for _, a := range byMeter {
		out = append(out, a.t)
	}
	slices.SortFunc(out, func(a, b engine.MeterTotal) int { return cmp.Compare(a.Meter, b.Meter) })
	return out, nil
}

// byMeterFlags finds the flags to OR a meter's into (nil: not asked for).
type byMeterFlags func(meter string) *ledger.Flag

// bucketFlags ORs into flags the distinct flags of the meters' buckets in the pieces.
func (s *Influx) bucketFlags(ctx context.Context, site string, pieces []piece, meters []string, flags byMeterFlags) error {
	slices.Sort(meters)
	stmts := make([]string, len(pieces))
	for i, p := range pieces {
		stmts[i] = fmt.Sprintf(`SELECT DISTINCT("flags") AS "flags" FROM %s WHERE "site" = %s AND %s AND time >= %d AND time <= %d GROUP BY "meter"`,
			s.from("volume"), quoteString(site), meterFilter(meters), p.lo, p.hi)
	}
	fs, err := s.query(ctx, http.MethodGet, s.db, strings.Join(stmts, "; "))
	if err != nil {
		return fmt.Errorf("read bucket flags of %s in %s: %w", site, s.base.Redacted(), err)
	}
	for _, se := range fs {
		col := se.col()
		meter := se.Tags["meter"]
		into := flags(meter)
		if into == nil {
			continue
		}
		for _, row := range se.Values {
			f, err := asInt(row[col["flags"]])
			if err != nil {
				return fmt.Errorf("read bucket flags of %s: %s: %w", site, meter, err)
			}
			*into |= ledger.Flag(f)
		}
	}
	return nil
}

// measurements lists the measurements of the database.
func (s *Influx) measurements(ctx context.Context) (map[string]bool, error) {
	ms, err := s.query(ctx, http.MethodGet, s.db, "SHOW MEASUREMENTS")
	if err != nil {
		return nil, fmt.Errorf("list measurements: %w", err)
	}
	have := map[string]bool{}
	for _, se := range ms {
		for _, row := range se.Values {
			if name, ok := row[0].(string); ok {
				have[name] = true
			}
		}
	}
	return have, nil
}

// tagValues lists the values of key in measurement, where the condition (may be empty) holds.
func (s *Influx) tagValues(ctx context.Context, measurement, key, where string) ([]string, error) {
	q := fmt.Sprintf(`SHOW TAG VALUES FROM %s WITH KEY = %s`, s.from(measurement), quoteIdent(key))
	if where != "" {
		q += " WHERE " + where
	}
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("list %s of %s: %w", key, measurement, err)
	}
	var out []string
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			if v, ok := row[col["value"]].(string); ok {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// backfillRollups fills, at open, the roll-ups a database written by an earlier release lacks:
// the per-meter ones from the stored buckets when it has "volume" but no "volume_hour", then
// the packed ones from the per-meter ones (backfillPacked).
func (s *Influx) backfillRollups(ctx context.Context) error {
	have, err := s.measurements(ctx)
	if err != nil {
		return err
	}
	if have["volume"] && !have["volume_hour"] {
		if err := s.backfillPerMeter(ctx); err != nil {
			return err
		}
		if have, err = s.measurements(ctx); err != nil {
			return err
		}
	}
	return s.backfillPacked(ctx, have)
}

// backfillPerMeter fills volume_hour and volume_day from the stored buckets, a month at a time
// per site.
func (s *Influx) backfillPerMeter(ctx context.Context) error {
	sites, err := s.tagValues(ctx, "volume", "site", "")
	if err != nil {
		return err
	}
	for _, site := range sites {
		meters, err := s.tagValues(ctx, "volume", "meter", `"site" = `+quoteString(site))
		if err != nil {
			return err
		}
		span, err := s.query(ctx, http.MethodGet, s.db, fmt.Sprintf(`SELECT FIRST("volume") FROM %s WHERE "site" = %s; SELECT LAST("volume") FROM %s WHERE "site" = %s`,
			s.from("volume"), quoteString(site), s.from("volume"), quoteString(site)))
		if err != nil || len(span) < 2 || len(span[0].Values) == 0 || len(span[1].Values) == 0 {
			continue
		}
		first, err1 := asInt(span[0].Values[0][0])
		last, err2 := asInt(span[1].Values[0][0])
		if err1 != nil || err2 != nil {
			continue
		}
		for d := floorTo(first, dayNs); d <= last; d += 30 * dayNs {
			end := min(d+30*dayNs, floorTo(last, dayNs)+dayNs) - 1
			hrs, err := s.aggregate(ctx, "volume", site, meters, d, end, "1h")
			if err != nil {
				return err
			}
			if err := s.writeRollup(ctx, "volume_hour", site, hrs); err != nil {
				return err
			}
			days, err := s.aggregate(ctx, "volume_hour", site, meters, d, end, "1d")
			if err != nil {
				return err
			}
			if err := s.writeRollup(ctx, "volume_day", site, days); err != nil {
				return err
			}
		}
		s.logger.Info("ledger roll-ups filled from stored buckets", "site", site)
	}
	return nil
}

// backfillPacked builds the packed rows (packed.go) of the sites that have per-meter roll-ups
// but no packed ones: a database written before packed rows existed. A site's fill is bracketed
// by two points of "rollup_fill" (done false, then true), so a fill cut short by a stop is
// made again at the next open rather than taken for done because some packed rows exist.
func (s *Influx) backfillPacked(ctx context.Context, have map[string]bool) error {
	if !have["volume_hour"] {
		return nil
	}
	sites, err := s.tagValues(ctx, "volume_hour", "site", "")
	if err != nil {
		return err
	}
	packed := map[string]bool{}
	if have["site_hour"] {
		ps, err := s.tagValues(ctx, "site_hour", "site", "")
		if err != nil {
			return err
		}
		for _, p := range ps {
			packed[p] = true
		}
	}
	if have["rollup_fill"] {
		ss, err := s.query(ctx, http.MethodGet, s.db, fmt.Sprintf(`SELECT LAST("done") AS "done" FROM %s GROUP BY "site"`, s.from("rollup_fill")))
		if err != nil {
			return fmt.Errorf("read packed roll-up fills: %w", err)
		}
		for _, se := range ss {
			col := se.col()
			for _, row := range se.Values {
				if done, _ := row[col["done"]].(bool); !done {
					delete(packed, se.Tags["site"])
				}
			}
		}
	}
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	if s.rc.parts == nil {
		s.rc.parts = map[sitePart]int{}
	}
	for _, site := range sites {
		if packed[site] {
			continue
		}
		start := time.Now()
		if err := s.fillPacked(ctx, site); err != nil {
			return err
		}
		s.logger.Info("packed roll-ups filled from per-meter roll-ups", "site", site, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// fillRows is about the most per-meter hour rows fillPacked reads in one request.
const fillRows = 200000

// fillPacked writes site's packed rows from its per-meter roll-ups, a month at a time: the
// month's day rows give site_day and site_month, its hour rows (a few days per request for a
// site with many meters) site_hour.
func (s *Influx) fillPacked(ctx context.Context, site string) error {
	marker := func(done bool) error {
		p := write.NewPointWithMeasurement("rollup_fill").AddTag("site", site).AddField("done", done).SetTime(time.Now())
		return s.writePointsTo(ctx, s.roller, "write packed roll-up fill marker", []*write.Point{p})
	}
	if err := marker(false); err != nil {
		return err
	}
	if err := s.loadParts(ctx, []sitePeriod{{site: site}}); err != nil {
		return err
	}
	span, err := s.query(ctx, http.MethodGet, s.db, fmt.Sprintf(`SELECT FIRST("n") FROM %s WHERE "site" = %s; SELECT LAST("n") FROM %s WHERE "site" = %s`,
		s.from("volume_day"), quoteString(site), s.from("volume_day"), quoteString(site)))
	if err != nil {
		return fmt.Errorf("read the span of %s's roll-ups: %w", site, err)
	}
	if len(span) == 2 && len(span[0].Values) > 0 && len(span[1].Values) > 0 {
		first, err1 := asInt(span[0].Values[0][0])
		last, err2 := asInt(span[1].Values[0][0])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("read the span of %s's roll-ups: %v %v", site, err1, err2)
		}
		for m := floorMonth(first); m <= last; {
			next := ceilMonth(m + 1)
			if err := s.fillPackedMonth(ctx, site, m, next); err != nil {
				return err
			}
			if next == math.MaxInt64 {
				break
			}
			m = next
		}
	}
	return marker(true)
}

// fillPackedMonth writes site's packed rows of the UTC month [m, next).
func (s *Influx) fillPackedMonth(ctx context.Context, site string, m, next int64) error {
	read := func(measurement string, lo, hi int64, step int64) (map[int64]map[string]sums, error) {
		ss, err := s.query(ctx, http.MethodGet, s.db, fmt.Sprintf(`SELECT "meter", "volume", "coverage", "n", "flags" FROM %s WHERE "site" = %s AND time >= %d AND time <= %d`,
			s.from(measurement), quoteString(site), lo, hi))
		if err != nil {
			return nil, fmt.Errorf("read %s of %s from %s: %w", measurement, site, s.base.Redacted(), err)
		}
		out := map[int64]map[string]sums{}
		for _, se := range ss {
			col := se.col()
			for _, row := range se.Values {
				r, err := rowSums(col, row)
				if err != nil {
					s.logger.Warn("incomplete roll-up skipped", "measurement", measurement, "site", site, "err", err)
					continue
				}
				if floorTo(r.start, step) != r.start {
					continue
				}
				if out[r.start] == nil {
					out[r.start] = map[string]sums{}
				}
				out[r.start][r.meter] = r.sums()
			}
		}
		return out, nil
	}
	days, err := read("volume_day", m, next-1, dayNs)
	if err != nil {
		return err
	}
	var pts []*write.Point
	perMeter := map[string]map[int64]sums{}
	for _, d := range slices.Sorted(maps.Keys(days)) {
		p, err := packedPoints(s.rc.parts, "site_day", site, d, days[d])
		if err != nil {
			return err
		}
		pts = append(pts, p...)
		for meter, v := range days[d] {
			if perMeter[meter] == nil {
				perMeter[meter] = map[int64]sums{}
			}
			perMeter[meter][d] = v
		}
	}
	if len(perMeter) > 0 {
		month := map[string]sums{}
		for meter, ds := range perMeter {
			month[meter] = sumInOrder(ds)
		}
		p, err := packedPoints(s.rc.parts, "site_month", site, m, month)
		if err != nil {
			return err
		}
		pts = append(pts, p...)
	}
	if err := s.writePointsTo(ctx, s.roller, "write packed roll-ups", pts); err != nil {
		return err
	}
	// The hours, a few days per request so that a site with many meters does not come back as
	// one huge answer.
	step := int64(max(1, fillRows/(24*max(1, len(perMeter))))) * dayNs
	for lo := m; ; lo += step {
		hi := next - 1
		if next-lo > step { // no overflow: both lie in the storable range
			hi = lo + step - 1
		}
		hours, err := read("volume_hour", lo, hi, hourNs)
		if err != nil {
			return err
		}
		pts = pts[:0]
		for _, h := range slices.Sorted(maps.Keys(hours)) {
			p, err := packedPoints(s.rc.parts, "site_hour", site, h, hours[h])
			if err != nil {
				return err
			}
			pts = append(pts, p...)
		}
		if err := s.writePointsTo(ctx, s.roller, "write packed roll-ups", pts); err != nil {
			return err
		}
		if hi >= next-1 {
			break
		}
	}
	return nil
}
