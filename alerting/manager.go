package alerting

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// Options configure a Manager. Sites and DB are required.
type Options struct {
	Sites []*analytics.Site
	// RulesFiles are loaded rules files (LoadRules), on top of DefaultRules.
	RulesFiles []*RulesFile
	// DB is the platform's state database (SQLite); the manager creates its alert_ tables.
	DB *sql.DB
	// Now is the platform's clock, for liveness rules, acknowledgements and silences (default
	// time.Now). Figure rules run on the snapshots' event time.
	Now func() time.Time
	// Notify receives alerts on every state change, and still-firing alerts again every Resend.
	Notify func(ctx context.Context, alerts []Alert)
	// Resend is how often a still-firing alert is handed to Notify again (default 1 min), and
	// Interval how often liveness rules are evaluated (default 15 s).
	Resend, Interval time.Duration
	// GeneratorURL is the base URL of the console; an alert links to GeneratorURL/alerts/<id>.
	GeneratorURL string
	// Who names the user of an API request; Allowed says whether they may see and act on a
	// site's alerts ("" asks about alerts and silences of every site). Nil allows everything.
	Who     func(*http.Request) string
	Allowed func(r *http.Request, site string) bool
	Logger  *slog.Logger
	Metrics *Metrics
}

// Manager evaluates rules and keeps alerts.
type Manager struct {
	o       Options
	db      *db
	sites   map[string]*analytics.Site
	order   []*analytics.Site
	rules   map[string][]*Rule // by site
	started time.Time

	mu       sync.Mutex
	active   map[string]*record // by fingerprint: pending and firing
	silences []*Silence
	live     *liveness
	series   *seriesState
	// detStates are the stored detector states by site/rule, restored on first use.
	detStates map[string]string
	// resolvedUnsent are alerts resolved since the last due, to announce if they were announced
	// firing.
	resolvedUnsent []*record
}

// New opens the alert state in o.DB, loads the alerts still pending or firing and the silences,
// and returns a manager ready to receive snapshots; Run starts its clock.
func New(ctx context.Context, o Options) (*Manager, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Resend <= 0 {
		o.Resend = time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	d, err := openDB(ctx, o.DB)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		o: o, db: d, sites: map[string]*analytics.Site{}, order: o.Sites, rules: map[string][]*Rule{},
		started: o.Now(), active: map[string]*record{},
		live: newLiveness(), series: newSeriesState(),
	}
	for _, s := range o.Sites {
		m.sites[s.ID] = s
		m.rules[s.ID] = siteRules(s, o.RulesFiles)
		for _, r := range m.rules[s.ID] {
			for _, id := range r.Meters {
				if r.Kind == KindBurst || r.Kind == KindNightFlow {
					m.series.watch(s.ID, id)
				}
			}
		}
	}
	recs, err := d.query(ctx, "state != ?", StateResolved)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		m.active[r.Fingerprint] = r
	}
	if m.detStates, err = d.detectors(ctx); err != nil {
		return nil, err
	}
	if m.silences, err = d.silences(ctx); err != nil {
		return nil, err
	}
	for _, f := range o.RulesFiles {
		for i, fs := range f.Silences {
			s := &Silence{ID: fmt.Sprintf("file-%s-%d", f.Site, i), StartsAt: fs.StartsAt, EndsAt: fs.EndsAt,
				Author: fs.Author, Comment: fs.Comment, File: "rules", CreatedAt: m.started}
			for _, t := range fs.Matchers {
				if mt, err := ParseMatcher(t); err == nil {
					s.Matchers = append(s.Matchers, mt)
				}
			}
			m.silences = append(m.silences, s)
		}
	}
	m.updateGauges()
	return m, nil
}

// Rules returns the effective rules of a site.
func (m *Manager) Rules(site string) []*Rule { return m.rules[site] }

// Run evaluates the liveness rules every Interval and resends still-firing alerts until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.Tick(ctx)
		}
	}
}

// Tick runs one liveness cycle: it evaluates the liveness rules of every site on the platform
// clock and hands changed and due alerts to Notify. Run calls it; tests call it directly.
func (m *Manager) Tick(ctx context.Context) {
	now := m.o.Now()
	m.mu.Lock()
	for _, s := range m.order {
		m.evaluate(ctx, s, now, nil)
	}
	out := m.due(now, true)
	m.mu.Unlock()
	m.send(ctx, out, now)
}

// Sink is the engine's Sink: it evaluates a site's figure rules on its snapshot, in event time.
func (m *Manager) Sink(ctx context.Context, snap engine.Snapshot) {
	s, ok := m.sites[snap.Site]
	if !ok || snap.Boundary != engine.BoundarySite {
		return
	}
	m.mu.Lock()
	m.evaluate(ctx, s, snap.At, &snap)
	out := m.due(m.o.Now(), false)
	m.mu.Unlock()
	m.send(ctx, out, m.o.Now())
}

// Readings is ingest's OnReadings: it records when each meter was last heard of (platform
// clock) and tracks stuck totalizers and bad-quality points.
func (m *Manager) Readings(rs []collector.Reading) {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		s, ok := m.sites[r.Site]
		if !ok {
			continue
		}
		m.live.reading(s, r, now)
	}
}

// Status is ingest's OnStatus: an edge's retained online/offline status.
func (m *Manager) Status(site, edge string, online bool, at time.Time) {
	if _, ok := m.sites[site]; !ok {
		return // a site this platform does not model: nothing to alert on, nothing to keep
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live.status(site, edge, online, at)
}

// Buckets receives the ledger's changed buckets (ingest's OnBuckets, beside the evaluator's):
// flags for reverse steps, spikes and resets, and the minute volumes of watched meters.
func (m *Manager) Buckets(bs []ledger.Bucket) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		if _, ok := m.sites[b.Site]; ok {
			m.live.bucket(b)
			m.series.bucket(b)
		}
	}
}

// evaluate runs the site's rules of one clock: liveness rules when snap is nil, figure rules on
// snap otherwise. m.mu is held.
func (m *Manager) evaluate(ctx context.Context, s *analytics.Site, now time.Time, snap *engine.Snapshot) {
	start := time.Now()
	source := "snapshot"
	if snap == nil {
		source = "liveness"
	}
	busy := map[string]bool{}
	for _, a := range m.active {
		if a.Site == s.ID {
			busy[a.Rule] = true
		}
	}
	for _, r := range m.rules[s.ID] {
		if kinds[r.Kind].liveness != (snap == nil) {
			continue
		}
		obs, skip := m.observe(s, r, now, snap, !busy[r.Name])
		if skip {
			continue
		}
		m.apply(ctx, s, r, now, obs)
	}
	m.o.Metrics.evaluations.WithLabelValues(source).Inc()
	m.o.Metrics.took.Observe(time.Since(start).Seconds())
	m.updateGauges()
}

// apply moves the alerts of one rule and site through their lifecycle given what the rule
// observes now. m.mu is held.
func (m *Manager) apply(ctx context.Context, s *analytics.Site, r *Rule, now time.Time, obs []observation) {
	seen := map[string]bool{}
	for _, o := range obs {
		labels := m.labels(s, r, o)
		fp := fingerprint(labels)
		seen[fp] = true
		a := m.active[fp]
		if a == nil {
			if !o.active {
				continue
			}
			since := now
			if !o.since.IsZero() && o.since.Before(now) {
				since = o.since
			}
			a = &record{Fingerprint: fp, Rule: r.Name, Kind: r.Kind, Site: s.ID, State: StatePending, ActiveAt: since,
				Runbook: r.Runbook}
			m.active[fp] = a
		}
		// The stored copy is rewritten on state changes and escalations only; the value and text
		// of an ongoing alert live in memory between them.
		dirty := a.ID == 0 || a.Severity != labels["severity"]
		a.Labels, a.Value, a.Uses = labels, o.value, o.uses
		a.Severity = labels["severity"]
		a.Annotations = m.annotations(r, labels, o)
		switch a.State {
		case StatePending:
			switch {
			case o.active && !now.Before(a.ActiveAt.Add(r.For)):
				a.State, a.StartsAt = StateFiring, a.ActiveAt
				m.persist(ctx, a, "fired", now)
				continue
			case !o.active && !o.hold:
				m.forget(ctx, a)
				continue
			}
		case StateFiring:
			if !o.active && !o.hold {
				m.resolve(ctx, a, now)
				continue
			}
		}
		if dirty {
			m.persist(ctx, a, "", now)
		}
	}
	for fp, a := range m.active {
		if a.Rule == r.Name && a.Site == s.ID && !seen[fp] {
			// The rule no longer sees what raised the alert (the plan period ended, the meter
			// left the model): the condition is over.
			if a.State == StatePending {
				m.forget(ctx, a)
			} else {
				m.resolve(ctx, a, now)
			}
		}
	}
}

func (m *Manager) resolve(ctx context.Context, a *record, now time.Time) {
	a.State = StateResolved
	a.EndsAt = now
	if a.EndsAt.Before(a.StartsAt) {
		a.EndsAt = a.StartsAt
	}
	m.persist(ctx, a, "resolved", now)
	delete(m.active, a.Fingerprint)
	m.resolvedUnsent = append(m.resolvedUnsent, a)
}

func (m *Manager) forget(ctx context.Context, a *record) {
	if a.ID != 0 {
		if err := m.db.drop(ctx, a.ID); err != nil {
			m.o.Logger.Error("alert state not written; fix the state database", "err", err)
		}
	}
	delete(m.active, a.Fingerprint)
}

// persist stores a record (pending ones too, so a restart keeps their for: clock) and records an
// event when one is given.
func (m *Manager) persist(ctx context.Context, a *record, event string, at time.Time) {
	if err := m.db.save(ctx, a); err != nil {
		m.o.Logger.Error("alert state not written; fix the state database", "err", err, "site", a.Site)
		return
	}
	if event != "" {
		if err := m.db.event(ctx, a.ID, at, event, "", ""); err != nil {
			m.o.Logger.Error("alert event not written", "err", err)
		}
	}
}

// labels are an alert's identity: alertname, site, severity, the rule's labels, family and what
// the observation names (meter, edge, plan, node, level...).
func (m *Manager) labels(s *analytics.Site, r *Rule, o observation) map[string]string {
	l := map[string]string{}
	maps.Copy(l, r.Labels)
	maps.Copy(l, o.labels)
	l["alertname"] = r.Name
	l["site"] = s.ID
	l["family"] = kinds[r.Kind].family
	l["severity"] = r.Severity
	if o.severity != "" {
		l["severity"] = o.severity
	}
	return l
}

func (m *Manager) annotations(r *Rule, labels map[string]string, o observation) map[string]string {
	vars := map[string]string{}
	maps.Copy(vars, labels)
	maps.Copy(vars, o.vars)
	if _, ok := vars["value"]; !ok {
		vars["value"] = strconv.FormatFloat(o.value, 'f', -1, 64)
	}
	a := map[string]string{
		"summary":     expand(r.Summary, vars),
		"summary_zh":  expand(r.SummaryZH, vars),
		"description": o.description,
		"runbook":     r.Runbook.EN,
		"runbook_zh":  r.Runbook.ZH,
	}
	if a["summary"] == "" {
		a["summary"] = fmt.Sprintf("%s at %s: %s", r.Name, labels["site"], o.description)
	}
	if a["summary_zh"] == "" {
		a["summary_zh"] = a["summary"]
	}
	if r.Runbook.URL != "" {
		a["runbook_url"] = r.Runbook.URL
	}
	return a
}

// expand replaces {{name}} with vars[name].
func expand(tpl string, vars map[string]string) string {
	if !strings.Contains(tpl, "{{") {
		return tpl
	}
	var b strings.Builder
	for {
		i := strings.Index(tpl, "{{")
		if i < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		j := strings.Index(tpl[i:], "}}")
		if j < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		b.WriteString(tpl[:i])
		b.WriteString(vars[strings.TrimSpace(tpl[i+2:i+j])])
		tpl = tpl[i+j+2:]
	}
}

// inhibitors indexes the firing alerts that explain others: offline edges, and the meters of
// meter-health alerts (meter_fault separately, as it inhibits only leak alerts that are not
// meter faults themselves). Built once per pass, so muting n alerts costs O(n), not O(n²).
type inhibitors struct {
	edges  map[string]bool // site/edge offline
	meters map[string]bool // site/meter with a firing meter-health alert
	faults map[string]bool // site/meter used by a firing meter_fault alert
}

// inhibitors builds the index; m.mu is held.
func (m *Manager) inhibitors() inhibitors {
	in := inhibitors{edges: map[string]bool{}, meters: map[string]bool{}, faults: map[string]bool{}}
	for _, a := range m.active {
		if a.State != StateFiring {
			continue
		}
		switch {
		case a.Kind == KindEdgeOffline:
			in.edges[a.Site+"/"+a.Labels["edge"]] = true
		case a.Kind == KindMeterFault:
			for _, u := range a.Uses {
				in.faults[a.Site+"/"+u] = true
			}
		case kinds[a.Kind].family == "meter_health":
			for _, u := range a.Uses {
				in.meters[a.Site+"/"+u] = true
			}
		}
	}
	return in
}

// muted reports whether a silence mutes the alert, and inhibited whether a root cause explains
// it: an offline edge its meters' stale alerts, a meter-health alert the leak alerts computed
// from that meter. m.mu is held.
func (m *Manager) muted(a *record, now time.Time, in inhibitors) (silenced []string, inhibited bool) {
	for _, s := range m.silences {
		if s.Mutes(a.Labels, now) {
			silenced = append(silenced, s.ID)
		}
	}
	if a.Kind == KindStale && a.Labels["edge"] != "" && in.edges[a.Site+"/"+a.Labels["edge"]] {
		return silenced, true
	}
	if kinds[a.Kind].family == "leak" {
		for _, u := range a.Uses {
			if in.meters[a.Site+"/"+u] || in.faults[a.Site+"/"+u] {
				return silenced, true
			}
		}
	}
	return silenced, false
}

// outgoing is one alert to hand to Notify and the record to mark as sent.
type outgoing struct {
	alert Alert
	rec   *record
	state string
}

// due collects what Notify should receive now: alerts whose state changed since last sent, and
// (when resend) firing alerts last sent more than Resend ago. Silenced and inhibited alerts are
// held back; an alert that resolves while never sent is not announced. m.mu is held.
func (m *Manager) due(now time.Time, resend bool) []outgoing {
	var out []outgoing
	in := m.inhibitors()
	consider := func(a *record) {
		if a.State == StatePending {
			return
		}
		sil, inh := m.muted(a, now, in)
		if a.State == StateFiring && (len(sil) > 0 || inh) {
			return
		}
		switch {
		case a.State == StateResolved && a.SentState == StateFiring:
		case a.State == StateFiring && a.SentState != StateFiring:
		case a.State == StateFiring && resend && now.Sub(a.SentAt) >= m.o.Resend:
		default:
			return
		}
		out = append(out, outgoing{alert: m.toAlert(a), rec: a, state: a.State})
	}
	for _, a := range m.active {
		consider(a)
	}
	for _, a := range m.resolvedUnsent {
		consider(a)
	}
	m.resolvedUnsent = nil
	slices.SortFunc(out, func(x, y outgoing) int { return int(x.rec.ID - y.rec.ID) })
	return out
}

func (m *Manager) toAlert(a *record) Alert {
	out := Alert{Fingerprint: a.Fingerprint, Status: StateFiring, Labels: maps.Clone(a.Labels),
		Annotations: maps.Clone(a.Annotations), StartsAt: a.StartsAt}
	if a.State == StateResolved {
		out.Status, out.EndsAt = StateResolved, a.EndsAt
	}
	if m.o.GeneratorURL != "" {
		out.GeneratorURL = strings.TrimRight(m.o.GeneratorURL, "/") + "/alerts/" + strconv.FormatInt(a.ID, 10)
	}
	return out
}

// send hands alerts to Notify (outside the lock: a notifier may take its time) and records them
// as sent, so a restart does not announce them again.
func (m *Manager) send(ctx context.Context, out []outgoing, now time.Time) {
	if len(out) == 0 {
		return
	}
	if m.o.Notify != nil {
		alerts := make([]Alert, len(out))
		for i, o := range out {
			alerts[i] = o.alert
		}
		m.o.Notify(ctx, alerts)
		m.o.Metrics.notified.Add(float64(len(alerts)))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range out {
		o.rec.SentState, o.rec.SentAt = o.state, now
		if err := m.db.save(ctx, o.rec); err != nil {
			m.o.Logger.Error("alert state not written; fix the state database", "err", err)
		}
	}
}
