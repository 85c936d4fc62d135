package report

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// DayHash is the fingerprint of one day (in the site's time zone) of the data behind a pack:
// SHA-256 of the canonical lines of every reading and every ledger bucket of the site's meters,
// meter by meter in register order, oldest first.
type DayHash struct {
	Day      string `json:"day"`
	Readings string `json:"readings"`
	Buckets  string `json:"buckets"`
	// NReadings and NBuckets count the lines hashed.
	NReadings int `json:"n_readings"`
	NBuckets  int `json:"n_buckets"`
}

// ScanResult is what one pass over a period's readings and buckets gives.
type ScanResult struct {
	Days     []DayHash
	Hourly   Hourly
	Quality  map[string]MeterQuality
	Coverage map[string]float64 // good minutes per meter
	Buckets  map[string]int     // buckets per meter
}

// readingLine is the canonical form of a reading: meter, Unix ns, sequence, then its points by
// name as name=value/quality; values in the shortest form that reads back exactly.
func readingLine(buf []byte, r collector.Reading) []byte {
	buf = append(buf, r.Meter...)
	buf = append(buf, '|')
	buf = strconv.AppendInt(buf, r.Time.UnixNano(), 10)
	buf = append(buf, '|')
	buf = strconv.AppendUint(buf, r.Seq, 10)
	pts := slices.Clone(r.Points)
	slices.SortFunc(pts, func(a, b collector.Point) int { return cmp.Compare(a.Name, b.Name) })
	for _, p := range pts {
		buf = append(buf, '|')
		buf = append(buf, p.Name...)
		buf = append(buf, '=')
		buf = strconv.AppendFloat(buf, p.Value, 'g', -1, 64)
		buf = append(buf, '/')
		buf = append(buf, p.Quality.String()...)
	}
	return append(buf, '\n')
}

// bucketLine is the canonical form of a ledger bucket: meter, start in Unix ns, volume, flags
// (as a number) and coverage.
func bucketLine(buf []byte, b ledger.Bucket) []byte {
	buf = append(buf, b.Meter...)
	buf = append(buf, '|')
	buf = strconv.AppendInt(buf, b.Start.UnixNano(), 10)
	buf = append(buf, '|')
	buf = strconv.AppendFloat(buf, b.Volume, 'g', -1, 64)
	buf = append(buf, '|')
	buf = strconv.AppendUint(buf, uint64(b.Flags), 10)
	buf = append(buf, '|')
	buf = strconv.AppendFloat(buf, b.Coverage, 'g', -1, 64)
	return append(buf, '\n')
}

// days returns the midnights of the days of [from, to) in loc, and the end.
func days(from, to time.Time, loc *time.Location) []time.Time {
	f := from.In(loc)
	var out []time.Time
	for d := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc); d.Before(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}

// Scan reads the readings and buckets of a site's meters over [from, to), day by day, and
// returns each day's hashes, each meter's hourly volumes and data quality. Verify calls it
// again on the store to find the first day that changed.
func Scan(ctx context.Context, st Store, s *analytics.Site, from, to time.Time) (*ScanResult, error) {
	loc := s.Location()
	ds := days(from, to, loc)
	out := &ScanResult{Quality: map[string]MeterQuality{}, Coverage: map[string]float64{}, Buckets: map[string]int{}}
	meterIdx := map[string]int{}
	for i, m := range s.Meters {
		meterIdx[m.ID] = i
		out.Hourly.Meters = append(out.Hourly.Meters, m.ID)
	}
	nh := int((to.Sub(from) + time.Hour - 1) / time.Hour)
	out.Hourly.Hours = make([]time.Time, nh)
	out.Hourly.Volume = make([][]float64, nh)
	for h := range nh {
		out.Hourly.Hours[h] = from.Add(time.Duration(h) * time.Hour)
		out.Hourly.Volume[h] = make([]float64, len(s.Meters))
	}
	readHash := make([]hash.Hash, len(ds))
	for i := range ds {
		readHash[i] = sha256.New()
	}
	out.Days = make([]DayHash, len(ds))
	var buf []byte
	for i, d := range ds {
		end := d.AddDate(0, 0, 1)
		lo, hi := maxTime(d, from), minTime(end, to)
		out.Days[i].Day = d.Format(time.DateOnly)
		bs, err := st.Buckets(ctx, s.ID, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("read ledger of %s on %s: %w", s.ID, out.Days[i].Day, err)
		}
		// Register order, then time: the store orders by meter id, which need not be it.
		slices.SortStableFunc(bs, func(a, b ledger.Bucket) int {
			ia, oka := meterIdx[a.Meter]
			ib, okb := meterIdx[b.Meter]
			if !oka {
				ia = len(s.Meters)
			}
			if !okb {
				ib = len(s.Meters)
			}
			if c := cmp.Compare(ia, ib); c != 0 {
				return c
			}
			if c := cmp.Compare(a.Meter, b.Meter); c != 0 {
				return c
			}
			return a.Start.Compare(b.Start)
		})
		hb := sha256.New()
		for _, b := range bs {
			buf = bucketLine(buf[:0], b)
			hb.Write(buf)
			mi, ok := meterIdx[b.Meter]
			if !ok {
				continue
			}
			if h := int(b.Start.Sub(from) / time.Hour); h >= 0 && h < nh {
				out.Hourly.Volume[h][mi] += b.Volume
			}
			q := out.Quality[b.Meter]
			q.Volume += b.Volume
			for _, f := range []struct {
				flag ledger.Flag
				n    *int
			}{{ledger.Gap, &q.Gap}, {ledger.Estimated, &q.Estimated}, {ledger.Derived, &q.Derived}, {ledger.Reset, &q.Reset},
				{ledger.Replaced, &q.Replaced}, {ledger.Clamped, &q.Clamped}, {ledger.Spike, &q.Spike}, {ledger.Fault, &q.Fault}, {ledger.Rollover, &q.Rollover}} {
				if b.Flags&f.flag != 0 {
					*f.n++
				}
			}
			if b.Flags&(ledger.Estimated|ledger.Derived) != 0 {
				q.EstimatedVolume += b.Volume
			}
			out.Quality[b.Meter] = q
			out.Coverage[b.Meter] += b.Coverage
			out.Buckets[b.Meter]++
		}
		out.Days[i].Buckets = hex.EncodeToString(hb.Sum(nil))
		out.Days[i].NBuckets = len(bs)
	}
	// Readings meter by meter, a week at a time, each into its day's hash: register order
	// within every day.
	for _, m := range s.Meters {
		for c := from; c.Before(to); c = c.AddDate(0, 0, 7) {
			ce := minTime(c.AddDate(0, 0, 7), to)
			rs, err := st.Readings(ctx, s.ID, m.ID, c, ce)
			if err != nil {
				return nil, fmt.Errorf("read readings of %s/%s: %w", s.ID, m.ID, err)
			}
			for _, r := range rs {
				i := dayIndex(ds, r.Time)
				if i < 0 {
					continue
				}
				buf = readingLine(buf[:0], r)
				readHash[i].Write(buf)
				out.Days[i].NReadings++
			}
		}
	}
	for i := range ds {
		out.Days[i].Readings = hex.EncodeToString(readHash[i].Sum(nil))
	}
	return out, nil
}

func dayIndex(ds []time.Time, t time.Time) int {
	i, found := slices.BinarySearchFunc(ds, t, func(d, t time.Time) int { return d.Compare(t) })
	if found {
		return i
	}
	return i - 1
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
