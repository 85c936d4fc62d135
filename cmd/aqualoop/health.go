package main

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// Readiness limits: beyond them /readyz answers 503. Ingest lag is the age of the oldest message
// received and not yet stored and acknowledged; evaluator lag is how long new buckets have been
// waiting for an evaluation. Both are seconds in normal operation.
const (
	maxIngestLag    = 2 * time.Minute
	maxEvaluatorLag = 5 * time.Minute
)

// health watches the platform's moving parts for /healthz, /readyz and the metrics: the broker
// connection (ingest's state), store writes (through a wrapper around the store ingest writes
// to), ingest lag and evaluator lag (through the buckets handed to the evaluator and the
// snapshots it publishes).
type health struct {
	now    func() time.Time
	in     interface{ State() ingest.State }
	broker bool // ingest runs against a broker (always, in serve)

	mu           sync.Mutex
	storeLast    time.Time // last write attempt
	storeOK      time.Time // last write that succeeded
	storeErr     string    // error of the last attempt, "" when it succeeded
	evalPending  time.Time // first bucket handed over since the last snapshot; zero when none waits
	evalFinished time.Time // last snapshot published
}

func newHealth(now func() time.Time) *health { return &health{now: now, broker: true} }

// healthStore is the store as ingest sees it, with each write's outcome noted.
type healthStore struct {
	ingest.Store
	h *health
}

func (s healthStore) WriteReadings(ctx context.Context, rs []collector.Reading) error {
	err := s.Store.WriteReadings(ctx, rs)
	s.h.wrote(err)
	return err
}

func (s healthStore) WriteBuckets(ctx context.Context, bs []ledger.Bucket) error {
	err := s.Store.WriteBuckets(ctx, bs)
	s.h.wrote(err)
	return err
}

func (h *health) wrote(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.storeLast = h.now()
	if err != nil {
		h.storeErr = err.Error()
		return
	}
	h.storeErr, h.storeOK = "", h.storeLast
}

// onBuckets wraps ingest's OnBuckets: data now waits for the evaluator.
func (h *health) onBuckets(next func([]ledger.Bucket)) func([]ledger.Bucket) {
	return func(bs []ledger.Bucket) {
		if len(bs) > 0 {
			h.mu.Lock()
			if h.evalPending.IsZero() {
				h.evalPending = h.now()
			}
			h.mu.Unlock()
		}
		next(bs)
	}
}

// sink wraps the evaluator's Sink: a published snapshot means what waited was evaluated.
func (h *health) sink(next engine.Sink) engine.Sink {
	return func(ctx context.Context, s engine.Snapshot) {
		h.mu.Lock()
		h.evalFinished, h.evalPending = h.now(), time.Time{}
		h.mu.Unlock()
		if next != nil {
			next(ctx, s)
		}
	}
}

// figures are the current health figures.
type figures struct {
	connected       bool
	ingestLag       time.Duration
	storeFailing    bool
	storeAge        time.Duration // since the last successful write; -1 before the first
	evaluatorLag    time.Duration
	state           ingest.State
	storeErr        string
	lastEvalSeconds float64
}

func (h *health) figures() figures {
	now := h.now()
	var f figures
	if h.in != nil {
		f.state = h.in.State()
		f.connected = f.state.Connected
		if !f.state.OldestPending.IsZero() {
			f.ingestLag = max(now.Sub(f.state.OldestPending), 0)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f.storeFailing, f.storeErr = h.storeErr != "", h.storeErr
	f.storeAge = -1
	if !h.storeOK.IsZero() {
		f.storeAge = now.Sub(h.storeOK)
	}
	if !h.evalPending.IsZero() {
		f.evaluatorLag = max(now.Sub(h.evalPending), 0)
	}
	f.lastEvalSeconds = -1
	if !h.evalFinished.IsZero() {
		f.lastEvalSeconds = now.Sub(h.evalFinished).Seconds()
	}
	return f
}

// ready answers /readyz: every check, and whether all pass.
func (h *health) ready() (map[string]any, bool) {
	f := h.figures()
	ok := true
	check := func(pass bool) string {
		if pass {
			return "ok"
		}
		ok = false
		return "fail"
	}
	storeAge := any(nil)
	if f.storeAge >= 0 {
		storeAge = f.storeAge.Seconds()
	}
	state := map[string]any{
		"broker": map[string]any{"status": check(!h.broker || f.connected), "connected": f.connected, "since": f.state.Since, "last_error": f.state.LastError},
		"store":  map[string]any{"status": check(!f.storeFailing), "last_error": f.storeErr, "last_write_ok_age_seconds": storeAge},
		"ingest": map[string]any{"status": check(f.ingestLag <= maxIngestLag), "lag_seconds": f.ingestLag.Seconds(), "pending": f.state.Pending,
			"last_message": f.state.LastMessage, "limit_seconds": maxIngestLag.Seconds()},
		"evaluator": map[string]any{"status": check(f.evaluatorLag <= maxEvaluatorLag), "lag_seconds": f.evaluatorLag.Seconds(),
			"last_pass_age_seconds": f.lastEvalSeconds, "limit_seconds": maxEvaluatorLag.Seconds()},
	}
	return state, ok
}

// register exposes the same figures as Prometheus gauges.
func (h *health) register(reg prometheus.Registerer) {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aqualoop_ready", Help: "1 when /readyz answers 200."},
			func() float64 { _, ok := h.ready(); return b2f(ok) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aqualoop_broker_connected", Help: "1 while ingest holds a broker connection."},
			func() float64 { return b2f(h.figures().connected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aqualoop_store_write_ok", Help: "1 when the last store write succeeded (or none was tried yet)."},
			func() float64 { return b2f(!h.figures().storeFailing) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aqualoop_store_last_write_ok_age_seconds", Help: "Seconds since the last successful store write; -1 before the first."},
			func() float64 {
				if a := h.figures().storeAge; a >= 0 {
					return a.Seconds()
				}
				return -1
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aqualoop_ingest_pending_age_seconds", Help: "Age of the oldest message received and not yet stored and acknowledged."},
			func() float64 { return h.figures().ingestLag.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aqualoop_evaluator_lag_seconds", Help: "How long new buckets have waited for the evaluator; 0 when none waits."},
			func() float64 { return h.figures().evaluatorLag.Seconds() }),
	)
}
