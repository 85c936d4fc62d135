package alerting

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/balance"
	"github.com/aqualoop/aqualoop/analytics/engine"
)

// observation is what a rule sees of one alert candidate in one evaluation.
type observation struct {
	labels map[string]string
	value  float64
	// active: beyond the fire threshold. hold: not active but inside the hysteresis band (or not
	// decidable), so an alert keeps its state.
	active, hold bool
	severity     string
	since        time.Time // when the condition began, when the rule knows better than "now"
	description  string
	vars         map[string]string
	uses         []string
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + " %" }

func num(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

// minElapsed is how much of a period must have passed before a figure rule judges it: a day's
// imbalance over its first five minutes is meter resolution, not a leak.
var minElapsed = map[string]time.Duration{"hour": 20 * time.Minute, "day": 2 * time.Hour, "month": 24 * time.Hour, "year": 7 * 24 * time.Hour}

func figures(snap *engine.Snapshot, period string) *engine.Figures {
	switch period {
	case "hour":
		return &snap.Hour
	case "month":
		return &snap.Month
	case "year":
		return &snap.Year
	}
	return &snap.Day
}

func meterSelected(r *Rule, id string) bool {
	return len(r.Meters) == 0 || slices.Contains(r.Meters, id)
}

func or(p *float64, d float64) float64 {
	if p != nil {
		return *p
	}
	return d
}

// observe evaluates one rule for one site. skip means the rule cannot judge now and every alert
// of it keeps its state.
//
// quiet says the rule has no alert at the site now: a meter loop then skips the meters with
// nothing to raise, instead of building their texts to throw away.
func (m *Manager) observe(s *analytics.Site, r *Rule, now time.Time, snap *engine.Snapshot, quiet bool) (obs []observation, skip bool) {
	switch r.Kind {
	case KindStale:
		for _, mt := range s.Meters {
			if !meterSelected(r, mt.ID) {
				continue
			}
			iv := mt.Interval
			if iv <= 0 {
				iv = time.Minute
			}
			last, edge := m.started, ""
			if ml := m.live.meters[s.ID+"/"+mt.ID]; ml != nil {
				edge = ml.edge
				if !ml.heard.IsZero() {
					last = ml.heard
				}
			}
			limit := time.Duration(r.Intervals) * iv
			age := now.Sub(last)
			if quiet && age <= limit {
				continue // nothing to raise and nothing to resolve: skip building the texts
			}
			l := map[string]string{"meter": mt.ID}
			if edge != "" {
				l["edge"] = edge
			}
			obs = append(obs, observation{labels: l, value: age.Seconds(), active: age > limit, since: last.Add(limit),
				vars:        map[string]string{"value": age.Round(time.Second).String()},
				description: fmt.Sprintf("no good reading from %s for %s (more than %d × %s)", mt.ID, age.Round(time.Second), r.Intervals, iv),
				uses:        []string{mt.ID}})
		}
	case KindEdgeOffline:
		for k, e := range m.live.edges {
			site, edge, _ := cut(k)
			if site != s.ID {
				continue
			}
			obs = append(obs, observation{labels: map[string]string{"edge": edge}, active: !e.online, since: e.at,
				value: b2f(!e.online), description: fmt.Sprintf("edge %s reported offline at %s", edge, e.at.Format(time.RFC3339))})
		}
	case KindStuck:
		for _, mt := range s.Meters {
			ml := m.live.meters[s.ID+"/"+mt.ID]
			if ml == nil || !meterSelected(r, mt.ID) {
				continue
			}
			n := ml.stillWhileFlowing(r.MinFlow)
			if quiet && n < r.Count {
				continue
			}
			obs = append(obs, observation{labels: map[string]string{"meter": mt.ID}, value: float64(n), active: n >= r.Count,
				description: fmt.Sprintf("%d readings of %s with the same totalizer while the flow was at least %s m³/h", n, mt.ID, num(r.MinFlow)),
				uses:        []string{mt.ID}})
		}
	case KindBadQuality, KindReverseSteps, KindSpikes, KindResetUnrecorded:
		for _, mt := range s.Meters {
			ml := m.live.meters[s.ID+"/"+mt.ID]
			if ml == nil || !meterSelected(r, mt.ID) {
				continue
			}
			var ts []time.Time
			what := ""
			switch r.Kind {
			case KindBadQuality:
				ts, what = ml.bad, "bad-quality readings"
			case KindReverseSteps:
				ts, what = ml.reverse, "reverse steps"
			case KindSpikes:
				ts, what = ml.spikes, "rejected spikes"
			case KindResetUnrecorded:
				ts, what = ml.resets, "resets"
			}
			need := max(r.Count, 1)
			n := countIn(ts, now, r.Window)
			if quiet && n == 0 {
				continue
			}
			obs = append(obs, observation{labels: map[string]string{"meter": mt.ID}, value: float64(n), active: n >= need,
				hold: n > 0 && r.Kind != KindResetUnrecorded, uses: []string{mt.ID},
				description: fmt.Sprintf("%d %s of %s in the last %s", n, what, mt.ID, r.Window)})
		}
	default:
		if snap == nil {
			return nil, true
		}
		return m.observeFigures(s, r, now, snap, quiet)
	}
	return obs, false
}

func cut(k string) (a, b string, ok bool) {
	for i := range len(k) {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeFigures evaluates the rules on a snapshot's figures.
func (m *Manager) observeFigures(s *analytics.Site, r *Rule, now time.Time, snap *engine.Snapshot, quiet bool) ([]observation, bool) {
	var obs []observation
	var fig *engine.Figures
	if r.Period != "" {
		fig = figures(snap, r.Period)
		if now.Sub(fig.Indicators.From) < minElapsed[r.Period] {
			return nil, true
		}
	}
	switch r.Kind {
	case KindCoverage:
		for _, f := range fig.Indicators.Flows {
			if f.Meter == "" || !meterSelected(r, f.Meter) || quiet && f.Coverage >= *r.Clear {
				continue
			}
			obs = append(obs, observation{labels: map[string]string{"meter": f.Meter}, value: f.Coverage,
				active: f.Coverage < *r.Threshold, hold: f.Coverage < *r.Clear, vars: map[string]string{"value": pct(f.Coverage)},
				uses: []string{f.Meter}, description: fmt.Sprintf("%s of the %s's minutes of %s have good data", pct(f.Coverage), r.Period, f.Meter)})
		}
	case KindImbalance, KindMeterFault, KindParentFlowing:
		if fig.Balance == nil {
			return nil, true
		}
		thr := or(r.Threshold, s.Balance.ImbalanceWarn)
		crit := or(r.Critical, s.Balance.ImbalanceAlarm)
		clr := or(r.Clear, 0.8*thr)
		hours := now.Sub(fig.Indicators.From).Hours()
		for _, im := range fig.Balance.Imbalances {
			if r.Level != 0 && im.Level != r.Level {
				continue
			}
			uses := append([]string{im.Parent}, im.Children...)
			l := map[string]string{"meter": im.Parent, "level": strconv.Itoa(im.Level)}
			o := observation{labels: l, value: im.Epsilon, uses: uses, vars: map[string]string{"value": pct(im.Epsilon)}}
			if im.Status == balance.StatusNoData {
				o.hold = true
				obs = append(obs, o)
				continue
			}
			switch r.Kind {
			case KindImbalance:
				o.active, o.hold = im.Epsilon > thr, im.Epsilon > clr
				if im.Epsilon > crit {
					o.severity = SeverityCritical
				}
				o.description = fmt.Sprintf("ε = (%s − %s) / %s = %s over the %s (warn %s, alarm %s)", num(im.ParentVolume),
					num(im.ChildrenVolume), num(im.ParentVolume), pct(im.Epsilon), r.Period, pct(thr), pct(crit))
			case KindMeterFault:
				o.active, o.hold = -im.Epsilon > thr, -im.Epsilon > clr
				o.description = fmt.Sprintf("children of %s measured %s m³, the parent %s m³ (ε = %s): a meter reads wrong",
					im.Parent, num(im.ChildrenVolume), num(im.ParentVolume), pct(im.Epsilon))
			case KindParentFlowing:
				rate := im.ParentVolume / max(hours, 1e-9)
				share := 1.0
				if im.ParentVolume > 0 {
					share = im.ChildrenVolume / im.ParentVolume
				}
				o.value = rate
				o.vars = map[string]string{"value": num(rate) + " m³/h"}
				o.active = rate >= r.MinFlow && share <= *r.Threshold
				o.hold = rate >= r.MinFlow && share < *r.Clear
				o.description = fmt.Sprintf("%s flows %s m³/h while its children take %s of it", im.Parent, num(rate), pct(share))
			}
			obs = append(obs, o)
		}
	case KindNodeResidual:
		if fig.Balance == nil {
			return nil, true
		}
		for _, n := range fig.Balance.Nodes {
			if n.Type != analytics.Unit || n.Closure == nil || r.Node != "" && n.ID != r.Node {
				continue
			}
			c := *n.Closure
			o := observation{labels: map[string]string{"node": n.ID}, value: c, active: c > *r.Threshold, hold: c > *r.Clear,
				uses: nodeMeters(fig.Balance, n.ID), vars: map[string]string{"value": pct(c)},
				description: fmt.Sprintf("node %s: in %s m³, out %s m³, consumed %s m³, residual %s m³ (%s of inflow)",
					n.ID, num(n.In), num(n.Out), num(n.Consumption), num(n.Residual), pct(c))}
			if r.Critical != nil && c > *r.Critical {
				o.severity = SeverityCritical
			}
			obs = append(obs, o)
		}
	case KindCUSUM, KindEWMA:
		return m.observeSeries(s, r, now, snap)
	case KindBurst:
		for _, id := range r.Meters {
			obs = append(obs, m.observeBurst(s, r, id)...)
		}
	case KindNightFlow:
		for _, id := range r.Meters {
			obs = append(obs, m.observeNight(s, r, id, now)...)
		}
	case KindPlan, KindPlanProjected:
		for _, p := range snap.Plans {
			end := p.To
			if p.At.Before(end) {
				end = p.At
			}
			covered := end.Sub(p.From).Seconds() * p.Coverage / p.To.Sub(p.From).Seconds()
			enough := covered >= r.MinCovered
			if r.Kind == KindPlanProjected {
				obs = append(obs, observation{labels: map[string]string{"plan": p.Plan}, value: p.Projected,
					active: enough && p.ProjectedOver, hold: !enough, vars: map[string]string{"value": num(p.Projected)},
					description: fmt.Sprintf("used %s of %s m³ so far; projected %s m³ by %s", num(p.Used), num(p.Volume),
						num(p.Projected), p.To.Format("2006-01-02"))})
				continue
			}
			for _, f := range r.Fractions {
				sev := SeverityInfo
				switch {
				case f >= 1:
					sev = SeverityCritical
				case f >= 0.9:
					sev = SeverityWarning
				}
				obs = append(obs, observation{labels: map[string]string{"plan": p.Plan, "threshold": pct(f)}, value: p.UsedFraction,
					active: enough && p.UsedFraction >= f, hold: !enough, severity: sev,
					vars:        map[string]string{"value": pct(p.UsedFraction)},
					description: fmt.Sprintf("used %s of %s m³ (%s) by %s", num(p.Used), num(p.Volume), pct(p.UsedFraction), p.At.Format(time.RFC3339))})
			}
		}
	case KindIntakePerProduct:
		v := fig.Indicators.Rates.IntakePerProduct.Value
		if v == nil {
			return nil, true
		}
		o := observation{labels: map[string]string{"period": r.Period}, value: *v, vars: map[string]string{"value": num(*v)}}
		switch {
		case r.General != nil && *v > *r.General:
			o.active, o.severity = true, SeverityWarning
			o.description = fmt.Sprintf("intake per unit of product %s m³ is above the general quota (通用值) %s", num(*v), num(*r.General))
		case r.Advanced != nil && *v > *r.Advanced:
			o.active, o.severity = true, SeverityInfo
			o.description = fmt.Sprintf("intake per unit of product %s m³ is above the advanced quota (先进值) %s", num(*v), num(*r.Advanced))
		}
		obs = append(obs, o)
	case KindDailyIntake:
		vi := snap.Day.Indicators.Volumes.Vi
		o := observation{labels: map[string]string{}, value: vi, active: vi > *r.Threshold, hold: vi > or(r.Clear, *r.Threshold),
			vars: map[string]string{"value": num(vi)}, description: fmt.Sprintf("intake today %s m³, limit %s m³", num(vi), num(*r.Threshold))}
		if r.Critical != nil && vi > *r.Critical {
			o.severity = SeverityCritical
		}
		obs = append(obs, o)
	case KindReuseRate:
		ind := fig.Indicators
		rr, cov := ind.ReuseRate, ind.Rates.ReuseRate.Coverage
		if ind.Declared == "reuse_rate_with_vu" {
			rr, cov = ind.ReuseRateWithVu, ind.Rates.ReuseRateWithVu.Coverage
		}
		target := r.Threshold
		src := "site target"
		if target == nil && s.Indicators.Benchmark != nil {
			target, src = &s.Indicators.Benchmark.ReuseRate, "sector benchmark "+s.Indicators.Benchmark.Sector
		}
		if target == nil {
			return nil, false
		}
		if rr == nil || cov < r.MinCoverage {
			return nil, true
		}
		obs = append(obs, observation{labels: map[string]string{"period": r.Period}, value: *rr, active: *rr < *target,
			hold: *rr < or(r.Clear, *target), vars: map[string]string{"value": pct(*rr), "target": pct(*target)},
			description: fmt.Sprintf("declared reuse rate of the %s %s is below the %s %s", r.Period, pct(*rr), src, pct(*target))})
	case KindClosure:
		if fig.Balance == nil || fig.Balance.Coverage < r.MinCoverage {
			return nil, true
		}
		w := fig.Balance.Whole
		obs = append(obs, observation{labels: map[string]string{"period": r.Period}, value: w.ClosureError, active: !w.ClosureOK,
			vars: map[string]string{"value": pct(w.ClosureError)},
			description: fmt.Sprintf("unit intakes %s m³ vs total intake %s m³: closure error %s above %s", num(w.UnitIntakes),
				num(w.TotalIntake), pct(w.ClosureError), pct(w.ClosureThreshold))})
	case KindVerification:
		for _, mt := range s.Meters {
			if !meterSelected(r, mt.ID) {
				continue
			}
			next := s.NextVerification(mt)
			if next.IsZero() {
				continue
			}
			days := math.Floor(next.Sub(now).Hours() / 24)
			if quiet && days > float64(r.Days) {
				continue
			}
			o := observation{labels: map[string]string{"meter": mt.ID}, value: days, active: days <= float64(r.Days),
				description: fmt.Sprintf("meter %s (DN%d, %s) falls due on %s", mt.ID, mt.DN, mt.Type, next.Format("2006-01-02"))}
			if days < 0 {
				o.severity = SeverityCritical
				o.description = fmt.Sprintf("meter %s is overdue for verification since %s", mt.ID, next.Format("2006-01-02"))
			}
			obs = append(obs, o)
		}
	case KindMeteringRate:
		for _, lv := range fig.Indicators.Metering {
			if r.Level != 0 && lv.Level != r.Level {
				continue
			}
			for _, c := range []struct {
				measure, zh  string
				rate, target *float64
			}{{"metering", "计量", lv.Rate, lv.RateTarget}, {"equipping", "配备", lv.EquippingRate, lv.EquippingTarget}} {
				if c.rate == nil || c.target == nil {
					continue
				}
				obs = append(obs, observation{labels: map[string]string{"level": strconv.Itoa(lv.Level), "measure": c.measure},
					value: *c.rate, active: *c.rate < *c.target-1e-9,
					vars:        map[string]string{"value": pct(*c.rate), "measure_zh": c.zh},
					description: fmt.Sprintf("level %d %s rate %s, required %s", lv.Level, c.measure, pct(*c.rate), pct(*c.target))})
			}
		}
	}
	return obs, false
}

// nodeMeters are the meters of the flows into and out of a node.
func nodeMeters(b *engine.Balance, node string) []string {
	var out []string
	for _, f := range b.Flows {
		if f.Meter != "" && (f.From == node || f.To == node) {
			out = append(out, f.Meter)
		}
	}
	return out
}

// observeSeries feeds the hour's figure to the rule's detector and reports its alarm.
func (m *Manager) observeSeries(s *analytics.Site, r *Rule, now time.Time, snap *engine.Snapshot) ([]observation, bool) {
	h := snap.Hour
	if h.Balance == nil {
		return nil, true
	}
	hours := now.Sub(h.Indicators.From).Hours()
	if hours <= 0 {
		return nil, true
	}
	var v float64
	l := map[string]string{"series": r.Series}
	var uses []string
	switch r.Series {
	case "site_residual", "site_leakage_rate":
		v = h.Balance.Whole.Vl / hours
		if r.Series == "site_leakage_rate" {
			if h.Balance.Whole.Vi <= 0 {
				return nil, true
			}
			v = h.Balance.Whole.Vl / h.Balance.Whole.Vi
		}
		for _, f := range h.Balance.Flows {
			if f.Meter != "" {
				uses = append(uses, f.Meter)
			}
		}
	case "node_residual":
		l["node"] = r.Node
		i := slices.IndexFunc(h.Balance.Nodes, func(n engine.Node) bool { return n.ID == r.Node })
		if i < 0 {
			return nil, true
		}
		v = h.Balance.Nodes[i].Residual / hours
		uses = nodeMeters(h.Balance, r.Node)
	case "meter_flow":
		id := r.Meters[0]
		l["meter"] = id
		i := slices.IndexFunc(h.Balance.Flows, func(f engine.FlowVolume) bool { return f.Meter == id })
		if i < 0 {
			return nil, true
		}
		v = h.Balance.Flows[i].Volume / hours
		uses = []string{id}
	}
	k := s.ID + "/" + r.Name
	d := m.series.dets[k]
	if d == nil {
		d = newDetector(r)
		if st, ok := m.detStates[k]; ok {
			d.restore(st)
		}
		m.series.dets[k] = d
	}
	fed := d.fed
	d.observe(h.Indicators.From, v)
	if d.fed != fed {
		// Once per closed hour: a restart continues the sum instead of learning again.
		if err := m.db.saveDetector(context.Background(), s.ID, r.Name, d.marshal()); err != nil {
			m.o.Logger.Error("detector state not written; fix the state database", "err", err)
		}
	}
	if d.cusum == nil && d.ewma == nil {
		return nil, true // still learning its baseline
	}
	stat := "S⁺"
	if d.ewma != nil {
		stat = "z"
	}
	return []observation{{labels: l, value: d.stat, active: d.active, hold: d.hold, uses: uses,
		vars:        map[string]string{"value": num(d.stat)},
		description: fmt.Sprintf("%s on %s: last closed hour %s m³/h, %s = %s", r.Kind, r.Series, num(d.last), stat, num(d.stat))}}, false
}

// observeBurst compares the meter's mean flow over the last window with the lowest window of the
// hour before it; a step up by threshold fires, and the alert holds until the flow is back within clear of the
// level it stepped from.
func (m *Manager) observeBurst(s *analytics.Site, r *Rule, id string) []observation {
	newest, ok := m.series.newest[s.ID+"/"+id]
	if !ok {
		return nil
	}
	end := time.Unix(newest, 0).UTC() // the newest minute may still grow: windows end before it
	cur, ok1 := m.series.rate(s.ID, id, end.Add(-r.Window), r.Window)
	// The level before is the lowest window of the hour before the current one, so a step is
	// seen whole however seldom the site is evaluated.
	prev, ok2 := math.Inf(1), false
	for back := 2 * r.Window; back <= r.Window+time.Hour; back += 5 * time.Minute {
		if v, ok := m.series.rate(s.ID, id, end.Add(-back), r.Window); ok {
			prev, ok2 = min(prev, v), true
		}
	}
	k := s.ID + "/" + r.Name + "/" + id
	b := m.series.bursts[k]
	if b == nil {
		b = &burstState{}
		m.series.bursts[k] = b
	}
	o := observation{labels: map[string]string{"meter": id}, uses: []string{id}}
	if !ok1 || !ok2 {
		o.hold = true
		return []observation{o}
	}
	clr := or(r.Clear, *r.Threshold/2)
	if !b.fired && cur-prev >= *r.Threshold {
		b.fired, b.base, b.since = true, prev, end.Add(-r.Window)
	} else if b.fired && cur-b.base < clr {
		b.fired = false
	}
	o.active, o.since = b.fired, b.since
	o.value = cur - prev
	if b.fired {
		o.value = cur - b.base
	}
	o.vars = map[string]string{"value": num(o.value) + " m³/h"}
	o.description = fmt.Sprintf("flow of %s: %s m³/h over the last %s, %s m³/h before", id, num(cur), r.Window, num(prev))
	return []observation{o}
}

// observeNight computes the minimum night flow of the last complete day of the site.
func (m *Manager) observeNight(s *analytics.Site, r *Rule, id string, now time.Time) []observation {
	loc := s.Location()
	today, _ := engine.Day.Span(now, loc)
	from := today.AddDate(0, 0, -1)
	q := make([]float64, 96)
	for i := range q {
		rate, ok := m.series.rate(s.ID, id, from.Add(time.Duration(i)*15*time.Minute), 15*time.Minute)
		if !ok {
			rate = math.NaN()
		}
		q[i] = rate
	}
	o := observation{labels: map[string]string{"meter": id}, uses: []string{id}}
	mnf, ok := NightFlow(q)
	if !ok {
		o.hold = true
		return []observation{o}
	}
	o.value, o.active, o.hold = mnf, mnf > *r.Threshold, mnf > *r.Clear
	o.vars = map[string]string{"value": num(mnf) + " m³/h", "day": from.Format("2006-01-02")}
	o.description = fmt.Sprintf("minimum night flow of %s on %s: %s m³/h (threshold %s)", id, from.Format("2006-01-02"), num(mnf), num(*r.Threshold))
	return []observation{o}
}
