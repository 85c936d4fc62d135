package ledger

import (
	"math"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// sample is one good value of a meter: a totalizer in m³, or a flow rate in m³/h.
type sample struct {
	t int64 // Unix nanoseconds
	v float64
}

const width = int64(BucketWidth)

// alignNs is Align on Unix nanoseconds (floor, also before 1970).
func alignNs(t int64) int64 {
	r := t % width
	if r < 0 {
		r += width
	}
	return t - r
}

// between is b − a for a ≤ b, saturating instead of overflowing: two storable times may be
// further apart than an int64 of nanoseconds holds.
func between(a, b int64) int64 {
	if d := b - a; d >= 0 {
		return d
	}
	return math.MaxInt64
}

func nsTime(t int64) time.Time { return time.Unix(0, t).UTC() }

// stepKind classifies one interval's step.
type stepKind uint8

const (
	stepOK stepKind = iota
	stepRollover
	stepClamped
	stepReset
	stepFault
	stepSpike
)

// flag is the bucket flag of a step kind.
func (k stepKind) flag() Flag {
	switch k {
	case stepRollover:
		return Rollover
	case stepClamped:
		return Clamped
	case stepReset:
		return Reset
	case stepFault:
		return Fault
	case stepSpike:
		return Spike
	case stepReplaced:
		return Reset | Replaced
	}
	return 0
}

// measured reports whether a step's volume is known (as opposed to rejected and left at zero).
func (k stepKind) measured() bool {
	return k == stepOK || k == stepRollover || k == stepClamped || k == stepReplaced
}

// limit is the largest plausible volume over dt nanoseconds; only meaningful when Q4 is known.
// The noise tolerance is added because a register counts in steps: a small meter read every
// second (DN 50 at Q4 16 m³/h passes 0.0044 m³ a second) moves its 0.01 m³ register by a whole
// count now and then, which is no spike.
func (p *params) limit(dt int64) float64 {
	return p.q4*float64(dt)/float64(time.Hour)*p.tol + p.noise
}

// classify returns the volume of the step from a to b and its kind, for a totalizer.
func (p *params) classify(a, b sample) (float64, stepKind) {
	d := b.v - a.v
	kind := stepOK
	if math.IsInf(d, 0) {
		// Two values at the ends of the float range (a misread register): no volume.
		return 0, stepFault
	}
	if d < 0 {
		nearTop := p.max > 0 && a.v >= p.max*(1-p.near)
		switch {
		case nearTop && -d > p.max/2 && d+p.max >= 0:
			d += p.max
			kind = stepRollover
		case -d <= p.noise:
			return 0, stepClamped
		case !nearTop && b.v <= p.nearZero(a):
			return 0, stepReset
		default:
			return 0, stepFault
		}
	}
	if p.q4 > 0 && d > p.limit(between(a.t, b.t)) {
		return 0, stepSpike
	}
	return d, kind
}

// nearZero is the largest value that counts as "near zero" after a drop from a.
func (p *params) nearZero(a sample) float64 {
	switch {
	case p.zeroBand > 0:
		return p.zeroBand
	case p.max > 0:
		return p.near * p.max
	default:
		return p.near * a.v
	}
}

// outlier reports whether ss[j] is a single wild reading to be dropped, and if so the kind of
// its step from its predecessor. For a flow-only meter that is any flow above its plausible
// maximum.
func (p *params) outlier(ss []sample, j int) (stepKind, bool) {
	if p.flowOnly {
		return stepSpike, p.q4 > 0 && ss[j].v > p.q4*p.tol
	}
	k, ok := p.candidate(ss, j)
	if !ok {
		return 0, false
	}
	// Of two candidates in a row the earlier wins: a wild reading makes its successor look wild
	// too. Outliers therefore never touch, and the status of ss[j] depends on ss[j-2..j+1] only.
	if _, prev := p.candidate(ss, j-1); prev {
		return 0, false
	}
	if k == stepReset {
		// A single reading near zero between two consistent ones is a misread, not a reset.
		k = stepFault
	}
	return k, true
}

// candidate reports whether the step into ss[j] is rejected (anything but an increase or a
// rollover) while its neighbours ss[j-1] and ss[j+1] agree with each other. The last sample is
// never a candidate: its successor is not known yet.
func (p *params) candidate(ss []sample, j int) (stepKind, bool) {
	if j < 1 || j >= len(ss)-1 {
		return 0, false
	}
	_, k := p.classify(ss[j-1], ss[j])
	if k == stepOK || k == stepRollover {
		return 0, false
	}
	_, across := p.classify(ss[j-1], ss[j+1])
	if !across.measured() || k == stepClamped && across != stepOK {
		// A dip within noise is an outlier only if the totalizer comes back up; one that
		// persists is a clamped step.
		return 0, false
	}
	return k, true
}

// anchor reports whether s can end an interval whatever its neighbours: every totalizer reading
// (its outlier status is local), a flow reading that is not rejected.
func (p *params) anchor(s sample) bool {
	return !p.flowOnly || p.q4 <= 0 || s.v <= p.q4*p.tol
}

// interval is the span between two consecutive accepted samples.
type interval struct {
	a, b  sample
	delta float64
	kind  stepKind
	gap   bool
}

func (iv *interval) flags(flowOnly bool) Flag {
	f := iv.kind.flag()
	if flowOnly {
		f |= Derived
	}
	if iv.gap {
		f |= Gap
		if iv.kind.measured() {
			f |= Estimated
		}
	}
	return f
}

// visitor receives the walk over a meter's samples.
type visitor interface {
	interval(iv interval)
	// rejected is a single sample dropped as an outlier (kind: its step from its predecessor),
	// or, for a flow-only meter, a negative flow clamped to zero (stepClamped; it still ends its
	// intervals).
	rejected(s sample, kind stepKind)
}

// walk visits every interval and every rejected sample of ss, in time order.
func (p *params) walk(ss []sample, v visitor) {
	if p.flowOnly {
		p.walkFlow(ss, v)
		return
	}
	if len(ss) == 0 {
		return
	}
	base := 0
	for j := 1; j < len(ss); j++ {
		if k, out := p.outlier(ss, j); out {
			v.rejected(ss[j], k)
			continue
		}
		iv := interval{a: ss[base], b: ss[j], gap: between(ss[base].t, ss[j].t) > p.gapAfter}
		iv.delta, iv.kind = p.classify(iv.a, iv.b)
		if iv.kind == stepReset {
			iv.delta, iv.kind = p.swap(iv.a, iv.b)
		}
		v.interval(iv)
		base = j
	}
}

func (p *params) walkFlow(ss []sample, v visitor) {
	base := -1
	for j, s := range ss {
		if _, out := p.outlier(ss, j); out {
			v.rejected(s, stepSpike)
			continue
		}
		if s.v < 0 {
			v.rejected(s, stepClamped)
		}
		if base >= 0 {
			a, b := ss[base], s
			iv := interval{a: a, b: b, gap: between(a.t, b.t) > p.gapAfter}
			fa, fb := max(a.v, 0), max(b.v, 0)
			iv.delta = (fa + fb) / 2 * float64(between(a.t, b.t)) / float64(time.Hour)
			if a.v < 0 || b.v < 0 {
				iv.kind = stepClamped
			}
			if math.IsInf(iv.delta, 0) || math.IsInf(fa*float64(between(a.t, b.t)), 0) || math.IsInf(fb*float64(between(a.t, b.t)), 0) {
				// Flows at the end of the float range (no Q4 to reject them): no volume.
				iv.delta, iv.kind = 0, stepFault
			}
			v.interval(iv)
		}
		base = j
	}
}

// Stats counts what the ledger met. Compute returns the counts of its input; a Ledger keeps
// running counts since it was created.
type Stats struct {
	Samples    int // good readings used
	Rollovers  int
	Resets     int
	Clamped    int // reverse steps clamped to zero (for flow-only meters: negative flows)
	Spikes     int // rejected readings and rejected jumps
	Faults     int
	Gaps       int // intervals longer than GapAfter
	Duplicates int // readings at the time of a known reading, ignored
	Late       int // readings older than the newest known one, placed where they belong
	Unusable   int // readings without a usable value: bad quality, or no total/flow point
}

func (s *Stats) add(o Stats, sign int) {
	s.Samples += sign * o.Samples
	s.Rollovers += sign * o.Rollovers
	s.Resets += sign * o.Resets
	s.Clamped += sign * o.Clamped
	s.Spikes += sign * o.Spikes
	s.Faults += sign * o.Faults
	s.Gaps += sign * o.Gaps
	s.Duplicates += sign * o.Duplicates
	s.Late += sign * o.Late
	s.Unusable += sign * o.Unusable
}

func (s *Stats) count(k stepKind) {
	switch k {
	case stepRollover:
		s.Rollovers++
	case stepClamped:
		s.Clamped++
	case stepReset, stepReplaced:
		s.Resets++
	case stepFault:
		s.Faults++
	case stepSpike:
		s.Spikes++
	}
}

type eventCounter struct {
	flowOnly bool
	st       Stats
}

func (c *eventCounter) interval(iv interval) {
	if iv.gap {
		c.st.Gaps++
	}
	if !c.flowOnly {
		// A flow interval is only ever clamped, and that is counted once per negative sample.
		c.st.count(iv.kind)
	}
}

func (c *eventCounter) rejected(_ sample, k stepKind) { c.st.count(k) }

// events counts the events of ss (not Samples, Duplicates, Late, Unusable).
func (p *params) events(ss []sample) Stats {
	c := eventCounter{flowOnly: p.flowOnly}
	p.walk(ss, &c)
	return c.st
}

// bucketer spreads intervals over the buckets [from, to]. Its buckets are every minute of the
// range except those strictly inside a long gap (two consecutive samples further apart than
// maxSpread): the cost of a range is bounded by its samples, not by its length.
type bucketer struct {
	p        *params
	from, to int64
	// starts lists the bucket starts when some minutes are left out; nil means every minute.
	starts []int64
	out    []Bucket
	cov    []int64 // ns of each bucket covered by measured, non-gap intervals
}

func (p *params) buckets(ss []sample, from, to int64) []Bucket {
	bk := &bucketer{p: p, from: from, to: to, starts: p.bucketStarts(ss, from, to)}
	n := len(bk.starts)
	if bk.starts == nil {
		n = int((to-from)/width) + 1
	}
	bk.out, bk.cov = make([]Bucket, n), make([]int64, n)
	for i := range bk.out {
		start := from + int64(i)*width
		if bk.starts != nil {
			start = bk.starts[i]
		}
		bk.out[i] = Bucket{Site: p.site, Meter: p.meter, Start: nsTime(start)}
	}
	p.walk(ss, bk)
	for i := range bk.out {
		if v := bk.out[i].Volume; math.IsNaN(v) || math.IsInf(v, 0) {
			// Only values near the float range's ends get here (ingest bounds them); the
			// bucket says fault rather than hold a number no store or sum can take.
			bk.out[i].Volume, bk.cov[i] = 0, 0
			bk.out[i].Flags |= Fault
		}
		bk.out[i].Coverage = min(float64(bk.cov[i])/float64(width), 1)
		if p.flowOnly {
			// Every minute of a flow-only meter is derived, even one no interval reaches yet.
			bk.out[i].Flags |= Derived
		}
	}
	return bk.out
}

// bucketStarts returns the starts of the buckets of [from, to] that are not strictly inside a
// long gap, or nil when that is every minute. The buckets holding a sample, and the one before
// a sample on a minute boundary (where the gap's volume goes), are always kept.
func (p *params) bucketStarts(ss []sample, from, to int64) []int64 {
	long := false
	for j := 1; j < len(ss) && !long; j++ {
		long = between(ss[j-1].t, ss[j].t) > p.maxSpread
	}
	if !long {
		return nil
	}
	starts := []int64{}
	next := from                // the first start not yet listed
	add := func(lo, hi int64) { // every start in [lo, hi] ∩ [from, to] from next on
		for c := max(lo, next); c <= min(hi, to); c += width {
			starts = append(starts, c)
		}
		next = max(next, min(hi, to)+width)
	}
	for j := 1; j < len(ss); j++ {
		a, b := ss[j-1].t, ss[j].t
		if between(a, b) <= p.maxSpread {
			continue
		}
		add(from, alignNs(a))
		next = max(next, alignNs(b-1))
	}
	add(from, to)
	return starts
}

// at returns the index of the bucket starting at start, or -1 when it is not in the range.
func (bk *bucketer) at(start int64) int {
	if start < bk.from || start > bk.to {
		return -1
	}
	if bk.starts == nil {
		return int((start - bk.from) / width)
	}
	i, found := slices.BinarySearch(bk.starts, start)
	if !found {
		return -1
	}
	return i
}

func (bk *bucketer) rejected(s sample, k stepKind) {
	if i := bk.at(alignNs(s.t)); i >= 0 {
		bk.out[i].Flags |= k.flag()
	}
}

func (bk *bucketer) interval(iv interval) {
	flags := iv.flags(bk.p.flowOnly)
	if between(iv.a.t, iv.b.t) > bk.p.maxSpread {
		// A long gap: its exact volume goes whole into the minute where it ends, and the
		// minute where it starts says a gap follows. Neither is covered.
		if i := bk.at(alignNs(iv.a.t)); i >= 0 {
			bk.out[i].Flags |= flags
		}
		if i := bk.at(alignNs(iv.b.t - 1)); i >= 0 {
			bk.out[i].Volume += iv.delta
			bk.out[i].Flags |= flags
		}
		return
	}
	lo, hi := max(iv.a.t, bk.from), min(iv.b.t, bk.to+width)
	if lo >= hi {
		return
	}
	covered := iv.kind.measured() && !iv.gap
	for c := lo; c < hi; {
		start := alignNs(c)
		end := min(start+width, iv.b.t)
		i := bk.at(start)
		b := &bk.out[i]
		if iv.delta != 0 {
			b.Volume += bk.cum(&iv, end) - bk.cum(&iv, c)
		}
		b.Flags |= flags
		if covered {
			bk.cov[i] += end - c
		}
		c = end
	}
}

// cum is the volume of iv from its start to t (iv.a.t ≤ t ≤ iv.b.t), exactly iv.delta at its end.
func (bk *bucketer) cum(iv *interval, t int64) float64 {
	switch t {
	case iv.a.t:
		return 0
	case iv.b.t:
		return iv.delta
	}
	x := float64(t - iv.a.t)
	d := float64(iv.b.t - iv.a.t)
	if !bk.p.flowOnly {
		return iv.delta * x / d
	}
	// Flow linear between the readings: the integral is quadratic in x.
	fa, fb := max(iv.a.v, 0), max(iv.b.v, 0)
	return (fa*x + (fb-fa)*x*x/(2*d)) / float64(time.Hour)
}

// samples turns readings into the meter's good samples in time order, dropping duplicates.
func (p *params) samples(rs []collector.Reading) ([]sample, Stats) {
	var st Stats
	if !slices.IsSortedFunc(rs, func(a, b collector.Reading) int { return a.Time.Compare(b.Time) }) {
		rs = slices.Clone(rs)
		slices.SortStableFunc(rs, func(a, b collector.Reading) int { return a.Time.Compare(b.Time) })
	}
	ss := make([]sample, 0, len(rs))
	for _, r := range rs {
		s, ok := p.sample(r)
		switch {
		case !ok:
			st.Unusable++
		case len(ss) > 0 && ss[len(ss)-1].t == s.t:
			st.Duplicates++
		default:
			ss = append(ss, s)
		}
	}
	st.Samples = len(ss)
	return ss, st
}

// Compute is the pure core of the ledger: given the readings of one meter, it returns the buckets
// from the one holding the first good reading to the one holding the last, inclusive, every
// minute in between included. The two end buckets are partial: they lack the volume outside
// [first, last]. Readings should be sorted by time (they are sorted here if not); readings
// without a usable value are skipped (the interval across them is just longer), and a second
// reading at the time of an earlier one is ignored.
//
// # Method (DOMAIN.md, "Turning totalizers into volumes")
//
// The good readings of a meter, in time order, cut its history into intervals. Each interval gets
// one step Δ, classified from its two end values only:
//
//   - new ≥ old: Δ = new − old.
//   - new < old, old near RegisterMax and the drop larger than RegisterMax/2: rollover,
//     Δ = new − old + RegisterMax.
//   - a drop no larger than Noise: clamped, Δ = 0.
//   - new near zero (ZeroBand) and old not near the maximum: reset or replacement, Δ = 0. The
//     interval mixes the old meter's last counts with the new one's first counts and neither is
//     known, so the ledger invents nothing: the bucket says Reset and lacks that volume until a
//     replacement record supplies it.
//   - any other drop: fault, Δ = 0.
//   - Δ above Q4 × Δt × SpikeTolerance plus the noise tolerance (a register count): spike, see below.
//
// Δ is spread over the interval as if the totalizer were linear between its two readings, so a
// bucket [a, a+1m) gets T(min(a+1m, end)) − T(max(a, start)) from each interval it overlaps: the
// totalizer interpolated at the minute cut times, never an averaged flow rate. The sum of an
// interval's pieces is Δ to rounding (the last piece takes the remainder).
//
// Outliers. A reading whose step from its predecessor is rejected (spike, reverse step, drop to
// zero) while its predecessor and successor agree with each other is a single wild value: a bus
// glitch, a misread register, a device answering 0 on error, a noise dip. It is dropped, the
// interval runs from its predecessor to its successor, and that interval's volume is exact. Its
// bucket is flagged (Spike, Clamped for a dip within noise, Fault otherwise) and the event
// counted. Of two such readings in a row only the earlier is dropped, so outliers never touch
// and whether a reading is one depends only on its two predecessors and its successor: a late
// reading or a restart can always recompute it locally. The newest reading is never an outlier
// yet; its successor may make it one, and the buckets are then recomputed.
//
// Spikes that stay. A spike the following reading confirms is a jump: the register really
// moved, but not by water the meter could have measured, so Δ = 0 for that interval and the
// chain continues from the new value. An auditor thus gets every m³ the totalizer vouches for,
// never the jump itself, and a flag wherever a reading was rejected. A small reverse step that
// persists is clamped (Δ = 0) and the chain continues from the lower value, so its recovery is
// counted: at most Noise m³ too much per such step, and each one is counted.
//
// Gaps. An interval longer than GapAfter still carries its exact Δ, spread linearly and flagged
// Gap and Estimated (the total is exact, its timing is not). An interval longer than MaxSpread
// (default one day) is not spread: its Δ goes whole into the bucket where it ends, flagged Gap
// and Estimated, its first bucket is flagged Gap, and the minutes in between have no bucket, so
// the work and the rows a gap costs do not grow with its length.
//
// Coverage of a bucket is the fraction of its minute spanned by intervals whose volume was
// measured: not gaps, and not the rejected (reset, fault, jump) intervals, whose volume is missing.
//
// Flow-only meters: the flow rate (m³/h) is taken as linear between good readings and integrated
// (the trapezoid rule, cut at the minute boundaries); every bucket is flagged Derived. A flow
// above Q4 × SpikeTolerance is rejected as a spike (the interval across it is just longer) and a
// negative flow is clamped to zero.
func Compute(spec MeterSpec, readings []collector.Reading) ([]Bucket, Stats) {
	p := spec.params()
	ss, st := p.samples(readings)
	if len(ss) == 0 {
		return nil, st
	}
	st.add(p.events(ss), 1)
	return p.buckets(ss, alignNs(ss[0].t), alignNs(ss[len(ss)-1].t)), st
}
