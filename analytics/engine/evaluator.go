package engine

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/quota"
)

// Sink receives every snapshot the Evaluator computes, after it is stored. cmd wires it to
// alerting; it runs on the Evaluator's goroutine, so a slow sink delays the next evaluation.
type Sink func(ctx context.Context, s Snapshot)

// Snapshot is the latest figures of one site (or park): the current hour, day, month and year
// up to At, and the withdrawal plans in force.
type Snapshot struct {
	Site     string    `json:"site"`
	Boundary string    `json:"boundary"` // "site" or "park"
	At       time.Time `json:"at"`
	Hour     Figures   `json:"hour"`
	Day      Figures   `json:"day"`
	Month    Figures   `json:"month"`
	Year     Figures   `json:"year"`
	// Plans are the site's plans in force at At; empty for a park.
	Plans []PlanStatus `json:"plans"`
}

// Figures are a boundary's indicators and (for a site) balances over one period.
type Figures struct {
	Period     Period     `json:"period"`
	Indicators Indicators `json:"indicators"`
	Balance    *Balance   `json:"balance,omitempty"`
}

// Periods returns the snapshot's figures, shortest period first.
func (s *Snapshot) Periods() []*Figures { return []*Figures{&s.Hour, &s.Day, &s.Month, &s.Year} }

// EvaluatorOptions configure an Evaluator. Zero values take the defaults.
type EvaluatorOptions struct {
	// Now is the clock whose current hour, day, month and year are evaluated (the demo passes
	// the simulator's). Default time.Now.
	Now func() time.Time
	// Debounce is the quiet time after new data before a site is evaluated (default 1 s), and
	// MaxDelay the longest it waits after the first new data when data keeps coming (default
	// 3 s): a snapshot is never more than MaxDelay plus one evaluation behind the data.
	Debounce, MaxDelay time.Duration
	// Interval re-evaluates every site even without new data, so periods roll over and a
	// silent meter shows as falling coverage (default 1 min).
	Interval time.Duration
	// Results, when set, receives every figure for charting.
	Results Results
	// Sink, when set, receives every snapshot.
	Sink Sink
	// Owns says which sites this instance evaluates (its ingest partition); nil owns all. A
	// snapshot of a site it does not own, or of a park with such a site, is computed on demand
	// from the shared store when asked for.
	Owns    func(site string) bool
	Logger  *slog.Logger
	Metrics *Metrics
}

// Metrics count the Evaluator's work: platform health, not water (figures go to the store).
type Metrics struct {
	evaluations *prometheus.CounterVec
	took        prometheus.Histogram
	queries     prometheus.Counter
}

// NewMetrics registers the engine's metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_engine_evaluations_total", Help: "Site evaluations, by outcome (ok, error).",
		}, []string{"outcome"}),
		took: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aqualoop_engine_evaluation_seconds", Help: "Time to evaluate one site: read, compute, store results.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		queries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_engine_store_reads_total", Help: "Ledger sums read from the store by the evaluator.",
		}),
	}
	m.evaluations.WithLabelValues("ok")
	m.evaluations.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.evaluations, m.took, m.queries)
	}
	return m
}

// Evaluator keeps every site's figures for the current hour, day, month and year up to date:
// ingest tells it which buckets changed (Notify), and within MaxDelay it re-reads only what
// changed, recomputes, stores the results, keeps the snapshot for the API and hands it to the
// Sink. Closed periods are summed once and kept (months of the year, days of the month, hours
// of the day), so an evaluation reads little more than the current hour.
type Evaluator struct {
	e    *Engine
	o    EvaluatorOptions
	wake chan struct{}

	mu      sync.Mutex
	dirty   map[string]map[time.Time]bool // site → starts of the UTC hours with new buckets
	pending map[string]bool               // sites to evaluate
	first   time.Time                     // when the oldest pending mark was made

	caches map[string]*siteCache // Run's goroutine only

	snapMu sync.RWMutex
	snaps  map[string]Snapshot // by site or park id

	// parkMu guards the sites' caches' closed sums and starts, which the park reads.
	parkMu sync.Mutex
}

// NewEvaluator returns an evaluator over the engine's sites; Run starts it.
func NewEvaluator(e *Engine, o EvaluatorOptions) *Evaluator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.MaxDelay < o.Debounce {
		o.MaxDelay = max(3*time.Second, o.Debounce)
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Owns == nil {
		o.Owns = func(string) bool { return true }
	}
	return &Evaluator{
		e: e, o: o, wake: make(chan struct{}, 1),
		dirty: map[string]map[time.Time]bool{}, pending: map[string]bool{},
		caches: map[string]*siteCache{}, snaps: map[string]Snapshot{},
	}
}

// Notify marks the sites and hours of changed buckets for evaluation. It never blocks: it is
// ingest's OnBuckets callback.
func (v *Evaluator) Notify(bs []ledger.Bucket) {
	if len(bs) == 0 {
		return
	}
	v.mu.Lock()
	for _, b := range bs {
		if _, ok := v.e.sites[b.Site]; !ok || !v.o.Owns(b.Site) {
			continue
		}
		v.mark(b.Site)
		hours := v.dirty[b.Site]
		if hours == nil {
			hours = map[time.Time]bool{}
			v.dirty[b.Site] = hours
		}
		hours[b.Start.UTC().Truncate(time.Hour)] = true
	}
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// mark queues a site; v.mu is held.
func (v *Evaluator) mark(site string) {
	if len(v.pending) == 0 {
		v.first = time.Now()
	}
	v.pending[site] = true
}

// Snapshot returns the latest snapshot of a site or park. For a site this instance does not
// own (another instance of the partition evaluates it), or a park with such a site, it is
// computed now from the shared store, which the roll-ups make a matter of milliseconds.
func (v *Evaluator) Snapshot(id string) (Snapshot, bool) {
	if !v.owned(id) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		snap, err := v.onDemand(ctx, id)
		if err != nil {
			v.o.Logger.Warn("snapshot on demand failed; answered as not available", "site", id, "err", err)
			return Snapshot{}, false
		}
		return snap, true
	}
	v.snapMu.RLock()
	defer v.snapMu.RUnlock()
	s, ok := v.snaps[id]
	return s, ok
}

// owned reports whether this instance evaluates id (a site, or a park all of whose sites it
// owns). Unknown ids count as owned: they have no snapshot either way.
func (v *Evaluator) owned(id string) bool {
	if _, ok := v.e.sites[id]; ok {
		return v.o.Owns(id)
	}
	for _, s := range v.e.parks[id] {
		if !v.o.Owns(s.ID) {
			return false
		}
	}
	return true
}

// onDemand computes the snapshot of a site or park as of now, reading each period whole.
func (v *Evaluator) onDemand(ctx context.Context, id string) (Snapshot, error) {
	now := v.o.Now()
	end := ledger.Align(now)
	if s, ok := v.e.sites[id]; ok {
		snap := Snapshot{Site: id, Boundary: BoundarySite, At: now}
		for i, f := range snap.Periods() {
			from, _ := Periods[i].Span(now, s.Location())
			to := maxTime(end, from)
			d, err := v.e.Read(ctx, s, from, to)
			if err != nil {
				return snap, err
			}
			*f = v.figures(s, Periods[i], d, from, to)
		}
		plans, err := v.e.Plans(ctx, id, now)
		if err != nil {
			return snap, err
		}
		snap.Plans = plans
		return snap, nil
	}
	sites, err := v.e.Park(id)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Site: id, Boundary: BoundaryPark, At: now, Plans: []PlanStatus{}}
	for i, f := range snap.Periods() {
		from, _ := Periods[i].Span(now, sites[0].Location())
		to := maxTime(end, from)
		ds := make([]Data, len(sites))
		for j, s := range sites {
			if ds[j], err = v.e.Read(ctx, s, from, to); err != nil {
				return snap, err
			}
		}
		*f = Figures{Period: Periods[i], Indicators: ComputePark(id, sites, ds, from, to)}
	}
	return snap, nil
}

// Run evaluates every site at start, then whenever new data has settled and every Interval,
// until ctx ends.
func (v *Evaluator) Run(ctx context.Context) error {
	v.markOwned()
	tick := time.NewTicker(v.o.Interval)
	defer tick.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-v.wake:
			v.mu.Lock()
			due := minTime(time.Now().Add(v.o.Debounce), v.first.Add(v.o.MaxDelay))
			v.mu.Unlock()
			timer.Reset(max(time.Until(due), 0))
		case <-tick.C:
			v.markOwned()
			timer.Reset(0)
		case <-timer.C:
			v.evaluatePending(ctx)
		}
	}
}

// markOwned queues every site this instance owns.
func (v *Evaluator) markOwned() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.e.order {
		if v.o.Owns(s.ID) {
			v.mark(s.ID)
		}
	}
}

// evaluatePending evaluates the queued sites, then the parks they belong to.
func (v *Evaluator) evaluatePending(ctx context.Context) {
	v.mu.Lock()
	pending, dirty := v.pending, v.dirty
	v.pending, v.dirty = map[string]bool{}, map[string]map[time.Time]bool{}
	v.mu.Unlock()
	parks := map[string]bool{}
	for _, s := range v.e.order {
		if !pending[s.ID] || ctx.Err() != nil {
			continue
		}
		start := time.Now()
		err := v.evaluate(ctx, s, dirty[s.ID])
		v.o.Metrics.took.Observe(time.Since(start).Seconds())
		if err != nil {
			v.o.Metrics.evaluations.WithLabelValues("error").Inc()
			if ctx.Err() != nil {
				return
			}
			v.o.Logger.Warn("evaluation failed; the site stays queued and is retried with the next data or tick", "site", s.ID, "err", err)
			v.mu.Lock()
			v.mark(s.ID)
			for h := range dirty[s.ID] {
				if v.dirty[s.ID] == nil {
					v.dirty[s.ID] = map[time.Time]bool{}
				}
				v.dirty[s.ID][h] = true
			}
			v.mu.Unlock()
			continue
		}
		v.o.Metrics.evaluations.WithLabelValues("ok").Inc()
		if s.Park != "" {
			parks[s.Park] = true
		}
	}
	for _, park := range slices.Sorted(maps.Keys(parks)) {
		if err := v.evaluatePark(ctx, park); err != nil && ctx.Err() == nil {
			v.o.Logger.Warn("park evaluation failed; retried with its sites' next evaluation", "site", park, "err", err)
		}
	}
}

// siteCache holds the ledger totals of the closed periods of one site's current year, and of
// last year's months for the plans' history.
type siteCache struct {
	year, month, day time.Time
	months           map[time.Time][]MeterTotal // closed months of the year, by start
	days             map[time.Time][]MeterTotal // closed days of the month
	hours            map[time.Time][]MeterTotal // closed hours of the day
	lastYear         map[time.Time][]MeterTotal // months of earlier years
	partial          map[time.Time]partialMonth // plan history: a month so far, by month start
	// current are the totals of the snapshot's periods.
	current [4][]MeterTotal
	spans   [4][2]time.Time
	// For the park (under Evaluator.parkMu): closed are the totals of each period without
	// its current hour, starts the periods' starts, so a park evaluated later adds a fresh
	// read of the current hour instead of waiting for its sites to be evaluated in step.
	closed [4][]MeterTotal
	starts [4]time.Time
}

type partialMonth struct {
	hour   time.Time // the hour it was read in
	to     time.Time
	totals []MeterTotal
}

func (v *Evaluator) totals(ctx context.Context, s *analytics.Site, from, to time.Time) ([]MeterTotal, error) {
	v.o.Metrics.queries.Inc()
	t, err := v.e.store.MeterTotals(ctx, s.ID, from, to)
	if err != nil {
		return nil, fmt.Errorf("sum the ledger of %s over [%s, %s): %w", s.ID, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return t, nil
}

// closed is a period whose figures changed and are written as results.
type closed struct {
	period   Period
	from, to time.Time
	totals   []MeterTotal
}

// evaluate brings one site's caches up to date, computes its snapshot, writes the results and
// calls the sink.
func (v *Evaluator) evaluate(ctx context.Context, s *analytics.Site, dirty map[time.Time]bool) error {
	now := v.o.Now()
	loc := s.Location()
	end := ledger.Align(now)
	var starts [4]time.Time
	for i, p := range Periods {
		starts[i], _ = p.Span(now, loc)
	}
	hourStart, dayStart, monthStart, yearStart := starts[0], starts[1], starts[2], starts[3]
	c := v.caches[s.ID]
	if c == nil || !c.year.Equal(yearStart) {
		old := c
		c = &siteCache{year: yearStart, months: map[time.Time][]MeterTotal{}, lastYear: map[time.Time][]MeterTotal{}, partial: map[time.Time]partialMonth{}}
		if old != nil {
			c.lastYear = old.lastYear
			// The year that just ended is last year now: its months are complete.
			for m, t := range old.months {
				c.lastYear[m] = t
			}
		}
		v.caches[s.ID] = c
	}
	if !c.month.Equal(monthStart) {
		c.month, c.days = monthStart, map[time.Time][]MeterTotal{}
	}
	if !c.day.Equal(dayStart) {
		c.day, c.hours = dayStart, map[time.Time][]MeterTotal{}
	}

	// New buckets: forget the sums they change, and note the closed periods to rewrite.
	var extra []closed
	extraSpans := map[[2]time.Time]Period{}
	for _, h := range slices.SortedFunc(maps.Keys(dirty), func(a, b time.Time) int { return a.Compare(b) }) {
		if !h.Before(hourStart) {
			continue // the current hour is read every time
		}
		hf, ht := Hour.Span(h, loc)
		switch {
		case !h.Before(dayStart):
			delete(c.hours, hf)
		case !h.Before(monthStart):
			df, _ := Day.Span(h, loc)
			delete(c.days, df)
			extraSpans[[2]time.Time{hf, ht}] = Hour
		case !h.Before(yearStart):
			mf, _ := Month.Span(h, loc)
			delete(c.months, mf)
			df, dt := Day.Span(h, loc)
			extraSpans[[2]time.Time{hf, ht}] = Hour
			extraSpans[[2]time.Time{df, dt}] = Day
		default:
			mf, mt := Month.Span(h, loc)
			delete(c.lastYear, mf)
			df, dt := Day.Span(h, loc)
			extraSpans[[2]time.Time{hf, ht}] = Hour
			extraSpans[[2]time.Time{df, dt}] = Day
			extraSpans[[2]time.Time{mf, mt}] = Month
		}
	}

	// Fill what is missing, noting the closed periods that were (re)read.
	for m := yearStart; m.Before(monthStart); m = m.AddDate(0, 1, 0) {
		if _, ok := c.months[m]; !ok {
			t, err := v.totals(ctx, s, m, m.AddDate(0, 1, 0))
			if err != nil {
				return err
			}
			c.months[m] = t
			if dirtyIn(dirty, m, m.AddDate(0, 1, 0)) {
				extra = append(extra, closed{Month, m, m.AddDate(0, 1, 0), t})
			}
		}
	}
	for d := monthStart; d.Before(dayStart); d = d.AddDate(0, 0, 1) {
		if _, ok := c.days[d]; !ok {
			t, err := v.totals(ctx, s, d, d.AddDate(0, 0, 1))
			if err != nil {
				return err
			}
			c.days[d] = t
			if dirtyIn(dirty, d, d.AddDate(0, 0, 1)) {
				extra = append(extra, closed{Day, d, d.AddDate(0, 0, 1), t})
			}
		}
	}
	for h := dayStart; h.Before(hourStart); h = h.Add(time.Hour) {
		if _, ok := c.hours[h]; !ok {
			t, err := v.totals(ctx, s, h, h.Add(time.Hour))
			if err != nil {
				return err
			}
			c.hours[h] = t
			if dirtyIn(dirty, h, h.Add(time.Hour)) {
				extra = append(extra, closed{Hour, h, h.Add(time.Hour), t})
			}
		}
	}
	for sp, p := range extraSpans {
		t, err := v.totals(ctx, s, sp[0], sp[1])
		if err != nil {
			return err
		}
		extra = append(extra, closed{p, sp[0], sp[1], t})
	}
	cur, err := v.totals(ctx, s, hourStart, maxTime(end, hourStart))
	if err != nil {
		return err
	}
	day := cur
	for _, t := range c.hours {
		day = AddTotals(day, t)
	}
	month := day
	for _, t := range c.days {
		month = AddTotals(month, t)
	}
	year := month
	for _, t := range c.months {
		year = AddTotals(year, t)
	}
	c.current = [4][]MeterTotal{cur, day, month, year}
	var closedDay []MeterTotal
	for _, t := range c.hours {
		closedDay = AddTotals(closedDay, t)
	}
	closedMonth := closedDay
	for _, t := range c.days {
		closedMonth = AddTotals(closedMonth, t)
	}
	closedYear := closedMonth
	for _, t := range c.months {
		closedYear = AddTotals(closedYear, t)
	}
	v.parkMu.Lock()
	c.closed = [4][]MeterTotal{nil, closedDay, closedMonth, closedYear}
	c.starts = starts
	v.parkMu.Unlock()

	snap := Snapshot{Site: s.ID, Boundary: BoundarySite, At: now}
	var results []Result
	for i, f := range snap.Periods() {
		from, to := starts[i], maxTime(end, starts[i])
		c.spans[i] = [2]time.Time{from, to}
		d, err := v.data(ctx, s, c.current[i], from, to)
		if err != nil {
			return err
		}
		*f = v.figures(s, Periods[i], d, from, to)
		results = append(results, v.results(s, Periods[i], d, *f, from, to)...)
	}
	for _, x := range extra {
		d, err := v.data(ctx, s, x.totals, x.from, x.to)
		if err != nil {
			return err
		}
		f := v.figures(s, x.period, d, x.from, x.to)
		results = append(results, v.results(s, x.period, d, f, x.from, x.to)...)
	}
	if snap.Plans, err = v.plans(ctx, s, c, now, snap); err != nil {
		return err
	}
	if v.o.Results != nil {
		if err := v.o.Results.WriteResults(ctx, results); err != nil {
			return fmt.Errorf("write results of %s: %w", s.ID, err)
		}
	}
	v.publish(ctx, snap)
	return nil
}

// dirtyIn reports whether any dirty hour lies in [from, to).
func dirtyIn(dirty map[time.Time]bool, from, to time.Time) bool {
	for h := range dirty {
		if !h.Before(from) && h.Before(to) {
			return true
		}
	}
	return false
}

// data adds a period's production inputs to its totals.
func (v *Evaluator) data(ctx context.Context, s *analytics.Site, totals []MeterTotal, from, to time.Time) (Data, error) {
	ins, err := v.e.store.Inputs(ctx, s.ID, from, to)
	if err != nil {
		return Data{}, fmt.Errorf("read production inputs of %s: %w", s.ID, err)
	}
	return Data{Totals: totals, Production: Prorate(ins, from, to)}, nil
}

func (v *Evaluator) figures(s *analytics.Site, p Period, d Data, from, to time.Time) Figures {
	b := ComputeBalance(s, d.Totals, from, to)
	return Figures{Period: p, Indicators: Compute(s, d, from, to), Balance: &b}
}

// results are the figures of the site and of each of its units over one period.
func (v *Evaluator) results(s *analytics.Site, p Period, d Data, f Figures, from, to time.Time) []Result {
	out := []Result{ResultOf(f.Indicators, f.Balance, p, from)}
	for _, n := range s.Nodes {
		if n.Type != analytics.Unit {
			continue
		}
		if ind, ok := ComputeUnit(s, n.ID, d, from, to); ok {
			out = append(out, ResultOf(ind, nil, p, from))
		}
	}
	return out
}

// plans evaluates the plans in force at now from the snapshot's year and month (a plan spans a
// calendar year or month), and last year's history from cached month sums.
func (v *Evaluator) plans(ctx context.Context, s *analytics.Site, c *siteCache, now time.Time, snap Snapshot) ([]PlanStatus, error) {
	out := []PlanStatus{}
	loc := s.Location()
	for _, p := range s.PlansAt(now) {
		var f *Figures
		switch p.Period {
		case analytics.PeriodYear:
			f = &snap.Year
		case analytics.PeriodMonth:
			f = &snap.Month
		default:
			continue
		}
		used, cov := planUse(p, f.Indicators.Flows)
		lf, soFar, lt := quota.LastYear(p, loc, now)
		whole, err := v.monthsTotal(ctx, s, c, lf, lt)
		if err != nil {
			return nil, err
		}
		var last *History
		wf := ResolveFlows(s, whole, periodMinutes(lf, lt))
		if wu, wcov := planUse(p, wf); wcov > 0 {
			ms, _ := Month.Span(soFar, loc)
			so, err := v.monthsTotal(ctx, s, c, lf, ms)
			if err != nil {
				return nil, err
			}
			pm, err := v.partial(ctx, s, c, ms, ledger.Align(soFar), now)
			if err != nil {
				return nil, err
			}
			so = AddTotals(so, pm)
			su, _ := planUse(p, ResolveFlows(s, so, periodMinutes(lf, soFar)))
			last = &History{WholePeriod: wu, SameSoFar: su, Coverage: wcov}
		}
		out = append(out, planStatus(s, p, now, used, cov, last))
	}
	return out, nil
}

// monthsTotal sums whole months of earlier years over [from, to), reading each once.
func (v *Evaluator) monthsTotal(ctx context.Context, s *analytics.Site, c *siteCache, from, to time.Time) ([]MeterTotal, error) {
	var sum []MeterTotal
	for m := from; m.Before(to); m = m.AddDate(0, 1, 0) {
		t, ok := c.lastYear[m]
		if !ok {
			var err error
			if t, err = v.totals(ctx, s, m, m.AddDate(0, 1, 0)); err != nil {
				return nil, err
			}
			c.lastYear[m] = t
		}
		sum = AddTotals(sum, t)
	}
	return sum, nil
}

// partial sums [from, to) inside one month of an earlier year, re-read once an hour of now.
func (v *Evaluator) partial(ctx context.Context, s *analytics.Site, c *siteCache, from, to, now time.Time) ([]MeterTotal, error) {
	hour := now.Truncate(time.Hour)
	if pm, ok := c.partial[from]; ok && pm.hour.Equal(hour) && pm.to.Equal(to) {
		return pm.totals, nil
	}
	if !to.After(from) {
		return nil, nil
	}
	t, err := v.totals(ctx, s, from, to)
	if err != nil {
		return nil, err
	}
	c.partial[from] = partialMonth{hour: hour, to: to, totals: t}
	return t, nil
}

// evaluatePark sums the park's sites as of now: for each site the closed part of every period
// from its cache and a fresh read of the current hour, so the park is available as soon as
// each of its sites has been evaluated once in the current hour, whenever that was. A site
// last evaluated in an earlier hour (or in another time zone) is queued instead, and the
// park follows its evaluation.
func (v *Evaluator) evaluatePark(ctx context.Context, park string) error {
	sites := v.e.parks[park]
	for _, s := range sites {
		if !v.o.Owns(s.ID) {
			return nil // computed on demand (Snapshot)
		}
	}
	now := v.o.Now()
	end := ledger.Align(now)
	var starts [4]time.Time
	closed := make([][4][]MeterTotal, len(sites))
	v.parkMu.Lock()
	for i, s := range sites {
		c := v.caches[s.ID]
		if c == nil || c.starts[0].IsZero() {
			v.parkMu.Unlock()
			return nil // not evaluated yet: the park follows its first evaluation
		}
		if i == 0 {
			starts = c.starts
		}
		closed[i] = c.closed
		if !c.starts[0].Equal(starts[0]) {
			// Evaluated in another hour: evaluate the sites again, then the park.
			v.parkMu.Unlock()
			v.requeue(sites)
			return nil
		}
		if !sameInstants(c.starts, starts) {
			v.parkMu.Unlock()
			return nil // sites in different time zones: the park has no common day or month
		}
	}
	v.parkMu.Unlock()
	hourStart := starts[0]
	to := maxTime(minTime(end, hourStart.Add(time.Hour)), hourStart)
	cur := make([][]MeterTotal, len(sites))
	for i, s := range sites {
		t, err := v.totals(ctx, s, hourStart, to)
		if err != nil {
			return err
		}
		cur[i] = t
	}
	snap := Snapshot{Site: park, Boundary: BoundaryPark, Plans: []PlanStatus{}}
	var results []Result
	for i, f := range snap.Periods() {
		from := starts[i]
		ds := make([]Data, len(sites))
		for j, s := range sites {
			d, err := v.data(ctx, s, AddTotals(cur[j], closed[j][i]), from, to)
			if err != nil {
				return err
			}
			ds[j] = d
		}
		*f = Figures{Period: Periods[i], Indicators: ComputePark(park, sites, ds, from, to)}
		results = append(results, ResultOf(f.Indicators, nil, Periods[i], from))
	}
	snap.At = now
	if v.o.Results != nil {
		if err := v.o.Results.WriteResults(ctx, results); err != nil {
			return fmt.Errorf("write results of park %s: %w", park, err)
		}
	}
	v.publish(ctx, snap)
	return nil
}

// sameInstants compares period starts as instants. Each site loads its own *time.Location, so
// == on time.Time (which compares the location pointer) would tell two sites of the same zone
// apart; that kept every park with more than one site from ever getting a snapshot.
func sameInstants(a, b [4]time.Time) bool {
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// requeue queues sites for evaluation (their park needs them in the same hour).
func (v *Evaluator) requeue(sites []*analytics.Site) {
	v.mu.Lock()
	for _, s := range sites {
		v.mark(s.ID)
	}
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *Evaluator) publish(ctx context.Context, snap Snapshot) {
	v.snapMu.Lock()
	v.snaps[snap.Site] = snap
	v.snapMu.Unlock()
	if v.o.Sink != nil {
		v.o.Sink(ctx, snap)
	}
}

// ResultOf turns one boundary's figures over one period into the fields written for charts. An
// undefined indicator is left out. The balance, when given, adds the closure check and the
// largest parent/children imbalance.
func ResultOf(ind Indicators, b *Balance, p Period, start time.Time) Result {
	f := map[string]float64{}
	put := func(name string, v *float64) {
		if v != nil {
			f[name] = *v
		}
	}
	r := &ind.Rates
	for name, i := range map[string]*Indicator{
		"r": &r.ReuseRate, "r_with_vu": &r.ReuseRateWithVu, "rc": &r.IndirectCoolingRate, "rd": &r.DirectCoolingRate,
		"rb": &r.CondensateRate, "kw": &r.WastewaterReuseRate, "kl": &r.LeakageRate, "kd": &r.DischargeRate,
		"consumption_rate": &r.ConsumptionRate, "ru": &r.NonConventionalRate,
		"intake_per_product": &r.IntakePerProduct, "intake_per_10k_cny": &r.IntakePer10kCNY,
	} {
		put(name, i.Value)
	}
	vol := ind.Volumes
	for name, x := range map[string]float64{
		"vi": vol.Vi, "vu": vol.Vu, "vr": vol.Vr, "vcy": vol.Vcy, "vs": vol.Vs, "vw": vol.Vw, "vb": vol.Vb,
		"vd": vol.Vd, "vco": vol.Vco, "v_supplied": vol.VSupplied, "vt": vol.Vt, "vl": vol.Vl, "v_out": vol.VOut,
		"coverage": ind.Coverage,
	} {
		f[name] = x
	}
	for _, m := range ind.Metering {
		put(fmt.Sprintf("metering_rate_l%d", m.Level), m.Rate)
		put(fmt.Sprintf("equipping_rate_l%d", m.Level), m.EquippingRate)
	}
	if b != nil {
		f["closure_error"] = b.Whole.ClosureError
		f["closure_ok"] = 0
		if b.Whole.ClosureOK {
			f["closure_ok"] = 1
		}
		var worst float64
		for _, l := range b.Levels {
			worst = max(worst, l.MaxAbs)
		}
		f["max_abs_imbalance"] = worst
	}
	return Result{Site: ind.Site, Boundary: ind.Boundary, Period: string(p), Start: start, Fields: f}
}
