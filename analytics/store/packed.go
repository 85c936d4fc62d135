package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// Packed roll-ups (InfluxDB only). influxd's cost of a query grows with the series, fields and
// shards it opens cursors on: summing the per-meter roll-ups of a 100-meter site opens about 500
// cursors a statement, 35 to 45 ms for a month or a year whatever the number of rows. So beside
// the per-meter rows the store keeps one series per site and period length, whose single string
// field holds the sums of every meter of the site in that period:
//
//	site_hour, site_day, site_month   tags site and part, at the UTC hour, day or month start
//	meters                            string: the part's text, below
//
// A period is read with one cursor per part, whatever the number of meters, and the sums are
// added up in Go.
//
// The text of a part is a header, the number of parts of the row, and one record per meter in
// increasing order of meter id (bytewise), each followed by ';':
//
//	2;M01 12.5 60 60 0;pump%20B 0.25 1.5 2 4;
//
// A record is the meter id, its volume and coverage (strconv 'g' with the shortest precision,
// which parses back to the same float64), n (buckets summed) and flags (their union), separated
// by single spaces. In the id every byte that is '%', ' ', ';', '"', '\\' or a control character
// is written %XX (two upper-case hex digits), so any id round-trips. Newlines and backslashes are
// escaped here rather than left to the line protocol because the v2 client writes a newline in a
// string field as `\n` and influxd 1.8 keeps those two characters; and escaping '"' and '\\'
// ourselves keeps the line protocol from doubling them.
//
// InfluxDB 1.8 documents 64 KiB as the most a string field holds, so a site with many meters is
// split into k parts of at most partLimit bytes: meter m goes to part fnv1a(m) mod k, k the
// smallest of minParts, 2·minParts, 4·minParts … for which every part fits. The same meters give
// the same parts. A row's k never goes down (writers pass the most parts the site has used as
// minParts), so no part is ever left behind by a smaller rewrite; and since every part carries k,
// a reader that sees parts of two different k, or fewer than k parts, knows it caught a row
// being rewritten with more parts (meters moving between parts) and reads again.

// cycleTag is the tag that spreads a packed measurement's rows over several series, and its
// value for the row at start: the UTC day of the year (1-366) for site_hour, the UTC month (1-12)
// for site_day, none for site_month.
//
// Why: influxd stores a series' points in compressed blocks of up to 1000 and decodes a whole
// block to read one point. With one series per site, a 52-week shard holds 8 760 hour rows of
// kilobytes each, and reading one hour decoded megabytes (7 ms for a 100-meter site, mostly
// snappy and garbage collection in influxd); a year of day rows, 4 ms. With the cycle tag a
// series holds at most 24 hour rows or 31 day rows per year-long shard, and since the values
// repeat every year the number of series stays fixed: per site and part 366 + 12 + 1. A reader
// names the tag values its time range spans, so influxd opens only those series.
func cycleTag(measurement string, start int64) (key, value string) {
	t := time.Unix(0, start).UTC()
	switch measurement {
	case "site_hour":
		return "yday", strconv.Itoa(t.YearDay())
	case "site_day":
		return "month", strconv.Itoa(int(t.Month()))
	}
	return "", ""
}

// cycleFilter is the InfluxQL condition that selects the series of measurement that can hold
// rows in [lo, hi], or "" when that would name more values than it is worth (any range is still
// answered right: the time condition decides).
func cycleFilter(measurement string, lo, hi int64) string {
	key, _ := cycleTag(measurement, lo)
	if key == "" {
		return ""
	}
	step := dayNs
	values := map[string]bool{}
	var conds []string
	for at := lo; at <= hi; {
		_, v := cycleTag(measurement, at)
		if !values[v] {
			values[v] = true
			conds = append(conds, quoteIdent(key)+" = "+quoteString(v))
		}
		if len(conds) > 4 {
			return ""
		}
		next := floorTo(at, step) + step
		if next <= at { // past the last representable day
			break
		}
		at = next
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

const (
	packedField = "meters"
	// partLimit is the most bytes of text in one part: 64 KiB less room for headroom.
	partLimit = 60 << 10
	// maxParts bounds k: 4096 parts of 60 KiB hold millions of meters.
	maxParts = 1 << 12
)

// sums is one meter's roll-up over one period.
type sums struct {
	volume, coverage float64
	n                int64
	flags            ledger.Flag
}

func (a *sums) add(b sums) {
	a.volume += b.volume
	a.coverage += b.coverage
	a.n += b.n
	a.flags |= b.flags
}

// meterSums is one record of a packed text.
type meterSums struct {
	meter string
	sums
}

// needsEscape says whether byte c of a meter id is written %XX.
func needsEscape(c byte) bool {
	return c < 0x20 || c == 0x7f || c == '%' || c == ' ' || c == ';' || c == '"' || c == '\\'
}

const hexDigits = "0123456789ABCDEF"

func appendMeterID(dst []byte, id string) []byte {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if needsEscape(c) {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

func appendRecord(dst []byte, r meterSums) []byte {
	dst = appendMeterID(dst, r.meter)
	dst = append(dst, ' ')
	dst = strconv.AppendFloat(dst, r.volume, 'g', -1, 64)
	dst = append(dst, ' ')
	dst = strconv.AppendFloat(dst, r.coverage, 'g', -1, 64)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, r.n, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(r.flags), 10)
	return append(dst, ';')
}

// encodePart is the text of one part of a row of parts parts, its records in meter order.
func encodePart(parts int, rows []meterSums) string {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b meterSums) int { return strings.Compare(a.meter, b.meter) })
	b := strconv.AppendInt(nil, int64(parts), 10)
	b = append(b, ';')
	for _, r := range rows {
		b = appendRecord(b, r)
	}
	return string(b)
}

var errPacked = errors.New("malformed packed roll-up")

// decodePart reads a text written by encodePart. It returns an error, never panics, on any
// other text, including one whose meters are not in strictly increasing order (which is how a
// meter named twice shows).
func decodePart(text string) (parts int, rows []meterSums, err error) {
	head, rest, ok := strings.Cut(text, ";")
	if !ok {
		return 0, nil, fmt.Errorf("%w: no header", errPacked)
	}
	k, err := strconv.ParseInt(head, 10, 32)
	if err != nil || k < 1 || k > maxParts || strconv.Itoa(int(k)) != head {
		return 0, nil, fmt.Errorf("%w: header %.20q is not a part count", errPacked, head)
	}
	rows = make([]meterSums, 0, strings.Count(rest, ";"))
	for rest != "" {
		rec, next, ok := strings.Cut(rest, ";")
		if !ok {
			return 0, nil, fmt.Errorf("%w: record %.40q has no ';'", errPacked, rest)
		}
		rest = next
		r, err := decodeRecord(rec)
		if err != nil {
			return 0, nil, err
		}
		if n := len(rows); n > 0 && rows[n-1].meter >= r.meter {
			return 0, nil, fmt.Errorf("%w: meter %q after %q", errPacked, r.meter, rows[n-1].meter)
		}
		rows = append(rows, r)
	}
	return int(k), rows, nil
}

func decodeRecord(rec string) (meterSums, error) {
	var f [5]string
	rest := rec
	for i := range 4 {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, " "); !ok {
			return meterSums{}, fmt.Errorf("%w: record %.60q has %d fields, want 5", errPacked, rec, i+1)
		}
	}
	f[4] = rest
	if strings.Contains(f[4], " ") {
		return meterSums{}, fmt.Errorf("%w: record %.60q has more than 5 fields", errPacked, rec)
	}
	var r meterSums
	var err error
	if r.meter, err = unescapeMeterID(f[0]); err != nil {
		return meterSums{}, err
	}
	if r.volume, err = strconv.ParseFloat(f[1], 64); err != nil {
		return meterSums{}, fmt.Errorf("%w: meter %q: volume: %v", errPacked, r.meter, err)
	}
	if r.coverage, err = strconv.ParseFloat(f[2], 64); err != nil {
		return meterSums{}, fmt.Errorf("%w: meter %q: coverage: %v", errPacked, r.meter, err)
	}
	if r.n, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return meterSums{}, fmt.Errorf("%w: meter %q: n: %v", errPacked, r.meter, err)
	}
	flags, err := strconv.ParseUint(f[4], 10, 16)
	if err != nil {
		return meterSums{}, fmt.Errorf("%w: meter %q: flags: %v", errPacked, r.meter, err)
	}
	r.flags = ledger.Flag(flags)
	return r, nil
}

func unescapeMeterID(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("%w: meter id %q ends inside an escape", errPacked, s)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: meter id %q: bad escape %q", errPacked, s, s[i:i+3])
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// meterHash is 64-bit FNV-1a, which chooses a meter's part; fixed, so that parts written by one
// release are where the next one expects them.
func meterHash(m string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(m); i++ {
		h ^= uint64(m[i])
		h *= 1099511628211
	}
	return h
}

// packParts encodes every meter's sums into the texts of parts 0..k-1 (see above), in meter
// order within each part. k is at least minParts; a row with no meters has k empty parts.
func packParts(rows map[string]sums, minParts int) ([]string, error) {
	meters := slices.Sorted(maps.Keys(rows))
	// Each record is encoded once; recs[i] is meters[i]'s record in buf.
	var buf []byte
	recs := make([][2]int, len(meters))
	hashes := make([]uint64, len(meters))
	for i, m := range meters {
		start := len(buf)
		buf = appendRecord(buf, meterSums{m, rows[m]})
		if len(buf)-start > partLimit-16 {
			return nil, fmt.Errorf("%w: meter id of %d bytes does not fit a packed roll-up", ErrRejected, len(m))
		}
		recs[i] = [2]int{start, len(buf)}
		hashes[i] = meterHash(m)
	}
	k := max(1, minParts)
	for ; ; k *= 2 {
		if k > maxParts {
			return nil, fmt.Errorf("%d meters do not fit %d packed parts", len(meters), maxParts)
		}
		head := len(strconv.Itoa(k)) + 1
		size := make([]int, k)
		fits := true
		for i := range meters {
			p := hashes[i] % uint64(k)
			if size[p] == 0 {
				size[p] = head
			}
			size[p] += recs[i][1] - recs[i][0]
			if size[p] > partLimit {
				fits = false
				break
			}
		}
		if fits {
			break
		}
	}
	parts := make([][]byte, k)
	for p := range parts {
		parts[p] = strconv.AppendInt(nil, int64(k), 10)
		parts[p] = append(parts[p], ';')
	}
	for i := range meters {
		p := hashes[i] % uint64(k)
		parts[p] = append(parts[p], buf[recs[i][0]:recs[i][1]]...)
	}
	out := make([]string, k)
	for p, b := range parts {
		out[p] = string(b)
	}
	return out, nil
}

// packedRow gathers the parts of one packed row as they are read.
type packedRow struct {
	k     int // the part count the first part read names
	torn  bool
	parts map[int]bool
	rows  []meterSums
}

// packedRows gathers the parts read of a measurement's rows, by row start.
type packedRows map[int64]*packedRow

// add decodes part (the tag) of the row at start, whose text is text.
func (pr packedRows) add(start int64, part, text string) error {
	p, err := strconv.Atoi(part)
	if err != nil || p < 0 {
		return fmt.Errorf("%w: part %q is not a part number", errPacked, part)
	}
	k, rows, err := decodePart(text)
	if err != nil {
		return fmt.Errorf("part %d: %w", p, err)
	}
	if p >= k {
		return fmt.Errorf("%w: part %d of a row of %d parts", errPacked, p, k)
	}
	r := pr[start]
	if r == nil {
		r = &packedRow{k: k, parts: map[int]bool{}}
		pr[start] = r
	}
	if k != r.k || r.parts[p] {
		r.torn = true
	}
	r.parts[p] = true
	r.rows = append(r.rows, rows...)
	return nil
}

// whole says whether every row was read with all its parts, all of one part count, each meter
// once. A row being rewritten with more parts (meters moving between parts) is read as not
// whole until the write is done.
func (pr packedRows) whole() bool {
	for _, r := range pr {
		if r.torn || len(r.parts) != r.k {
			return false
		}
		if r.k > 1 {
			seen := make(map[string]bool, len(r.rows))
			for _, m := range r.rows {
				if seen[m.meter] {
					return false
				}
				seen[m.meter] = true
			}
		}
	}
	return true
}
