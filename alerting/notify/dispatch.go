package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxHeldAlerts bounds the alerts the dispatcher holds, so a runaway rule cannot grow memory
// without bound.
const maxHeldAlerts = 100_000

// Options are the dispatcher's collaborators; zero values get working defaults.
type Options struct {
	Logger     *slog.Logger
	Metrics    *Metrics
	Now        func() time.Time
	HTTPClient *http.Client
	// Publish sends MQTT messages for mqtt_configs; required only when a receiver has one.
	Publish PublishFunc
}

// Dispatcher groups alerts and delivers them to receivers.
type Dispatcher struct {
	cfg       Config
	router    Router
	dedup     Dedup
	grouper   Grouper
	pipeline  Stage
	receivers map[string][]*integration
	nflog     *nflog
	logger    *slog.Logger
	metrics   *Metrics
	now       func() time.Time

	mu            sync.Mutex
	groups        map[string]*aggrGroup
	held          int // alerts in all groups
	droppedWarned bool
	runCtx        context.Context // set while Run runs
	wg            sync.WaitGroup
	started       atomic.Bool
}

// aggrGroup is the alerts of one route that share the route's group_by labels.
type aggrGroup struct {
	key       string
	route     *route
	labels    map[string]string
	alerts    map[string]*heldAlert
	firstWait time.Duration
	running   bool
}

type heldAlert struct {
	alert   Alert
	seen    time.Time // last Notify that carried it
	version uint64
}

// New builds a dispatcher from a validated config, creating its tables in db when missing.
func New(cfg Config, db *sql.DB, o Options) (*Dispatcher, error) {
	if db == nil {
		return nil, errors.New("notify: a state database is required for the notification log")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	// Default is idempotent; it makes a config built in code (tests, cmd) as safe as a loaded one.
	cfg.Default()
	root, err := compileRoute(&cfg.Route, nil, "{}")
	if err != nil {
		return nil, err
	}
	log, err := openNflog(context.Background(), db)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:       cfg,
		router:    Router{root: root},
		receivers: map[string][]*integration{},
		nflog:     log,
		logger:    o.Logger,
		metrics:   o.Metrics,
		now:       o.Now,
		groups:    map[string]*aggrGroup{},
	}
	d.grouper = Grouper{d: d}
	d.pipeline = MultiStage{
		NotifyDedup{log: log, logger: o.Logger},
		Send{
			initial: cfg.Global.Retry.InitialBackoff, max: cfg.Global.Retry.MaxBackoff,
			attempts: cfg.Global.Retry.MaxAttempts, now: o.Now, metrics: o.Metrics, ext: cfg.Global.ExternalURL,
		},
		Record{log: log, logger: o.Logger},
	}
	var maxInterval time.Duration
	var walk func(r *route)
	walk = func(r *route) {
		maxInterval = max(maxInterval, r.groupInterval)
		for _, c := range r.children {
			walk(c)
		}
	}
	walk(root)
	for i := range cfg.Receivers {
		ints, err := buildIntegrations(&cfg.Receivers[i], &cfg.Global, o, maxInterval)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", cfg.Receivers[i].Name, err)
		}
		d.receivers[cfg.Receivers[i].Name] = ints
	}
	var check func(r *route) error
	check = func(r *route) error {
		if _, ok := d.receivers[r.receiver]; !ok {
			return fmt.Errorf("route %s: unknown receiver %q", r.key, r.receiver)
		}
		for _, c := range r.children {
			if err := check(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := check(root); err != nil {
		return nil, err
	}
	return d, nil
}

// Notify hands the core's alerts to the dispatcher: new, changed, still firing (again each
// evaluation cycle) or resolved. It only updates memory and returns at once; it never waits for
// a receiver.
func (d *Dispatcher) Notify(ctx context.Context, alerts []Alert) {
	alerts = d.dedup.Exec(alerts)
	if len(alerts) == 0 {
		return
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range alerts {
		for _, r := range d.router.Match(a.Labels) {
			d.grouper.Add(r, a, now)
		}
	}
}

// Run delivers notifications until ctx ends, then waits for the groups' goroutines. In-flight
// sends are cancelled; what was not recorded as sent goes out after the next start.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("notify: Run called twice")
	}
	d.mu.Lock()
	d.runCtx = ctx
	for _, g := range d.groups {
		d.startGroup(g)
	}
	d.mu.Unlock()

	d.prune(ctx)
	t := time.NewTicker(time.Hour)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			d.prune(ctx)
		}
	}
	d.mu.Lock()
	d.runCtx = nil
	for _, g := range d.groups {
		g.running = false
	}
	d.mu.Unlock()
	d.wg.Wait()
	return nil
}

func (d *Dispatcher) prune(ctx context.Context) {
	if _, err := d.nflog.prune(ctx, d.now().Add(-d.cfg.Global.LogRetention)); err != nil && ctx.Err() == nil {
		d.logger.Warn("notification log not pruned, will try again in an hour", "err", err)
	}
}

// Log returns notification log entries, newest first.
func (d *Dispatcher) Log(ctx context.Context, f LogFilter) ([]LogEntry, error) {
	return d.nflog.query(ctx, f)
}

// startGroup starts g's goroutine if Run runs; the caller holds d.mu.
func (d *Dispatcher) startGroup(g *aggrGroup) {
	if d.runCtx == nil || g.running {
		return
	}
	g.running = true
	ctx := d.runCtx
	d.wg.Go(func() { d.runGroup(ctx, g) })
}

// runGroup is one group's timer: group_wait (or nothing for old alerts), then a flush every
// group_interval until the group has no alerts left.
func (d *Dispatcher) runGroup(ctx context.Context, g *aggrGroup) {
	t := time.NewTimer(g.firstWait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Reset before flushing, as Alertmanager does: a slow receiver does not stretch the
		// interval of the group.
		t.Reset(g.route.groupInterval)
		d.flush(ctx, g)
		d.mu.Lock()
		if len(g.alerts) == 0 {
			delete(d.groups, g.key)
			d.metrics.groups.Set(float64(len(d.groups)))
			g.running = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
	}
}

// flush sends g's alerts to every integration of its receiver, concurrently, and forgets the
// resolved alerts once every integration has them.
func (d *Dispatcher) flush(ctx context.Context, g *aggrGroup) {
	now := d.now()
	d.mu.Lock()
	alerts := make([]Alert, 0, len(g.alerts))
	versions := make(map[string]uint64, len(g.alerts))
	for fp, h := range g.alerts {
		if !h.alert.Resolved() && now.Sub(h.seen) > d.cfg.Global.ResolveTimeout {
			// The core stopped sending it: resolve it where it was last seen alive.
			h.alert.Status = StatusResolved
			h.alert.EndsAt = h.seen.Add(d.cfg.Global.ResolveTimeout)
			h.version++
		}
		alerts = append(alerts, h.alert)
		versions[fp] = h.version
	}
	labels := g.labels
	d.mu.Unlock()
	if len(alerts) == 0 {
		return
	}
	sortAlerts(alerts)

	fctx, cancel := context.WithTimeout(ctx, g.route.groupInterval)
	defer cancel()
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, in := range d.receivers[g.route.receiver] {
		wg.Go(func() {
			b := &Batch{
				integ: in, GroupKey: g.key, GroupLabels: labels, Alerts: alerts,
				RepeatInterval: g.route.repeatInterval, At: now,
			}
			if err := d.pipeline.Exec(fctx, b); err != nil && !errors.Is(err, errNothingNew) {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	if failed.Load() || ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for fp, v := range versions {
		h := g.alerts[fp]
		if h != nil && h.version == v && h.alert.Resolved() {
			delete(g.alerts, fp)
			d.held--
		}
	}
	if d.held < maxHeldAlerts {
		d.droppedWarned = false
	}
}
