package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
)

// WriteInputs stores production inputs in one transaction; an input with the (site, from) of a
// stored one replaces it.
func (s *SQLite) WriteInputs(ctx context.Context, ins []engine.Input) error {
	for _, in := range ins {
		if err := checkInput(in); err != nil {
			return fmt.Errorf("write inputs: %w", err)
		}
	}
	if len(ins) == 0 {
		return nil
	}
	return s.inTx(ctx, "write inputs", func(tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, s.putInput)
		for _, in := range ins {
			if _, err := stmt.ExecContext(ctx, in.Site, in.From.UnixNano(), in.To.UnixNano(),
				nullFloat(in.Product), in.ProductUnit, nullFloat(in.OutputValue), nullFloat(in.Steam)); err != nil {
				return fmt.Errorf("input of %s from %v: %w", in.Site, in.From, err)
			}
		}
		return nil
	})
}

// Inputs returns a site's inputs whose period overlaps [from, to), by start.
func (s *SQLite) Inputs(ctx context.Context, site string, from, to time.Time) ([]engine.Input, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	rows, err := s.getInputs.QueryContext(ctx, site, hi+1, lo)
	if err != nil {
		return nil, fmt.Errorf("read inputs of %s: %w", site, err)
	}
	defer rows.Close()
	var out []engine.Input
	for rows.Next() {
		var (
			start, end         int64
			product, ov, steam sql.NullFloat64
			in                 = engine.Input{Site: site}
		)
		if err := rows.Scan(&start, &end, &product, &in.ProductUnit, &ov, &steam); err != nil {
			return nil, fmt.Errorf("read inputs of %s: %w", site, err)
		}
		in.From, in.To = fromNanos(start), fromNanos(end)
		in.Product, in.OutputValue, in.Steam = floatPtr(product), floatPtr(ov), floatPtr(steam)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inputs of %s: %w", site, err)
	}
	return out, nil
}

func nullFloat(v *float64) sql.NullFloat64 {
	if v == nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *v, Valid: true}
}

func floatPtr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

// WriteResults stores results in one transaction; each replaces the stored result of its
// (site, boundary, period, start) whole.
func (s *SQLite) WriteResults(ctx context.Context, rs []engine.Result) error {
	for _, r := range rs {
		if err := checkResult(r); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return s.inTx(ctx, "write results", func(tx *sql.Tx) error {
		del, put := tx.StmtContext(ctx, s.delResult), tx.StmtContext(ctx, s.putResult)
		for _, r := range rs {
			ns := r.Start.UnixNano()
			if _, err := del.ExecContext(ctx, r.Site, r.Boundary, r.Period, ns); err != nil {
				return fmt.Errorf("result of %s %s %s at %v: %w", r.Site, r.Boundary, r.Period, r.Start, err)
			}
			if len(r.Fields) == 0 {
				continue
			}
			js, err := json.Marshal(r.Fields)
			if err != nil {
				return fmt.Errorf("encode result of %s %s %s at %v: %w", r.Site, r.Boundary, r.Period, r.Start, err)
			}
			if _, err := put.ExecContext(ctx, r.Site, r.Boundary, r.Period, ns, string(js)); err != nil {
				return fmt.Errorf("result of %s %s %s at %v: %w", r.Site, r.Boundary, r.Period, r.Start, err)
			}
		}
		return nil
	})
}

// Results returns the results of one site, boundary and period with from <= start < to, oldest
// first.
func (s *SQLite) Results(ctx context.Context, site, boundary, period string, from, to time.Time) ([]engine.Result, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	rows, err := s.getResults.QueryContext(ctx, site, boundary, period, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read results of %s %s %s: %w", site, boundary, period, err)
	}
	defer rows.Close()
	var out []engine.Result
	for rows.Next() {
		var (
			ns    int64
			field string
			v     float64
		)
		if err := rows.Scan(&ns, &field, &v); err != nil {
			return nil, fmt.Errorf("read results of %s %s %s: %w", site, boundary, period, err)
		}
		if n := len(out); n == 0 || out[n-1].Start.UnixNano() != ns {
			out = append(out, engine.Result{Site: site, Boundary: boundary, Period: period, Start: fromNanos(ns), Fields: map[string]float64{}})
		}
		out[len(out)-1].Fields[field] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read results of %s %s %s: %w", site, boundary, period, err)
	}
	return out, nil
}
