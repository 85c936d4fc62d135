package engine

import (
	"context"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/quota"
)

// HistoryCoverage is the least data coverage of last year's period for it to serve the
// last-year projection: a partly recorded year would understate what the rest of the period
// takes.
const HistoryCoverage = 0.9

// PlanStatus is the burn-down of one withdrawal plan at one instant.
type PlanStatus struct {
	// Plan names it ("site 2026", "well 2026-03"); the other plan fields are the site file's.
	Plan     string  `json:"plan"`
	Period   string  `json:"period"`
	Year     int     `json:"year"`
	Month    int     `json:"month,omitempty"`
	Source   string  `json:"source"` // "" for the whole site's intake
	Volume   float64 `json:"volume"`
	Approval string  `json:"approval,omitempty"`

	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	At   time.Time `json:"at"`
	// Used is the volume taken from From to min(At, To); Coverage is the data coverage of the
	// flows behind it.
	Used         float64 `json:"used"`
	Coverage     float64 `json:"coverage"`
	Remaining    float64 `json:"remaining"`
	UsedFraction float64 `json:"used_fraction"`
	// ProjectionLinear extrapolates the pace so far to the whole period; ProjectionLastYear adds
	// what the same period took last year from the same instant to its end (null without a
	// recorded last year). Projected is the larger: the one to plan against.
	ProjectionLinear   float64   `json:"projection_linear"`
	ProjectionLastYear *float64  `json:"projection_last_year"`
	Projected          float64   `json:"projected"`
	Crossed            []float64 `json:"crossed"`
	ProjectedOver      bool      `json:"projected_over"`
	LastYear           *History  `json:"last_year"`
}

// History is the same period one year earlier.
type History struct {
	WholePeriod float64 `json:"whole_period"`
	SameSoFar   float64 `json:"same_so_far"`
	Coverage    float64 `json:"coverage"`
}

// planUse sums what a plan counts over a period's resolved flows: every flow out of the plan's
// source, or the site's intake Vi when the plan has none. cov is the smallest coverage of them.
func planUse(p analytics.Plan, flows []FlowVolume) (used, cov float64) {
	cov, any := 1.0, false
	for _, f := range flows {
		if p.Source == "" && f.Kind == analytics.Intake || p.Source != "" && f.From == p.Source {
			used += f.Volume
			cov, any = min(cov, f.Coverage), true
		}
	}
	if !any {
		cov = 0
	}
	return used, cov
}

// planStatus evaluates one plan from the volumes already summed: used over [from, min(at, to))
// and, when recorded, last year's.
func planStatus(s *analytics.Site, p analytics.Plan, at time.Time, used, cov float64, last *History) PlanStatus {
	var h *quota.History
	if last != nil && last.Coverage >= HistoryCoverage {
		h = &quota.History{WholePeriod: last.WholePeriod, SameSoFar: last.SameSoFar}
	}
	st := quota.EvaluateCovered(p, s.Location(), at, used, cov, h)
	crossed := st.Crossed
	if crossed == nil {
		crossed = []float64{}
	}
	return PlanStatus{
		Plan: p.String(), Period: p.Period, Year: p.Year, Month: p.Month, Source: p.Source, Volume: p.Volume, Approval: p.Approval,
		From: st.From, To: st.To, At: at, Used: st.Used, Coverage: cov, Remaining: st.Remaining, UsedFraction: st.UsedFraction,
		ProjectionLinear: st.ProjectionLinear, ProjectionLastYear: st.ProjectionLastYear, Projected: st.Projected,
		Crossed: crossed, ProjectedOver: st.ProjectedOver, LastYear: last,
	}
}

// planUsed reads and sums what a plan counts over [from, to).
func (e *Engine) planUsed(ctx context.Context, s *analytics.Site, p analytics.Plan, from, to time.Time) (used, cov float64, err error) {
	from, to = Align(from, to)
	if !to.After(from) {
		return 0, 0, nil
	}
	totals, err := e.store.MeterTotals(ctx, s.ID, from, to)
	if err != nil {
		return 0, 0, err
	}
	used, cov = planUse(p, ResolveFlows(s, totals, periodMinutes(from, to)))
	return used, cov, nil
}

// lastYear reads the plan's period one year before at.
func (e *Engine) lastYear(ctx context.Context, s *analytics.Site, p analytics.Plan, at time.Time) (*History, error) {
	from, soFar, to := quota.LastYear(p, s.Location(), at)
	whole, cov, err := e.planUsed(ctx, s, p, from, to)
	if err != nil {
		return nil, err
	}
	if cov == 0 {
		return nil, nil
	}
	so, _, err := e.planUsed(ctx, s, p, from, soFar)
	if err != nil {
		return nil, err
	}
	return &History{WholePeriod: whole, SameSoFar: so, Coverage: cov}, nil
}

// Plans returns the status of every withdrawal plan of a site at the instant at, in the order of
// the site file.
func (e *Engine) Plans(ctx context.Context, site string, at time.Time) ([]PlanStatus, error) {
	s, err := e.Site(site)
	if err != nil {
		return nil, err
	}
	out := make([]PlanStatus, 0, len(s.Plans))
	for _, p := range s.Plans {
		from, to := p.Span(s.Location())
		used, cov, err := e.planUsed(ctx, s, p, from, minTime(at, to))
		if err != nil {
			return nil, err
		}
		last, err := e.lastYear(ctx, s, p, at)
		if err != nil {
			return nil, err
		}
		out = append(out, planStatus(s, p, at, used, cov, last))
	}
	return out, nil
}
