package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// series is one series (or, in a chunked answer, one chunk of it) of an InfluxQL result. Values
// hold json.Number, string, bool or nil.
type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"` // the GROUP BY tags
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// col returns the index of each column by name.
func (s *series) col() map[string]int {
	m := make(map[string]int, len(s.Columns))
	for i, c := range s.Columns {
		m[c] = i
	}
	return m
}

type queryAnswer struct {
	Error   string `json:"error"`
	Results []struct {
		StatementID int      `json:"statement_id"`
		Series      []series `json:"series"`
		Error       string   `json:"error"`
	} `json:"results"`
}

// query runs InfluxQL against db and returns the series of all its statements. SELECTs are
// chunked so a long range streams instead of hitting a server's row limit; the answer is then
// several JSON documents in a row, which the decoder reads one after another.
func (s *Influx) query(ctx context.Context, method, db, q string) ([]series, error) {
	var out []series
	err := s.queryEach(ctx, method, db, q, func(_ int, se series) error {
		out = append(out, se)
		return nil
	})
	return out, err
}

// queryStatements runs statements (joined by "; ", one request) against db and returns the
// series of each statement at its index.
func (s *Influx) queryStatements(ctx context.Context, db string, stmts []string) ([][]series, error) {
	out := make([][]series, len(stmts))
	err := s.queryEach(ctx, http.MethodGet, db, strings.Join(stmts, "; "), func(id int, se series) error {
		if id < 0 || id >= len(out) {
			return fmt.Errorf("answer names statement %d of %d", id, len(out))
		}
		out[id] = append(out[id], se)
		return nil
	})
	return out, err
}

// queryEach runs q and hands each series (or chunk of one) to fn with its statement's index.
func (s *Influx) queryEach(ctx context.Context, method, db, q string, fn func(stmt int, se series) error) error {
	params := url.Values{"q": {q}, "epoch": {"ns"}}
	if db != "" {
		params.Set("db", db)
	}
	var req *http.Request
	var err error
	u := s.base.JoinPath("query")
	if method == http.MethodGet {
		params.Set("chunked", "true")
		params.Set("chunk_size", strconv.Itoa(s.chunkSize))
		u.RawQuery = params.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(params.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	// Uncompressed: the store sits next to InfluxDB, and gzip of an answer of packed roll-ups
	// (a few hundred kilobytes of text) cost influxd more CPU than the transfer it saved, about a
	// quarter of a MeterTotals of a year on the benchmark machine.
	req.Header.Set("Accept-Encoding", "identity")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%s %s: %s: %s", method, "/query", resp.Status, strings.TrimSpace(string(body)))
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	for {
		var a queryAnswer
		if err := dec.Decode(&a); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("decode /query answer: %w", err)
		}
		if a.Error != "" {
			return errors.New(a.Error)
		}
		for _, r := range a.Results {
			if r.Error != "" {
				return errors.New(r.Error)
			}
			for _, se := range r.Series {
				if err := fn(r.StatementID, se); err != nil {
					return err
				}
			}
		}
	}
}

// The replacers are built once: a strings.Replacer prepares its tables at its first use, which
// cost more than the rest of a MeterTotals' statements when done per call.
var (
	identEscaper  = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	stringEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
)

// quoteIdent quotes an InfluxQL identifier (database, retention policy, measurement, key).
func quoteIdent(s string) string {
	return `"` + identEscaper.Replace(s) + `"`
}

// quoteString quotes an InfluxQL string literal (a tag value).
func quoteString(s string) string {
	return `'` + stringEscaper.Replace(s) + `'`
}

// from names a measurement in its retention policy: the roll-ups' or the configured one.
func (s *Influx) from(measurement string) string {
	rp := s.rp
	switch measurement {
	case "volume_hour", "volume_day", "site_hour", "site_day", "site_month", "rollup_fill":
		rp = s.rollRP
	}
	if rp == "" {
		return quoteIdent(measurement)
	}
	return quoteIdent(rp) + "." + quoteIdent(measurement)
}

// Readings returns the readings of one meter with from <= time < to, oldest first.
func (s *Influx) Readings(ctx context.Context, site, meter string, from, to time.Time) ([]collector.Reading, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	q := fmt.Sprintf(`SELECT * FROM %s WHERE "site" = %s AND "meter" = %s AND time >= %d AND time <= %d ORDER BY time ASC`,
		s.from("reading"), quoteString(site), quoteString(meter), lo, hi)
	rs, err := s.readings(ctx, site, meter, q)
	if err != nil {
		return nil, fmt.Errorf("read readings of %s/%s from %s: %w", site, meter, s.base.Redacted(), err)
	}
	return rs, nil
}

// LastReading returns the newest reading of a meter at or before t.
func (s *Influx) LastReading(ctx context.Context, site, meter string, t time.Time) (collector.Reading, bool, error) {
	if t.Before(minTime) {
		return collector.Reading{}, false, nil
	}
	q := fmt.Sprintf(`SELECT * FROM %s WHERE "site" = %s AND "meter" = %s AND time >= %d AND time <= %d ORDER BY time DESC LIMIT 1`,
		s.from("reading"), quoteString(site), quoteString(meter), int64(minNanos), clampNanos(t))
	rs, err := s.readings(ctx, site, meter, q)
	if err != nil {
		return collector.Reading{}, false, fmt.Errorf("read last reading of %s/%s from %s: %w", site, meter, s.base.Redacted(), err)
	}
	if len(rs) == 0 {
		return collector.Reading{}, false, nil
	}
	return rs[0], true, nil
}

func (s *Influx) readings(ctx context.Context, site, meter, q string) ([]collector.Reading, error) {
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, err
	}
	var out []collector.Reading
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			r, err := rowReading(col, row)
			if err != nil {
				// A point missing the fields every reading has (torn by a killed influxd) is
				// no reading: skipped and said, so that one such row cannot stop the meter's
				// ledger or an export. Ingest writes the whole reading again if it was not
				// acknowledged, which completes the point.
				s.logger.Warn("incomplete reading in InfluxDB skipped", "site", site, "meter", meter, "err", err)
				continue
			}
			r.Site, r.Meter = site, meter
			out = append(out, r)
		}
	}
	return out, nil
}

// rowReading rebuilds a Reading from one row of SELECT * on the reading measurement.
func rowReading(col map[string]int, row []any) (collector.Reading, error) {
	get := func(name string) any {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return nil
	}
	var r collector.Reading
	ns, err := asInt(get("time"))
	if err != nil {
		return r, fmt.Errorf("column time: %w", err)
	}
	r.Time = fromNanos(ns)
	seq, err := asInt(get("seq"))
	if err != nil {
		return r, fmt.Errorf("reading at %v: field seq: %w", r.Time, err)
	}
	r.Seq = uint64(seq)
	r.Edge, _ = get("edge").(string)
	ts, _ := get("time_source").(string)
	r.TimeSource = collector.TimeSource(ts)
	js, ok := get("points").(string)
	if !ok {
		return r, fmt.Errorf("reading at %v has no points field; it was not written by aqualoop", r.Time)
	}
	var meta []pointMeta
	if err := json.Unmarshal([]byte(js), &meta); err != nil {
		return r, fmt.Errorf("reading at %v: decode points field: %w", r.Time, err)
	}
	r.Points = make([]collector.Point, len(meta))
	for i, m := range meta {
		p := collector.Point{Name: m.Name, Unit: m.Unit, Quality: m.Quality, Code: m.Code, Error: m.Error}
		if m.Quality != collector.Bad {
			if p.Value, err = asFloat(get(m.Name)); err != nil {
				return r, fmt.Errorf("reading at %v: point %q: %w", r.Time, m.Name, err)
			}
		}
		r.Points[i] = p
	}
	return r, nil
}

func asInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v (%T) is not a number", v, v)
	}
	return n.Int64()
}

func asFloat(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v (%T) is not a number", v, v)
	}
	return n.Float64()
}

// Buckets returns a site's buckets with from <= start < to, ordered by meter then start.
func (s *Influx) Buckets(ctx context.Context, site string, from, to time.Time) ([]ledger.Bucket, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	q := fmt.Sprintf(`SELECT "meter", "volume", "flags", "coverage" FROM %s WHERE "site" = %s AND time >= %d AND time <= %d`,
		s.from("volume"), quoteString(site), lo, hi)
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("read buckets of %s from %s: %w", site, s.base.Redacted(), err)
	}
	var out []ledger.Bucket
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			b, err := rowBucket(col, row)
			if err != nil {
				return nil, fmt.Errorf("read buckets of %s: %w", site, err)
			}
			b.Site = site
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(a, b ledger.Bucket) int {
		if c := strings.Compare(a.Meter, b.Meter); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
	return out, nil
}

func rowBucket(col map[string]int, row []any) (ledger.Bucket, error) {
	get := func(name string) any {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return nil
	}
	var b ledger.Bucket
	ns, err := asInt(get("time"))
	if err != nil {
		return b, fmt.Errorf("column time: %w", err)
	}
	b.Start = fromNanos(ns)
	b.Meter, _ = get("meter").(string)
	if b.Volume, err = asFloat(get("volume")); err != nil {
		return b, fmt.Errorf("bucket of %s at %v: field volume: %w", b.Meter, b.Start, err)
	}
	flags, err := asInt(get("flags"))
	if err != nil {
		return b, fmt.Errorf("bucket of %s at %v: field flags: %w", b.Meter, b.Start, err)
	}
	b.Flags = ledger.Flag(flags)
	if b.Coverage, err = asFloat(get("coverage")); err != nil {
		return b, fmt.Errorf("bucket of %s at %v: field coverage: %w", b.Meter, b.Start, err)
	}
	return b, nil
}
