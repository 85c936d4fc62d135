package store

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// Only keys at or before their meter's newest stored reading can meet a stored one: live
	// data, newer than everything, costs no lookup.
	if err := s.loadNewest(ctx, order); err != nil {
		return nil, err
	}
	var maybe []readingKey
	for _, k := range order {
		if !s.newest.after(k) {
			maybe = append(maybe, k)
		}
	}
	stored, err := s.storedAt(ctx, maybe)
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
						// A torn point: influxd stored some of its fields and not the others
						// (a large write is split into several WAL entries, and the server was
						// killed between them). It is no reading; writing the whole reading again
						// completes it, as InfluxDB merges the fields of one point.
						s.logger.Warn("incomplete stored reading is written again", "site", site, "meter", meter, "err", err)
						continue
					}
					r.Site, r.Meter = site, meter
					out[readingKey{site, meter, r.Time.UnixNano()}] = r
				}
			}
		}
	}
	return out, nil
}

// newestTimes remembers, per meter, the time of its newest reading in the store: looked up once
// (loadNewest), then advanced by every write. One int64 a meter.
type newestTimes struct {
	mu sync.Mutex
	m  map[[2]string]int64 // site, meter → Unix ns; math.MinInt64 when the meter has none
}

func (n *newestTimes) get(site, meter string) (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.m[[2]string{site, meter}]
	return t, ok
}

func (n *newestTimes) set(site, meter string, t int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[[2]string]int64{}
	}
	k := [2]string{site, meter}
	if old, ok := n.m[k]; !ok || t > old {
		n.m[k] = t
	}
}

// after reports whether k is newer than every stored reading of its meter.
func (n *newestTimes) after(k readingKey) bool {
	t, ok := n.get(k.site, k.meter)
	return ok && k.time > t
}

// advance records written readings, for meters already known.
func (n *newestTimes) advance(rs []collector.Reading) {
	for _, r := range rs {
		if _, ok := n.get(r.Site, r.Meter); ok {
			n.set(r.Site, r.Meter, r.Time.UnixNano())
		}
	}
}

// loadNewest looks up the newest stored reading of the keys' meters not known yet: per site,
// one query per group of meters.
func (s *Influx) loadNewest(ctx context.Context, keys []readingKey) error {
	bySite := map[string][]string{}
	var sites []string
	seen := map[[2]string]bool{}
	for _, k := range keys {
		if _, ok := s.newest.get(k.site, k.meter); ok || seen[[2]string{k.site, k.meter}] {
			continue
		}
		seen[[2]string{k.site, k.meter}] = true
		if bySite[k.site] == nil {
			sites = append(sites, k.site)
		}
		bySite[k.site] = append(bySite[k.site], k.meter)
	}
	for _, site := range sites {
		for ms := range slices.Chunk(bySite[site], conflictMeters) {
			conds := make([]string, len(ms))
			for i, m := range ms {
				conds[i] = `"meter" = ` + quoteString(m)
			}
			q := fmt.Sprintf(`SELECT last("seq") FROM %s WHERE "site" = %s AND (%s) AND time >= %d AND time <= %d GROUP BY "meter"`,
				s.from("reading"), quoteString(site), strings.Join(conds, " OR "), int64(minNanos), int64(maxNanos))
			ss, err := s.query(ctx, http.MethodGet, s.db, q)
			if err != nil {
				return fmt.Errorf("look up newest readings of %s on %s: %w", site, s.base.Redacted(), err)
			}
			found := map[string]int64{}
			for _, se := range ss {
				col := se.col()
				for _, row := range se.Values {
					if ns, err := asInt(row[col["time"]]); err == nil {
						found[se.Tags["meter"]] = ns
					}
				}
			}
			for _, m := range ms {
				t, ok := found[m]
				if !ok {
					t = math.MinInt64
				}
				s.newest.set(site, m, t)
			}
		}
	}
	return nil
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
