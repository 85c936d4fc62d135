package ledger

import (
	"math"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/collector"
)

// Defaults of the tolerances a MeterSpec may leave at zero.
const (
	// DefaultInterval is assumed when a meter's reporting interval is unknown.
	DefaultInterval = time.Minute
	// DefaultGapIntervals: an interval longer than this many reporting intervals is a gap
	// (DOMAIN.md: stale after 3 missed intervals).
	DefaultGapIntervals = 3
	// DefaultNoise is the largest reverse step, in m³, clamped to zero as noise.
	DefaultNoise = 0.05
	// DefaultSpikeTolerance multiplies Q4 × Δt before a step counts as a spike.
	DefaultSpikeTolerance = 1.1
	// DefaultNear is the fraction of the register that counts as "near" its maximum or zero.
	DefaultNear = 0.1
	// DefaultMaxSpread is the longest gap whose volume is spread over its minutes; see
	// MeterSpec.MaxSpread.
	DefaultMaxSpread = 24 * time.Hour
)

// MeterSpec is what the ledger needs to know about one meter. Only Site and Meter are required;
// every tolerance left at zero takes the default documented on its field.
type MeterSpec struct {
	Site, Meter string
	// RegisterMax is the modulus of the totalizer in m³: the value at which it wraps to zero
	// (100 000 for a 5-digit m³ register, 2³² × 0.01 = 42 949 672.96 for a UINT32 with 0.01 m³
	// resolution). Zero means unknown: no step is then read as a rollover.
	RegisterMax float64
	// Q4 is the overload flow rate in m³/h. Zero means unknown: no step is then a spike.
	Q4 float64
	// FlowOnly meters have no totalizer: the "flow" point (m³/h) is integrated instead.
	FlowOnly bool
	// Interval is the meter's expected reporting interval (default DefaultInterval).
	Interval time.Duration
	// GapAfter is the longest interval between two good readings that is not a gap
	// (default DefaultGapIntervals × Interval).
	GapAfter time.Duration
	// MaxSpread is the longest interval whose volume is spread over every minute it spans
	// (default DefaultMaxSpread, never below GapAfter). The volume of a longer interval goes
	// whole into the bucket where the interval ends, flagged gap and estimated, and the minutes
	// in between get no bucket at all: a gap of a year then costs two buckets, not 525 600, and
	// coverage shows it as a gap.
	MaxSpread time.Duration
	// Noise is the largest reverse step in m³ that is clamped to zero rather than called a fault
	// (default DefaultNoise, but never more than 0.1 % of RegisterMax when that is known).
	Noise float64
	// SpikeTolerance multiplies Q4 × Δt to get the largest plausible step (default 1.1).
	SpikeTolerance float64
	// Near is the fraction of RegisterMax within which a value is "near the maximum" or "near
	// zero" (default 0.1).
	Near float64
	// ZeroBand is the largest value in m³ that counts as "near zero" after a reverse step, for
	// telling a reset from a fault. Default: Near × RegisterMax, or Near × the old value when the
	// register size is unknown.
	ZeroBand float64
	// AcceptUncertain uses points of Uncertain quality as well as Good ones.
	AcceptUncertain bool
}

// SpecsOf returns the ledger specs of every meter in a site's register.
func SpecsOf(s *analytics.Site) []MeterSpec {
	out := make([]MeterSpec, 0, len(s.Meters))
	for _, m := range s.Meters {
		out = append(out, MeterSpec{
			Site:        s.ID,
			Meter:       m.ID,
			RegisterMax: m.RegisterMax,
			Q4:          m.Q4,
			FlowOnly:    m.FlowOnly,
			Interval:    m.Interval,
		})
	}
	return out
}

// params is a MeterSpec with its defaults resolved, in the units the core computes with.
type params struct {
	site, meter string
	flowOnly    bool
	uncertain   bool
	max         float64 // register modulus, m³ (0 unknown)
	q4          float64 // m³/h (0 unknown)
	tol         float64
	near        float64
	noise       float64
	zeroBand    float64      // 0: derive per step
	interval    int64        // ns
	gapAfter    int64        // ns
	maxSpread   int64        // ns
	swaps       Replacements // nil: a reset's volume stays unknown
}

func (s MeterSpec) params() params {
	p := params{
		site: s.Site, meter: s.Meter, flowOnly: s.FlowOnly, uncertain: s.AcceptUncertain,
		max: max(s.RegisterMax, 0), q4: max(s.Q4, 0),
		tol: s.SpikeTolerance, near: s.Near, noise: s.Noise, zeroBand: s.ZeroBand,
		interval: int64(s.Interval), gapAfter: int64(s.GapAfter), maxSpread: int64(s.MaxSpread),
	}
	if p.interval <= 0 {
		p.interval = int64(DefaultInterval)
	}
	if p.gapAfter <= 0 {
		p.gapAfter = DefaultGapIntervals * p.interval
	}
	if p.maxSpread <= 0 {
		p.maxSpread = int64(DefaultMaxSpread)
	}
	p.maxSpread = max(p.maxSpread, p.gapAfter)
	if p.tol <= 0 {
		p.tol = DefaultSpikeTolerance
	}
	if p.near <= 0 || p.near > 0.25 {
		// Above a quarter of the register, "near the top" and "near zero" would overlap the
		// rollover rule's "drop larger than half the register".
		p.near = DefaultNear
	}
	if p.noise <= 0 {
		p.noise = DefaultNoise
		if p.max > 0 {
			p.noise = min(p.noise, 0.001*p.max)
		}
	}
	return p
}

// sample extracts the value the ledger uses from a reading: the totalizer, or the flow rate of a
// flow-only meter. ok is false when the reading has no usable value.
func (p *params) sample(r collector.Reading) (sample, bool) {
	name := collector.PointTotal
	if p.flowOnly {
		name = collector.PointFlow
	}
	pt, ok := r.Point(name)
	if !ok || math.IsNaN(pt.Value) || math.IsInf(pt.Value, 0) {
		return sample{}, false
	}
	if pt.Quality != collector.Good && !(p.uncertain && pt.Quality == collector.Uncertain) {
		return sample{}, false
	}
	return sample{t: r.Time.UnixNano(), v: pt.Value}, true
}
