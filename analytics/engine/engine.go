// Package engine sums the volume ledger over periods (hour, day, month, year in the site's time
// zone, or any range) and boundaries (site, unit, park), and computes on a site's water network
// model the indicators of GB/T 7119, the balances of GB/T 12452 and the burn-down of withdrawal
// plans. The live API, the continuous Evaluator and the evidence reports call the same functions,
// so a figure on the dashboard and the figure in an auditor's report cannot differ.
//
// Reading and computing are separate: Engine reads the ledger summed per meter and the production
// inputs from a Store, and the pure functions Compute, ComputeUnit, ComputePark and
// ComputeBalance turn them into figures.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// Errors callers branch on (the API answers 404).
var (
	ErrUnknownSite = errors.New("unknown site")
	ErrUnknownUnit = errors.New("unknown unit")
	ErrUnknownPark = errors.New("unknown park")
)

// Period is a calendar period in a site's time zone.
type Period string

// Periods the evaluator keeps current.
const (
	Hour  Period = "hour"
	Day   Period = "day"
	Month Period = "month"
	Year  Period = "year"
)

// Periods lists the calendar periods, shortest first.
var Periods = []Period{Hour, Day, Month, Year}

// ParsePeriod reads "hour", "day", "month" or "year".
func ParsePeriod(s string) (Period, error) {
	for _, p := range Periods {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("period %q is not one of hour, day, month, year", s)
}

// Span returns the calendar period that contains at, in loc: [from, to).
func (p Period) Span(at time.Time, loc *time.Location) (from, to time.Time) {
	l := at.In(loc)
	switch p {
	case Hour:
		from = time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, loc)
		return from, from.Add(time.Hour)
	case Month:
		from = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
		return from, from.AddDate(0, 1, 0)
	case Year:
		from = time.Date(l.Year(), 1, 1, 0, 0, 0, 0, loc)
		return from, from.AddDate(1, 0, 0)
	}
	from = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	return from, from.AddDate(0, 0, 1)
}

// Engine reads the ledger and computes figures on the site models it was given.
type Engine struct {
	sites map[string]*analytics.Site
	order []*analytics.Site
	parks map[string][]*analytics.Site
	store Store
}

// New returns an engine over the given site models. Sites that name the same park form it.
func New(sites []*analytics.Site, st Store) *Engine {
	m := make(map[string]*analytics.Site, len(sites))
	for _, s := range sites {
		m[s.ID] = s
	}
	return &Engine{sites: m, order: sites, parks: analytics.Parks(sites), store: st}
}

// Sites returns the site models, in the order given to New.
func (e *Engine) Sites() []*analytics.Site { return e.order }

// Site returns the model of one site.
func (e *Engine) Site(id string) (*analytics.Site, error) {
	s, ok := e.sites[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownSite, id)
	}
	return s, nil
}

// Park returns the sites of one park.
func (e *Engine) Park(id string) ([]*analytics.Site, error) {
	ss, ok := e.parks[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPark, id)
	}
	return ss, nil
}

// Parks returns the parks by id.
func (e *Engine) Parks() map[string][]*analytics.Site { return e.parks }

// Read reads what a site's figures over [from, to) are computed from. from and to should be
// whole minutes (see Align).
func (e *Engine) Read(ctx context.Context, s *analytics.Site, from, to time.Time) (Data, error) {
	totals, err := e.store.MeterTotals(ctx, s.ID, from, to)
	if err != nil {
		return Data{}, fmt.Errorf("read the ledger of %s: %w", s.ID, err)
	}
	ins, err := e.store.Inputs(ctx, s.ID, from, to)
	if err != nil {
		return Data{}, fmt.Errorf("read production inputs of %s: %w", s.ID, err)
	}
	return Data{Totals: totals, Production: Prorate(ins, from, to)}, nil
}

// Align rounds a period to whole minutes, the ledger's resolution: from and to down.
func Align(from, to time.Time) (time.Time, time.Time) { return ledger.Align(from), ledger.Align(to) }

// Indicators computes the indicators of one site over [from, to), whole minutes.
func (e *Engine) Indicators(ctx context.Context, site string, from, to time.Time) (Indicators, error) {
	s, err := e.Site(site)
	if err != nil {
		return Indicators{}, err
	}
	from, to = Align(from, to)
	d, err := e.Read(ctx, s, from, to)
	if err != nil {
		return Indicators{}, err
	}
	return Compute(s, d, from, to), nil
}

// UnitIndicators computes the indicators of one unit node of a site over [from, to).
func (e *Engine) UnitIndicators(ctx context.Context, site, unit string, from, to time.Time) (Indicators, error) {
	s, err := e.Site(site)
	if err != nil {
		return Indicators{}, err
	}
	if n, ok := s.Node(unit); !ok || n.Type != analytics.Unit {
		return Indicators{}, fmt.Errorf("%w %q in site %s", ErrUnknownUnit, unit, site)
	}
	from, to = Align(from, to)
	d, err := e.Read(ctx, s, from, to)
	if err != nil {
		return Indicators{}, err
	}
	ind, _ := ComputeUnit(s, unit, d, from, to)
	return ind, nil
}

// ParkIndicators computes the indicators of a park, the sum over its sites, over [from, to).
func (e *Engine) ParkIndicators(ctx context.Context, park string, from, to time.Time) (Indicators, error) {
	sites, err := e.Park(park)
	if err != nil {
		return Indicators{}, err
	}
	from, to = Align(from, to)
	ds := make([]Data, len(sites))
	for i, s := range sites {
		if ds[i], err = e.Read(ctx, s, from, to); err != nil {
			return Indicators{}, err
		}
	}
	return ComputePark(park, sites, ds, from, to), nil
}

// Balance computes the balances of one site over [from, to).
func (e *Engine) Balance(ctx context.Context, site string, from, to time.Time) (Balance, error) {
	s, err := e.Site(site)
	if err != nil {
		return Balance{}, err
	}
	from, to = Align(from, to)
	d, err := e.Read(ctx, s, from, to)
	if err != nil {
		return Balance{}, err
	}
	return ComputeBalance(s, d.Totals, from, to), nil
}
