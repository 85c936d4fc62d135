package store

import (
	"math"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// Roll-ups. Beside the 1-minute buckets both back ends keep, per site and meter, the sums of
// every UTC hour and every UTC day that has buckets: volume, coverage, the number of buckets and
// the union of their flags. WriteBuckets keeps them current: after it writes buckets it sums
// again, from the buckets, every hour it touched, then every day from its hours, so late and
// corrected buckets change their hour and day like any others and a roll-up is never more than
// a re-sum of what is stored.
//
// MeterTotals then reads a period [from, to) as the coarsest pieces that fit: the minutes up to
// the first whole UTC hour, the hours up to the first whole UTC day, the days, and the same in
// reverse at the end. Days are UTC days, not the site's: a site-local day or month in a zone
// with a whole-hour offset (Asia/Shanghai, UTC+8) then starts and ends on UTC hours, so it reads
// UTC days in its middle and at most 23 hours at each edge; in a zone with a half- or
// quarter-hour offset (Asia/Kolkata, UTC+5:30) its edges fall inside an hour and it reads those
// 30 or 45 minutes as buckets. Any zone, any period, gives the same answer as summing buckets.

// rangeKind says where a piece of a period is read from.
type rangeKind int

const (
	fromBuckets rangeKind = iota
	fromHours
	fromDays
	fromMonths // InfluxDB only (splitMonths): the packed month rows
)

// piece is a closed nanosecond range [lo, hi] read from one table.
type piece struct {
	kind   rangeKind
	lo, hi int64
}

const (
	hourNs = int64(3600e9)
	dayNs  = 24 * hourNs
)

// floorTo rounds x down to a multiple of step (also for negative x), or to math.MinInt64 when
// that multiple is not an int64.
func floorTo(x, step int64) int64 {
	q := x / step
	if x%step != 0 && x < 0 {
		q--
	}
	if q < math.MinInt64/step {
		return math.MinInt64
	}
	return q * step
}

// ceilTo rounds x (> math.MinInt64) up to a multiple of step, or to math.MaxInt64 when that
// multiple is not an int64.
func ceilTo(x, step int64) int64 {
	f := floorTo(-x, step)
	if f == math.MinInt64 {
		return math.MaxInt64
	}
	return -f
}

// split cuts the closed range [lo, hi] of bucket starts into pieces: buckets at the ragged
// edges, hour roll-ups inside whole hours, day roll-ups inside whole days. A roll-up row at
// start s covers the buckets with s <= start < s + its length, so a piece of hours [a, b] means
// the hour rows whose start lies in [a, b] where a and b+1 are whole hours.
func split(lo, hi int64) []piece {
	end := hi + 1 // exclusive; hi <= maxNanos so no overflow
	h0, h1 := ceilTo(lo, hourNs), floorTo(end, hourNs)
	if h0 >= h1 {
		return []piece{{fromBuckets, lo, hi}}
	}
	var out []piece
	add := func(k rangeKind, a, b int64) { // [a, b)
		if a < b {
			out = append(out, piece{k, a, b - 1})
		}
	}
	add(fromBuckets, lo, h0)
	d0, d1 := ceilTo(h0, dayNs), floorTo(h1, dayNs)
	if d0 < d1 {
		add(fromHours, h0, d0)
		add(fromDays, d0, d1)
		add(fromHours, d1, h1)
	} else {
		add(fromHours, h0, h1)
	}
	add(fromBuckets, h1, end)
	return out
}

// splitMonths is split with a fourth level, for InfluxDB's packed roll-ups (influx_packed.go):
// the whole UTC calendar months inside a run of whole days are read from month rows. A year
// then reads about a dozen month rows instead of 365 day rows. SQLite keeps split: it has no
// month table and its day sums already cost little.
func splitMonths(lo, hi int64) []piece {
	var out []piece
	for _, p := range split(lo, hi) {
		if p.kind != fromDays {
			out = append(out, p)
			continue
		}
		end := p.hi + 1 // a whole day, so no overflow
		m0, m1 := ceilMonth(p.lo), floorMonth(end)
		if m0 >= m1 {
			out = append(out, p)
			continue
		}
		if p.lo < m0 {
			out = append(out, piece{fromDays, p.lo, m0 - 1})
		}
		out = append(out, piece{fromMonths, m0, m1 - 1})
		if m1 < end {
			out = append(out, piece{fromDays, m1, end - 1})
		}
	}
	return out
}

// monthStart is the start of the UTC calendar month holding x.
func monthStart(x int64) time.Time {
	t := time.Unix(0, x).UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// floorMonth rounds x down to the start of its UTC month, or to math.MinInt64 when that start
// is not an int64 of nanoseconds.
func floorMonth(x int64) int64 {
	m := monthStart(x)
	if m.Before(time.Unix(0, math.MinInt64)) {
		return math.MinInt64
	}
	return m.UnixNano()
}

// ceilMonth rounds x up to the start of a UTC month, or to math.MaxInt64 when that start is not
// an int64 of nanoseconds.
func ceilMonth(x int64) int64 {
	m := monthStart(x)
	if !m.Before(time.Unix(0, math.MinInt64)) && m.UnixNano() == x {
		return x
	}
	next := m.AddDate(0, 1, 0)
	if next.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64
	}
	return next.UnixNano()
}

// touched lists, per site and meter, the hours whose buckets bs change, and the days of those
// hours, in order.
type touched struct {
	site, meter string
	start       int64
}

func touchedPeriods(bs []ledger.Bucket) (hours, days []touched) {
	hs := map[touched]bool{}
	ds := map[touched]bool{}
	for _, b := range bs {
		ns := b.Start.UnixNano()
		h := touched{b.Site, b.Meter, floorTo(ns, hourNs)}
		if !hs[h] {
			hs[h] = true
			hours = append(hours, h)
		}
		d := touched{b.Site, b.Meter, floorTo(ns, dayNs)}
		if !ds[d] {
			ds[d] = true
			days = append(days, d)
		}
	}
	cmp := func(a, b touched) int {
		switch {
		case a.site != b.site:
			return compareStr(a.site, b.site)
		case a.meter != b.meter:
			return compareStr(a.meter, b.meter)
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	}
	slices.SortFunc(hours, cmp)
	slices.SortFunc(days, cmp)
	return hours, days
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
