package store

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/collector"
)

// InfluxDB keeps one point per series and time, and a second write merges into it: it cannot
// refuse a write by key. So WriteReadings first reads what is stored at the batch's times and
// writes only new keys to "reading"; a differing reading goes to the measurement
// "reading_conflict" (tags site, meter and version, a hash of its content, so that distinct
// versions at one time are distinct series; fields as in "reading" plus received, Unix ns).

// conflictMeters is the most meters one lookup query names, to keep its URL short.
const conflictMeters = 50

type readingKey struct {
	site, meter string
	time        int64
}

// sortOut returns the points to write for rs: the new readings, and the conflicting ones in
// reading_conflict. Identical replays produce nothing.
func (s *Influx) sortOut(ctx context.Context, rs []collector.Reading) ([]*write.Point, error) {
	byKey := map[readingKey][]collector.Reading{}
	var order []readingKey
	for _, r := range rs {
		k := readingKey{r.Site, r.Meter, r.Time.UnixNano()}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	stored, err := s.storedAt(ctx, order)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	pts := make([]*write.Point, 0, len(rs))
	var conflicts []collector.Reading
	for _, k := range order {
		group := byKey[k]
		kept, ok := stored[k]
		if !ok {
			// The first of the batch is stored; the rest of the batch is compared to it.
			kept, group = group[0], group[1:]
			p, err := readingPoint(kept)
			if err != nil {
				return nil, err
			}
			pts = append(pts, p)
		}
		for _, r := range group {
			if !sameReading(kept, r) {
				conflicts = append(conflicts, r)
			}
		}
	}
	for _, r := range conflicts {
		p, err := pointIn("reading_conflict", r)
		if err != nil {
			return nil, err
		}
		p.AddTag("version", version(r)).AddField("received", now.UnixNano())
		pts = append(pts, p)
	}
	return pts, nil
}

// version names one content of a reading.
func version(r collector.Reading) string {
	h := fnv.New64a()
	b, _ := json.Marshal(struct {
		E string
		S uint64
		T collector.TimeSource
		P []collector.Point
	}{r.Edge, r.Seq, r.TimeSource, r.Points})
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}

// storedAt reads the readings stored at the keys' times: per site, one query per group of
// meters over the batch's time range.
func (s *Influx) storedAt(ctx context.Context, keys []readingKey) (map[readingKey]collector.Reading, error) {
	type span struct {
		meters []string
		seen   map[string]bool
		lo, hi int64
	}
	bySite := map[string]*span{}
	var sites []string
	for _, k := range keys {
		sp := bySite[k.site]
		if sp == nil {
			sp = &span{seen: map[string]bool{}, lo: k.time, hi: k.time}
			bySite[k.site] = sp
			sites = append(sites, k.site)
		}
		if !sp.seen[k.meter] {
			sp.seen[k.meter] = true
			sp.meters = append(sp.meters, k.meter)
		}
		sp.lo, sp.hi = min(sp.lo, k.time), max(sp.hi, k.time)
	}
	out := map[readingKey]collector.Reading{}
	for _, site := range sites {
		sp := bySite[site]
		for ms := range slices.Chunk(sp.meters, conflictMeters) {
			conds := make([]string, len(ms))
			for i, m := range ms {
				conds[i] = `"meter" = ` + quoteString(m)
			}
			q := fmt.Sprintf(`SELECT * FROM %s WHERE "site" = %s AND (%s) AND time >= %d AND time <= %d GROUP BY "meter"`,
				s.from("reading"), quoteString(site), strings.Join(conds, " OR "), sp.lo, sp.hi)
			ss, err := s.query(ctx, http.MethodGet, s.db, q)
			if err != nil {
				return nil, fmt.Errorf("look up stored readings of %s on %s: %w", site, s.base.Redacted(), err)
			}
			for _, se := range ss {
				col := se.col()
				meter := se.Tags["meter"]
				for _, row := range se.Values {
					r, err := rowReading(col, row)
					if err != nil {
						return nil, fmt.Errorf("look up stored readings of %s/%s: %w", site, meter, err)
					}
					r.Site, r.Meter = site, meter
					out[readingKey{site, meter, r.Time.UnixNano()}] = r
				}
			}
		}
	}
	return out, nil
}

// Conflicts returns the readings set aside for a site with from <= time < to, oldest first.
func (s *Influx) Conflicts(ctx context.Context, site, meter string, from, to time.Time) ([]Conflict, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	cond := ""
	if meter != "" {
		cond = ` AND "meter" = ` + quoteString(meter)
	}
	q := fmt.Sprintf(`SELECT * FROM %s WHERE "site" = %s%s AND time >= %d AND time <= %d GROUP BY "meter", "version"`,
		s.from("reading_conflict"), quoteString(site), cond, lo, hi)
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("read conflicts of %s from %s: %w", site, s.base.Redacted(), err)
	}
	var out []Conflict
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			r, err := rowReading(col, row)
			if err != nil {
				return nil, fmt.Errorf("read conflicts of %s: %w", site, err)
			}
			r.Site, r.Meter = site, se.Tags["meter"]
			c := Conflict{Reading: r}
			if i, ok := col["received"]; ok && i < len(row) {
				if ns, err := asInt(row[i]); err == nil {
					c.Received = fromNanos(ns)
				}
			}
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b Conflict) int {
		if c := a.Reading.Time.Compare(b.Reading.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Reading.Meter, b.Reading.Meter); c != 0 {
			return c
		}
		return a.Received.Compare(b.Received)
	})
	return out, nil
}
