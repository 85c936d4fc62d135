package engine

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// MeterTotal is one meter's ledger summed over a period: what every indicator and balance is
// computed from. The stores compute it where the buckets are, so a month of 1-minute buckets
// never crosses the wire one by one.
type MeterTotal struct {
	Meter  string
	Volume float64 // m³, the sum of the buckets' volumes
	// Coverage is the sum of the buckets' coverage: the minutes with good data. Divided by the
	// period's minutes it is the meter's data coverage.
	Coverage float64
	Buckets  int         // buckets found
	Flags    ledger.Flag // the union of the buckets' flags
}

// Totals sums buckets per meter, in meter order. It is what a store's MeterTotals returns for
// the same buckets.
func Totals(bs []ledger.Bucket) []MeterTotal {
	idx := map[string]int{}
	var out []MeterTotal
	for _, b := range bs {
		i, ok := idx[b.Meter]
		if !ok {
			i = len(out)
			idx[b.Meter] = i
			out = append(out, MeterTotal{Meter: b.Meter})
		}
		t := &out[i]
		t.Volume += b.Volume
		t.Coverage += b.Coverage
		t.Buckets++
		t.Flags |= b.Flags
	}
	slices.SortFunc(out, func(a, b MeterTotal) int { return cmp.Compare(a.Meter, b.Meter) })
	return out
}

// AddTotals merges b into a (both in meter order) and returns the sum, in meter order: the total
// of two adjacent periods.
func AddTotals(a, b []MeterTotal) []MeterTotal {
	out := make([]MeterTotal, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || i < len(a) && a[i].Meter < b[j].Meter:
			out = append(out, a[i])
			i++
		case i >= len(a) || b[j].Meter < a[i].Meter:
			out = append(out, b[j])
			j++
		default:
			out = append(out, MeterTotal{
				Meter:    a[i].Meter,
				Volume:   a[i].Volume + b[j].Volume,
				Coverage: a[i].Coverage + b[j].Coverage,
				Buckets:  a[i].Buckets + b[j].Buckets,
				Flags:    a[i].Flags | b[j].Flags,
			})
			i++
			j++
		}
	}
	return out
}

// Input is the production figures of one site over one period, which are not metered water and
// are entered by people (API or file): product quantity Q, output value Z and steam produced D.
// A figure left nil is unknown, which is not the same as zero.
type Input struct {
	Site string    `json:"site"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Product is Q, the quantity of product made, in ProductUnit (t, pieces, m³...).
	Product     *float64 `json:"product"`
	ProductUnit string   `json:"product_unit,omitempty"`
	// OutputValue is Z, the output value in 10⁴ CNY (万元).
	OutputValue *float64 `json:"output_value"`
	// Steam is D, the steam produced, in t.
	Steam *float64 `json:"steam"`
}

// ErrInvalidInput is wrapped by Input.Check's errors.
var ErrInvalidInput = errors.New("invalid production input")

// Check reports what makes an input unusable: no site, an empty or reversed period, a negative
// or non-finite figure, a product without its unit, or no figure at all.
func (in Input) Check() error {
	var errs []error
	if in.Site == "" {
		errs = append(errs, errors.New("site is required"))
	}
	if in.From.IsZero() || in.To.IsZero() || !in.To.After(in.From) {
		errs = append(errs, fmt.Errorf("period [%v, %v) is empty: from and to are required and to must be after from", in.From, in.To))
	}
	figures := 0
	for _, f := range []struct {
		name string
		v    *float64
	}{{"product", in.Product}, {"output_value", in.OutputValue}, {"steam", in.Steam}} {
		if f.v == nil {
			continue
		}
		figures++
		if math.IsNaN(*f.v) || math.IsInf(*f.v, 0) || *f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is not a finite, non-negative number", f.name, *f.v))
		}
	}
	if figures == 0 {
		errs = append(errs, errors.New("at least one of product, output_value and steam is required"))
	}
	if in.Product != nil && in.ProductUnit == "" {
		errs = append(errs, errors.New("product_unit is required with product"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return nil
}

// Figure is one production figure summed over a period.
type Figure struct {
	// Value is nil when no input of the period gives the figure.
	Value *float64 `json:"value"`
	// Coverage is the fraction of the period covered by inputs that give the figure.
	Coverage float64 `json:"coverage"`
}

// Production is the production inputs of a period, each figure summed pro rata: an input
// covering a month contributes a third of its figure to a ten-day period inside it.
type Production struct {
	Product     Figure `json:"product"`
	ProductUnit string `json:"product_unit,omitempty"`
	OutputValue Figure `json:"output_value"`
	Steam       Figure `json:"steam"`
	// Conflict names a figure that cannot be summed: products in different units.
	Conflict string `json:"conflict,omitempty"`
}

// Prorate sums the inputs over [from, to): each input's figures times the share of its own
// period that falls inside [from, to). Inputs that do not overlap the period are ignored.
func Prorate(ins []Input, from, to time.Time) Production {
	var p Production
	span := to.Sub(from).Seconds()
	if !(span > 0) {
		return p
	}
	add := func(f *Figure, v *float64, share, covered float64) {
		if v == nil {
			return
		}
		if f.Value == nil {
			f.Value = new(float64)
		}
		*f.Value += *v * share
		f.Coverage += covered
	}
	for _, in := range ins {
		lo, hi := maxTime(in.From, from), minTime(in.To, to)
		own := in.To.Sub(in.From).Seconds()
		if !hi.After(lo) || !(own > 0) {
			continue
		}
		overlap := hi.Sub(lo).Seconds()
		share, covered := overlap/own, overlap/span
		if in.Product != nil {
			if p.ProductUnit != "" && in.ProductUnit != p.ProductUnit {
				p.Conflict = fmt.Sprintf("product is given in both %s and %s", p.ProductUnit, in.ProductUnit)
			}
			if p.ProductUnit == "" {
				p.ProductUnit = in.ProductUnit
			}
		}
		add(&p.Product, in.Product, share, covered)
		add(&p.OutputValue, in.OutputValue, share, covered)
		add(&p.Steam, in.Steam, share, covered)
	}
	if p.Conflict != "" {
		p.Product = Figure{}
	}
	for _, f := range []*Figure{&p.Product, &p.OutputValue, &p.Steam} {
		f.Coverage = min(f.Coverage, 1)
	}
	return p
}

// addProduction sums the production of several sites (a park). Products in different units
// cannot be added: the park's product is then unknown, with the conflict said.
func addProduction(ps []Production) Production {
	var out Production
	for i, p := range ps {
		if i == 0 {
			out = p
			continue
		}
		for _, f := range []struct{ dst, src *Figure }{{&out.Product, &p.Product}, {&out.OutputValue, &p.OutputValue}, {&out.Steam, &p.Steam}} {
			switch {
			case f.src.Value == nil:
				f.dst.Coverage = 0 // one site's figure is missing: the park's is incomplete
				f.dst.Value = nil
			case f.dst.Value != nil:
				v := *f.dst.Value + *f.src.Value
				f.dst.Value = &v
				f.dst.Coverage = min(f.dst.Coverage, f.src.Coverage)
			}
		}
		if p.Conflict != "" && out.Conflict == "" {
			out.Conflict = p.Conflict
		}
		if p.ProductUnit != "" && out.ProductUnit != "" && p.ProductUnit != out.ProductUnit {
			out.Conflict = fmt.Sprintf("product is given in both %s and %s", out.ProductUnit, p.ProductUnit)
		}
	}
	if out.Conflict != "" {
		out.Product = Figure{}
	}
	return out
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

// Result is one set of figures of one boundary and period, as written to the store for
// charting: measurement "indicator", tags site, boundary and period, time = the period's start.
type Result struct {
	Site     string // the site id, or the park id for the park boundary
	Boundary string // "site", "unit:<node id>" or "park"
	Period   string // "hour", "day", "month", "year"
	Start    time.Time
	// Fields are the figures by name (r, r_with_vu, vi, coverage...). An undefined indicator is
	// left out, never written as NaN.
	Fields map[string]float64
}
