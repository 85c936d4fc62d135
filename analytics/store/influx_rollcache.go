package store

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// rollCache holds what the roll-ups of recently written hours and days are summed from: the
// buckets of each hour, the hour sums of each day. With it, a batch of in-order buckets updates
// its hours and days in memory and costs one write of roll-up points, where re-summing them in
// InfluxDB cost two aggregate queries a batch and doubled influxd's CPU per reading. An hour or
// day not in the cache (the first touch after a start, a late bucket) is loaded from the store
// once. The cache is right as long as this process is the only writer of its sites' buckets,
// which the partition guarantees (docs/scale.md); it is dropped whole when it grows past
// rollCacheMax entries, and entries touched by a failed write are forgotten.
type rollCache struct {
	mu    sync.Mutex
	hours map[touched]map[int64]cell   // (site, meter, hour) → bucket start → value
	days  map[touched]map[int64]aggRow // (site, meter, day) → hour start → hour sum
}

type cell struct {
	vol, cov float64
	flags    ledger.Flag
}

const rollCacheMax = 20000

// rollUpCached brings the roll-ups of the hours and days bs (already written) touch up to date.
func (s *Influx) rollUpCached(ctx context.Context, bs []ledger.Bucket) (err error) {
	c := &s.rc
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hours == nil || len(c.hours) > rollCacheMax || len(c.days) > rollCacheMax {
		c.hours, c.days = map[touched]map[int64]cell{}, map[touched]map[int64]aggRow{}
	}
	hours, days := touchedPeriods(bs)
	defer func() {
		if err != nil {
			for _, h := range hours {
				delete(c.hours, h)
			}
			for _, d := range days {
				delete(c.days, d)
			}
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
	missing = missing[:0]
	for _, d := range days {
		if _, ok := c.days[d]; !ok {
			missing = append(missing, d)
		}
	}
	if err := s.loadDays(ctx, missing); err != nil {
		return err
	}
	var pts []*write.Point
	for _, h := range hours {
		r := aggRow{meter: h.meter, start: h.start}
		for _, v := range c.hours[h] {
			r.volume += v.vol
			r.coverage += v.cov
			r.n++
			r.flagsOr |= v.flags
		}
		c.days[touched{h.site, h.meter, floorTo(h.start, dayNs)}][h.start] = r
		pts = append(pts, rollupPoint("volume_hour", h.site, r))
	}
	for _, d := range days {
		r := aggRow{meter: d.meter, start: d.start}
		for _, v := range c.days[d] {
			r.volume += v.volume
			r.coverage += v.coverage
			r.n += v.n
			r.flagsOr |= v.flagsOr
		}
		pts = append(pts, rollupPoint("volume_day", d.site, r))
	}
	return s.writePointsTo(ctx, s.roller, "write roll-ups", pts)
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

// loadDays reads the stored hour roll-ups of the given days into the cache.
func (s *Influx) loadDays(ctx context.Context, keys []touched) error {
	for _, d := range keys {
		s.rc.days[d] = map[int64]aggRow{}
	}
	for site, sp := range bySite(keys) {
		q := fmt.Sprintf(`SELECT "meter", "volume", "coverage", "n", "flags" FROM %s WHERE "site" = %s AND %s AND time >= %d AND time <= %d`,
			s.from("volume_hour"), quoteString(site), meterFilter(slices.Sorted(maps.Keys(sp.meters))), sp.lo, sp.hi+dayNs-1)
		ss, err := s.query(ctx, http.MethodGet, s.db, q)
		if err != nil {
			return fmt.Errorf("read hour roll-ups of %s from %s: %w", site, s.base.Redacted(), err)
		}
		for _, se := range ss {
			col := se.col()
			for _, row := range se.Values {
				var r aggRow
				var err error
				var flags int64
				r.meter, _ = row[col["meter"]].(string)
				if r.start, err = asInt(row[col["time"]]); err == nil {
					if r.volume, err = asFloat(row[col["volume"]]); err == nil {
						if r.coverage, err = asFloat(row[col["coverage"]]); err == nil {
							if r.n, err = asInt(row[col["n"]]); err == nil {
								flags, err = asInt(row[col["flags"]])
							}
						}
					}
				}
				if err != nil {
					return fmt.Errorf("read hour roll-ups of %s/%s: %w", site, r.meter, err)
				}
				r.flagsOr = ledger.Flag(flags)
				k := touched{meter: r.meter, start: floorTo(r.start, dayNs)}
				if sp.keys[k] {
					s.rc.days[touched{site, r.meter, k.start}][r.start] = r
				}
			}
		}
	}
	return nil
}
