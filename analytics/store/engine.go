package store

import (
	"fmt"
	"regexp"

	"github.com/aqualoop/aqualoop/analytics/engine"
)

// What the engine needs beyond the Store contract, served by both back ends and checked by the
// same contract test:
//
//   - MeterTotals sums a site's ledger per meter where the buckets are, so a month of 1-minute
//     buckets never crosses the wire one by one;
//   - WriteInputs and Inputs keep production figures (Q, Z, D), keyed by (site, from): writing an
//     input with the same start replaces it whole;
//   - WriteResults and Results keep the engine's figures per (site, boundary, period, start) for
//     charts: writing a result replaces it whole, so a figure that became undefined is gone.
var (
	_ engine.Store   = (*SQLite)(nil)
	_ engine.Results = (*SQLite)(nil)
	_ engine.Store   = (*Influx)(nil)
	_ engine.Results = (*Influx)(nil)
)

// fieldName is what a result field may be called: a lowercase identifier, so that it is a plain
// InfluxDB field key and a plain SQL value.
var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// resultReserved are the names a result field may not take: the tags, and the list of fields
// that InfluxDB keeps beside them.
var resultReserved = map[string]bool{"site": true, "boundary": true, "period": true, "time": true, "fields": true}

func checkInput(in engine.Input) error {
	if err := in.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if _, err := storableNanos(in.From); err != nil {
		return fmt.Errorf("input of %s: from: %w", in.Site, err)
	}
	if _, err := storableNanos(in.To); err != nil {
		return fmt.Errorf("input of %s: to: %w", in.Site, err)
	}
	return nil
}

func checkResult(r engine.Result) error {
	if r.Site == "" || r.Boundary == "" || r.Period == "" {
		return fmt.Errorf("%w: result has no site, boundary or period (%q, %q, %q)", ErrRejected, r.Site, r.Boundary, r.Period)
	}
	if _, err := storableNanos(r.Start); err != nil {
		return fmt.Errorf("result of %s %s %s: %w", r.Site, r.Boundary, r.Period, err)
	}
	for k, v := range r.Fields {
		if !fieldName.MatchString(k) || resultReserved[k] {
			return fmt.Errorf("%w: result of %s %s %s: %q is not a usable field name", ErrRejected, r.Site, r.Boundary, r.Period, k)
		}
		if !finite(v) {
			return fmt.Errorf("%w: result of %s %s %s: field %s = %v is not finite", ErrRejected, r.Site, r.Boundary, r.Period, k, v)
		}
	}
	return nil
}
