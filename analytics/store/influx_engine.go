package store

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics/engine"
)

// The engine's measurements in InfluxDB:
//
// "input", tag site, at the input's from: to (integer, Unix ns), has (integer: 1 product,
// 2 output value, 4 steam), product, output_value, steam (float, 0 when not given) and
// product_unit (string). Every field is written every time, so a rewrite replaces the input whole.
//
// "indicator", tags site, boundary and period, at the period's start: one float field per
// figure, and fields (string), the comma-separated names of the figures the result has. As with
// readings' points field, fields decides on reading which figures exist, since InfluxDB merges
// the fields of a rewritten point and would otherwise keep a figure that became undefined.

const (
	hasProduct = 1 << iota
	hasOutputValue
	hasSteam
)

// WriteInputs stores production inputs; an input with the (site, from) of a stored one replaces
// it.
func (s *Influx) WriteInputs(ctx context.Context, ins []engine.Input) error {
	pts := make([]*write.Point, 0, len(ins))
	for _, in := range ins {
		if err := checkInput(in); err != nil {
			return fmt.Errorf("write inputs: %w", err)
		}
		has := int64(0)
		val := func(v *float64, bit int64) float64 {
			if v == nil {
				return 0
			}
			has |= bit
			return *v
		}
		p := write.NewPointWithMeasurement("input").
			AddTag("site", in.Site).
			AddField("to", in.To.UnixNano()).
			AddField("product", val(in.Product, hasProduct)).
			AddField("output_value", val(in.OutputValue, hasOutputValue)).
			AddField("steam", val(in.Steam, hasSteam)).
			AddField("product_unit", in.ProductUnit).
			SetTime(in.From)
		p.AddField("has", has)
		pts = append(pts, p)
	}
	return s.writePoints(ctx, "write inputs", pts)
}

// Inputs returns a site's inputs whose period overlaps [from, to), by start.
func (s *Influx) Inputs(ctx context.Context, site string, from, to time.Time) ([]engine.Input, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	q := fmt.Sprintf(`SELECT "to", "has", "product", "output_value", "steam", "product_unit" FROM %s WHERE "site" = %s AND time >= %d AND time <= %d AND "to" > %d ORDER BY time ASC`,
		s.from("input"), quoteString(site), int64(minNanos), hi, lo)
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("read inputs of %s from %s: %w", site, s.base.Redacted(), err)
	}
	var out []engine.Input
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			in, err := rowInput(col, row)
			if err != nil {
				return nil, fmt.Errorf("read inputs of %s: %w", site, err)
			}
			in.Site = site
			out = append(out, in)
		}
	}
	return out, nil
}

func rowInput(col map[string]int, row []any) (engine.Input, error) {
	get := func(name string) any {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return nil
	}
	var in engine.Input
	ns, err := asInt(get("time"))
	if err != nil {
		return in, fmt.Errorf("column time: %w", err)
	}
	in.From = fromNanos(ns)
	end, err := asInt(get("to"))
	if err != nil {
		return in, fmt.Errorf("input at %v: field to: %w", in.From, err)
	}
	in.To = fromNanos(end)
	has, err := asInt(get("has"))
	if err != nil {
		return in, fmt.Errorf("input at %v: field has: %w", in.From, err)
	}
	in.ProductUnit, _ = get("product_unit").(string)
	for _, f := range []struct {
		name string
		bit  int64
		dst  **float64
	}{{"product", hasProduct, &in.Product}, {"output_value", hasOutputValue, &in.OutputValue}, {"steam", hasSteam, &in.Steam}} {
		if has&f.bit == 0 {
			continue
		}
		v, err := asFloat(get(f.name))
		if err != nil {
			return in, fmt.Errorf("input at %v: field %s: %w", in.From, f.name, err)
		}
		*f.dst = &v
	}
	return in, nil
}

// WriteResults stores results; each replaces the stored result of its (site, boundary, period,
// start) whole.
func (s *Influx) WriteResults(ctx context.Context, rs []engine.Result) error {
	pts := make([]*write.Point, 0, len(rs))
	for _, r := range rs {
		if err := checkResult(r); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		names := slices.Sorted(maps.Keys(r.Fields))
		p := write.NewPointWithMeasurement("indicator").
			AddTag("site", r.Site).
			AddTag("boundary", r.Boundary).
			AddTag("period", r.Period).
			AddField("fields", strings.Join(names, ",")).
			SetTime(r.Start)
		for _, k := range names {
			p.AddField(k, r.Fields[k])
		}
		pts = append(pts, p)
	}
	return s.writePoints(ctx, "write results", pts)
}

// Results returns the results of one site, boundary and period with from <= start < to, oldest
// first.
func (s *Influx) Results(ctx context.Context, site, boundary, period string, from, to time.Time) ([]engine.Result, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	q := fmt.Sprintf(`SELECT * FROM %s WHERE "site" = %s AND "boundary" = %s AND "period" = %s AND time >= %d AND time <= %d ORDER BY time ASC`,
		s.from("indicator"), quoteString(site), quoteString(boundary), quoteString(period), lo, hi)
	ss, err := s.query(ctx, http.MethodGet, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("read results of %s %s %s from %s: %w", site, boundary, period, s.base.Redacted(), err)
	}
	var out []engine.Result
	for _, se := range ss {
		col := se.col()
		for _, row := range se.Values {
			ns, err := asInt(row[col["time"]])
			if err != nil {
				return nil, fmt.Errorf("read results of %s: column time: %w", site, err)
			}
			names, _ := row[col["fields"]].(string)
			if names == "" {
				continue // written without figures: nothing to show
			}
			r := engine.Result{Site: site, Boundary: boundary, Period: period, Start: fromNanos(ns), Fields: map[string]float64{}}
			for _, k := range strings.Split(names, ",") {
				i, ok := col[k]
				if !ok {
					return nil, fmt.Errorf("read results of %s at %v: field %s is listed but not stored", site, r.Start, k)
				}
				if r.Fields[k], err = asFloat(row[i]); err != nil {
					return nil, fmt.Errorf("read results of %s at %v: field %s: %w", site, r.Start, k, err)
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}
