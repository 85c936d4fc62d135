package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// History is what the Ledger reads back from the store. analytics/store.Store satisfies it.
type History interface {
	// Readings returns the readings of one meter with from <= time < to, oldest first.
	Readings(ctx context.Context, site, meter string, from, to time.Time) ([]collector.Reading, error)
	// LastReading returns the newest reading of a meter at or before t; ok is false if none.
	LastReading(ctx context.Context, site, meter string, t time.Time) (r collector.Reading, ok bool, err error)
}

// margin is how many good samples (anchors) a recompute reads beyond the buckets it returns.
// Outlier status reaches two samples back and one forward, and an interval's classification its
// two ends, so three would do; four leaves room.
const margin = 4

// horizon is "any time from now on" for LastReading. It stays well inside the range of Unix
// nanoseconds so a store may add to it without overflow.
var horizon = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Ledger keeps the volume ledger of many meters up to date, one reading at a time. It is safe
// for concurrent use; readings of one meter are processed one at a time.
//
// Every reading a Ledger is given must already be in its History. In-order readings are handled
// from the few newest samples each meter keeps in memory; a late reading, and the first reading
// of a meter after the Ledger was created, are recomputed from History, so a restart resumes
// with exactly the buckets an uninterrupted Ledger would have produced.
type Ledger struct {
	h       History
	log     *slog.Logger
	metrics *Metrics
	specs   map[meterKey]MeterSpec
	swaps   Replacements

	mu     sync.Mutex
	meters map[meterKey]*meterState
}

type meterKey struct{ site, meter string }

type meterState struct {
	mu     sync.Mutex
	p      params
	loaded bool
	// ss holds the newest good samples in time order, contiguous (no good sample of History
	// between two of them is missing): enough to recompute the next in-order reading.
	ss []sample
	// seen holds the times of the newest good samples processed (at most seenCap), sorted, so
	// a replayed reading is recognised even when it is older than ss.
	seen  []int64
	upper int64 // time of the newest reading known, usable or not
	stats Stats
}

// seenCap bounds the times a meter remembers for recognising duplicates: 8 KiB a meter.
const seenCap = 1024

// known reports whether a sample at t was processed already.
func (m *meterState) known(t int64) bool {
	_, found := slices.BinarySearch(m.seen, t)
	return found
}

// remember records that the sample at t was processed.
func (m *meterState) remember(t int64) {
	i, found := slices.BinarySearch(m.seen, t)
	if found {
		return
	}
	if len(m.seen) >= seenCap {
		if i == 0 {
			return // older than everything remembered
		}
		m.seen = slices.Delete(m.seen, 0, 1)
		i--
	}
	m.seen = slices.Insert(m.seen, i, t)
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithMetrics makes the Ledger count its work in m.
func WithMetrics(m *Metrics) Option { return func(l *Ledger) { l.metrics = m } }

// New returns a Ledger for the given meters. A reading of a meter without a spec is handled
// with the defaults (no rollover, no spike check) and a warning.
func New(specs []MeterSpec, h History, logger *slog.Logger, opts ...Option) *Ledger {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{h: h, log: logger, specs: map[meterKey]MeterSpec{}, meters: map[meterKey]*meterState{}}
	for _, s := range specs {
		l.specs[meterKey{s.Site, s.Meter}] = s
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

func (l *Ledger) state(site, meter string) *meterState {
	k := meterKey{site, meter}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.meters[k]
	if m == nil {
		spec, ok := l.specs[k]
		if !ok {
			spec = MeterSpec{Site: site, Meter: meter}
			l.log.Warn("meter has no ledger spec; using defaults without rollover or spike checks", "site", site, "meter", meter)
		}
		m = &meterState{p: spec.params()}
		m.p.swaps = l.swaps
		l.meters[k] = m
	}
	return m
}

// Stats returns the counts of a meter since the Ledger was created (summed over sites if the
// Ledger serves several sites that use the same meter id).
func (l *Ledger) Stats(meter string) Stats {
	l.mu.Lock()
	var ms []*meterState
	for k, m := range l.meters {
		if k.meter == meter {
			ms = append(ms, m)
		}
	}
	l.mu.Unlock()
	var st Stats
	for _, m := range ms {
		m.mu.Lock()
		st.add(m.stats, 1)
		m.mu.Unlock()
	}
	return st
}

// Add takes a reading the caller has already stored (so History holds it) and returns the
// complete current value of every bucket the reading changed, to be upserted by (site, meter,
// start). It may return a few unchanged buckets beside them; writing those again is harmless.
//
// A reading at the time of one of the last 1024 good readings this Ledger processed for its
// meter is a duplicate and changes nothing. Any other reading older than the newest one is
// late: its buckets are recomputed from History. A replay of a reading processed longer ago,
// or before a restart, is therefore recomputed too, which returns the same buckets but counts
// it as late and its events (gaps, spikes...) again. This errs towards right buckets: a
// reading that was stored but never added (a crash between the two) is added when redelivered.
//
// On error nothing has changed and the same reading may be given again.
func (l *Ledger) Add(ctx context.Context, r collector.Reading) ([]Bucket, error) {
	m := l.state(r.Site, r.Meter)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.p.sample(r)
	t := r.Time.UnixNano()
	if !m.loaded {
		return l.load(ctx, m, s, ok, t)
	}
	if !ok {
		m.upper = max(m.upper, t)
		m.stats.Unusable++
		l.metrics.reading("unusable")
		return nil, nil
	}
	if n := len(m.ss); n == 0 || s.t > m.ss[n-1].t {
		m.upper = max(m.upper, t)
		bs, d := m.inOrder(s)
		l.commit(m, d, s)
		l.metrics.reading("in_order")
		l.metrics.emitted(len(bs))
		return bs, nil
	}
	if m.known(s.t) {
		m.stats.Duplicates++
		l.metrics.reading("duplicate")
		return nil, nil
	}
	bs, d, win, i, err := l.around(ctx, m, s, m.upper)
	if err != nil {
		return nil, err
	}
	m.keep(win, i)
	d.Late++
	l.commit(m, d, s)
	l.metrics.reading("late")
	l.metrics.emitted(len(bs))
	return bs, nil
}

// load handles the first reading of a meter since the Ledger was created: it recomputes the
// reading's buckets from History and loads the samples the following in-order readings need.
func (l *Ledger) load(ctx context.Context, m *meterState, s sample, ok bool, t int64) ([]Bucket, error) {
	newest, found, err := l.h.LastReading(ctx, m.p.site, m.p.meter, horizon)
	if err != nil {
		return nil, fmt.Errorf("read newest reading of %s/%s: %w", m.p.site, m.p.meter, err)
	}
	upper := t
	if found {
		upper = max(upper, newest.Time.UnixNano())
	}
	tail, err := l.back(ctx, m, upper+1, 2)
	if err != nil {
		return nil, err
	}
	var mem []sample
	if len(tail) > 0 {
		if mem, err = l.window(ctx, m, alignNs(tail[0].t), upper+1, upper); err != nil {
			return nil, err
		}
	}
	if !ok {
		m.ss, m.upper, m.loaded = mem, upper, true
		m.stats.Unusable++
		l.metrics.reading("loaded")
		return nil, nil
	}
	bs, d, win, i, err := l.around(ctx, m, s, upper)
	if err != nil {
		return nil, err
	}
	if win[len(win)-1].t > s.t {
		d.Late++
	}
	// The samples found in History are not marked as seen: one of them may have been stored
	// by a run that stopped before adding it, and its redelivery must then be recomputed.
	m.ss, m.upper, m.loaded = mem, upper, true
	m.keep(win, i)
	l.metrics.reading("loaded")
	l.commit(m, d, s)
	l.metrics.emitted(len(bs))
	return bs, nil
}

// commit adds a reading's change of counts to the meter's and logs what needs a look.
func (l *Ledger) commit(m *meterState, d Stats, s sample) {
	m.remember(s.t)
	d.Samples++
	m.stats.add(d, 1)
	at := nsTime(s.t)
	if d.Resets > 0 {
		l.log.Warn("meter reset or replaced; new segment started, the interval's volume is left at zero until a replacement record gives it",
			"site", m.p.site, "meter", m.p.meter, "time", at)
	}
	if d.Faults > 0 {
		l.log.Warn("totalizer went backwards beyond noise; interval volume left at zero and flagged fault",
			"site", m.p.site, "meter", m.p.meter, "time", at)
	}
	if d.Spikes > 0 {
		l.log.Warn("implausible step above q4 rejected and flagged spike", "site", m.p.site, "meter", m.p.meter, "time", at)
	}
	if d.Rollovers > 0 {
		l.log.Debug("totalizer rolled over", "site", m.p.site, "meter", m.p.meter, "time", at)
	}
}

func cmpTime(s sample, t int64) int {
	switch {
	case s.t < t:
		return -1
	case s.t > t:
		return 1
	}
	return 0
}

func (m *meterState) search(t int64) (int, bool) {
	return slices.BinarySearchFunc(m.ss, t, cmpTime)
}

// inOrder appends s, newer than every sample held, and recomputes the buckets it changes from
// memory.
func (m *meterState) inOrder(s sample) ([]Bucket, Stats) {
	m.ss = append(m.ss, s)
	n := len(m.ss) - 1
	from := alignNs(m.ss[m.base(n)].t)
	win := m.ss[m.marginStart(from):]
	bs := m.p.buckets(win, from, alignNs(s.t))
	d := m.p.events(win)
	d.add(m.p.events(win[:len(win)-1]), -1)
	m.trim()
	return bs, d
}

// base is the index of the earliest sample the intervals changed by the new sample ss[n] can
// start from.
func (m *meterState) base(n int) int {
	if m.p.flowOnly {
		for j := n - 1; j >= 0; j-- {
			if m.p.anchor(m.ss[j]) {
				return j
			}
		}
		// Only rejected flows so far: no interval yet, but the minutes between the last of them
		// and ss[n] are new buckets.
		return max(n-1, 0)
	}
	switch {
	case n == 0:
		return 0
	case n >= 2:
		// ss[n-1] may turn out to be an outlier now that its successor is known (no other
		// sample's status can change); then the interval runs from ss[n-2].
		if _, k := m.p.classify(m.ss[n-2], m.ss[n-1]); k != stepOK && k != stepRollover {
			return n - 2
		}
	}
	return n - 1
}

// marginStart is the index from which the samples held include every sample at or after from
// plus margin anchors before it (or all samples held).
func (m *meterState) marginStart(from int64) int {
	j, _ := m.search(from)
	for c := 0; j > 0 && c < margin; {
		j--
		if m.p.anchor(m.ss[j]) {
			c++
		}
	}
	return j
}

// trim forgets the samples the next in-order reading cannot need.
func (m *meterState) trim() {
	n := len(m.ss)
	// The next reading's intervals start at the newest sample, or the one before it (spike
	// check); for flow-only meters at the newest anchor.
	b := max(n-2, 0)
	if m.p.flowOnly {
		b = n - 1
		for j := n - 1; j >= 0; j-- {
			if m.p.anchor(m.ss[j]) {
				b = j
				break
			}
		}
	}
	// The slice's front is dropped without copying; append copies only the live part when it
	// grows, so memory stays proportional to what is kept.
	m.ss = m.ss[m.marginStart(alignNs(m.ss[b].t)):]
}

// keep inserts the late sample win[i] into memory when it falls inside (or right before) the
// samples held, so memory stays contiguous.
func (m *meterState) keep(win []sample, i int) {
	s := win[i]
	j, found := m.search(s.t)
	switch {
	case found:
		return
	case len(m.ss) == 0:
		// History lacked even this reading (the caller did not store it): keep it anyway.
		m.ss = append(m.ss, s)
		return
	}
	if j > 0 || (len(m.ss) > 0 && i+1 < len(win) && win[i+1].t == m.ss[0].t) {
		m.ss = slices.Insert(m.ss, j, s)
	}
}

// around recomputes from History the buckets that the sample s (already in History) changes:
// from the bucket of its second good predecessor to that of its fourth good successor. It also
// returns the change of counts that s brings, and the window of samples it used with the index
// of s in it.
func (l *Ledger) around(ctx context.Context, m *meterState, s sample, upper int64) ([]Bucket, Stats, []sample, int, error) {
	before, err := l.back(ctx, m, s.t, 2)
	if err != nil {
		return nil, Stats{}, nil, 0, err
	}
	// Inserting s can change whether ss[i-1..i+2] are outliers (each depends on its two
	// predecessors and its successor), hence the intervals from ss[i-2] to ss[i+4] at most.
	after, err := l.forward(ctx, m, s.t+1, 4, upper)
	if err != nil {
		return nil, Stats{}, nil, 0, err
	}
	lo, hi := s.t, s.t
	if len(before) > 0 {
		lo = before[0].t
	}
	if len(after) > 0 {
		hi = after[len(after)-1].t
	}
	from, to := alignNs(lo), alignNs(hi)
	win, err := l.window(ctx, m, from, to+width, upper)
	if err != nil {
		return nil, Stats{}, nil, 0, err
	}
	i, found := slices.BinarySearchFunc(win, s.t, cmpTime)
	if !found {
		win = slices.Insert(win, i, s)
	}
	bs := m.p.buckets(win, from, to)
	d := m.p.events(win)
	d.add(m.p.events(slices.Delete(slices.Clone(win), i, i+1)), -1)
	return bs, d, win, i, nil
}

// window returns the good samples with from <= time < to, plus margin anchors (and the samples
// between them) on each side, reading no further than upper.
func (l *Ledger) window(ctx context.Context, m *meterState, from, to, upper int64) ([]sample, error) {
	pre, err := l.back(ctx, m, from, margin)
	if err != nil {
		return nil, err
	}
	rs, err := l.h.Readings(ctx, m.p.site, m.p.meter, nsTime(from), nsTime(to))
	if err != nil {
		return nil, fmt.Errorf("read readings of %s/%s: %w", m.p.site, m.p.meter, err)
	}
	out := pre
	for _, r := range rs {
		out = appendSample(out, &m.p, r)
	}
	post, err := l.forward(ctx, m, to, margin, upper)
	if err != nil {
		return nil, err
	}
	for _, s := range post {
		if len(out) == 0 || s.t > out[len(out)-1].t {
			out = append(out, s)
		}
	}
	return out, nil
}

func appendSample(out []sample, p *params, r collector.Reading) []sample {
	s, ok := p.sample(r)
	if ok && (len(out) == 0 || s.t > out[len(out)-1].t) {
		out = append(out, s)
	}
	return out
}

// span is the first stretch of time back or forward searched for k samples.
func (m *meterState) span(k int) int64 {
	return max(m.p.interval*int64(k+2), width)
}

// back returns, oldest first, the good samples with time < t from the k-th anchor before t on
// (fewer if History has fewer).
func (l *Ledger) back(ctx context.Context, m *meterState, t int64, k int) ([]sample, error) {
	var got []sample // newest first
	anchors := 0
	span := m.span(k)
	for to := t; to > minNs; {
		from := minNs
		if to >= minNs+span {
			from = to - span
		}
		rs, err := l.h.Readings(ctx, m.p.site, m.p.meter, nsTime(from), nsTime(to))
		if err != nil {
			return nil, fmt.Errorf("read readings of %s/%s: %w", m.p.site, m.p.meter, err)
		}
		for i := len(rs) - 1; i >= 0 && anchors < k; i-- {
			s, ok := m.p.sample(rs[i])
			if !ok || len(got) > 0 && s.t >= got[len(got)-1].t {
				continue
			}
			got = append(got, s)
			if m.p.anchor(s) {
				anchors++
			}
		}
		if anchors >= k {
			break
		}
		prev, ok, err := l.h.LastReading(ctx, m.p.site, m.p.meter, nsTime(from-1))
		if err != nil {
			return nil, fmt.Errorf("read last reading of %s/%s: %w", m.p.site, m.p.meter, err)
		}
		if !ok {
			break
		}
		// Jump straight to the next older reading, so a long silence costs one query.
		// Each round reads at least one older reading, so the loop ends with the data.
		to = from
		span = max(grow(span), to-prev.Time.UnixNano())
	}
	slices.Reverse(got)
	return got, nil
}

// minNs is the earliest time back searches: the store's earliest storable time.
const minNs int64 = math.MinInt64 + 2

// grow multiplies a search span by four, saturating well below overflow.
func grow(span int64) int64 {
	if span > math.MaxInt64/8 {
		return math.MaxInt64 / 2
	}
	return span * 4
}

// forward returns, oldest first, the good samples with time >= t up to the k-th anchor, reading
// no further than upper.
func (l *Ledger) forward(ctx context.Context, m *meterState, t int64, k int, upper int64) ([]sample, error) {
	var got []sample
	anchors := 0
	span := m.span(k)
	// The span grows fourfold a round and saturates, so even readings centuries apart take a
	// few dozen rounds; the sums cannot overflow (upper is a storable time).
	for from := t; from <= upper && anchors < k; span = grow(span) {
		to := upper + 1
		if upper-from >= span {
			to = from + span
		}
		rs, err := l.h.Readings(ctx, m.p.site, m.p.meter, nsTime(from), nsTime(to))
		if err != nil {
			return nil, fmt.Errorf("read readings of %s/%s: %w", m.p.site, m.p.meter, err)
		}
		for _, r := range rs {
			if anchors >= k {
				break
			}
			n := len(got)
			got = appendSample(got, &m.p, r)
			if len(got) > n && m.p.anchor(got[n]) {
				anchors++
			}
		}
		from = to
	}
	return got, nil
}
