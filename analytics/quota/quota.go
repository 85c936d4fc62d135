// Package quota burns a site's withdrawal plans (取水计划) down: how much of a plan's volume is
// used, how much remains, which alert thresholds are crossed, and where the period will end at
// the current pace. Pilot applicants must show no withdrawal above plan in the last three years,
// so the projection matters as much as the figure so far. The package is pure: the caller sums the
// used volume over the plan's span and, when it has them, last year's figures.
package quota

import (
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

// thresholds are the used fractions that raise an alert (DOMAIN.md: 80/90/100 %).
func thresholds() []float64 { return []float64{0.8, 0.9, 1.0} }

// History is the same plan's period one year earlier: its whole volume, and the volume up to the
// instant one year before now.
type History struct {
	WholePeriod, SameSoFar float64
}

// Status is a plan's burn-down at one instant.
type Status struct {
	Plan     analytics.Plan
	From, To time.Time // the plan's span in the site's time zone
	Now      time.Time
	// Used is the volume taken from From to min(Now, To); Remaining is Volume − Used, negative
	// once the plan is overrun; UsedFraction is Used / Volume.
	Used, Remaining, UsedFraction float64
	// Coverage is the fraction of the elapsed period that Used is measured over.
	Coverage float64
	// ProjectionLinear extrapolates the pace so far to the whole period:
	// Used / elapsed × whole period. Before the period starts nothing is extrapolated (it is Used),
	// after it ends it is Used. When only part of the elapsed time has data (Coverage < 1, a
	// platform started mid-period or a meter that was down), the pace of the covered time is
	// extrapolated to the whole period, so missing data does not make the plan look safer than it
	// is.
	ProjectionLinear float64
	// ProjectionLastYear adds to Used what last year still took from the same instant to the
	// period's end: Used + (WholePeriod − SameSoFar). Nil without history; Used after the end.
	ProjectionLastYear *float64
	// Projected is the larger of the available projections: the one to plan against.
	Projected float64
	// Crossed lists the thresholds (0.8, 0.9, 1.0) that UsedFraction has reached.
	Crossed []float64
	// ProjectedOver is true when Projected exceeds the plan's volume.
	ProjectedOver bool
}

// Evaluate computes the status of plan p at now, given the volume used so far in the plan's
// span and, optionally, last year's history of the same period.
func Evaluate(p analytics.Plan, loc *time.Location, now time.Time, used float64, lastYear *History) Status {
	return EvaluateCovered(p, loc, now, used, 1, lastYear)
}

// EvaluateCovered is Evaluate for a Used measured over only a fraction coverage (0..1] of the
// elapsed period; the linear projection then uses the pace of the covered time.
func EvaluateCovered(p analytics.Plan, loc *time.Location, now time.Time, used, coverage float64, lastYear *History) Status {
	from, to := p.Span(loc)
	st := Status{Plan: p, From: from, To: to, Now: now, Used: used, Remaining: p.Volume - used, Coverage: coverage}
	if coverage <= 0 || coverage > 1 {
		coverage = 1
	}
	if p.Volume > 0 {
		st.UsedFraction = used / p.Volume
	}
	whole := to.Sub(from)
	elapsed := now.Sub(from)
	ended := !now.Before(to)
	switch {
	case ended, elapsed <= 0:
		st.ProjectionLinear = used
	default:
		st.ProjectionLinear = used / (elapsed.Seconds() * coverage) * whole.Seconds()
	}
	st.Projected = st.ProjectionLinear
	if lastYear != nil {
		proj := used
		if !ended {
			proj += max(0, lastYear.WholePeriod-lastYear.SameSoFar)
		}
		st.ProjectionLastYear = &proj
		st.Projected = max(st.Projected, proj)
	}
	for _, t := range thresholds() {
		if p.Volume > 0 && st.UsedFraction >= t {
			st.Crossed = append(st.Crossed, t)
		}
	}
	st.ProjectedOver = st.Projected > p.Volume
	return st
}

// LastYear returns the span of the plan's period one year earlier and the instant in it that
// corresponds to now, for the caller to sum History: WholePeriod over [from, to), SameSoFar over
// [from, soFar). soFar is clamped into the span, so before the period it is from and after it,
// to.
func LastYear(p analytics.Plan, loc *time.Location, now time.Time) (from, soFar, to time.Time) {
	prev := p
	prev.Year--
	from, to = prev.Span(loc)
	if loc == nil {
		loc = time.UTC
	}
	soFar = now.In(loc).AddDate(-1, 0, 0)
	if soFar.Before(from) {
		soFar = from
	}
	if soFar.After(to) {
		soFar = to
	}
	return from, soFar, to
}
