package engine

import (
	"context"
	"time"
)

// Store is what the engine reads: the ledger summed per meter, and production inputs. Both
// store back ends (analytics/store) serve it.
type Store interface {
	// MeterTotals sums a site's buckets with from <= start < to per meter, in meter order.
	MeterTotals(ctx context.Context, site string, from, to time.Time) ([]MeterTotal, error)
	// Inputs returns a site's production inputs whose period overlaps [from, to), by start.
	Inputs(ctx context.Context, site string, from, to time.Time) ([]Input, error)
}

// Results is where the evaluator writes its figures, for charts.
type Results interface {
	// WriteResults stores results; each replaces the stored result of its (site, boundary,
	// period, start) whole.
	WriteResults(ctx context.Context, rs []Result) error
}
