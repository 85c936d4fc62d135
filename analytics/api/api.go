// Package api serves the platform's read side: the JSON API, the live status page and health.
// Analytics state is written by ingest and the engine, never through here; the one thing people
// write is production inputs (product, output value, steam), which no meter measures.
//
// Routes (times are RFC 3339; every answer is JSON, errors as {"error": "..."}):
//
//	GET  /api/v1/sites                              the sites, with their park and the clock
//	GET  /api/v1/sites/{site}/indicators            site boundary; ?from&to, or ?period=hour|day|month|year&at
//	GET  /api/v1/sites/{site}/units/{unit}/indicators  one unit node with its own flows
//	GET  /api/v1/sites/{site}/balance               the balance graph, imbalances, tiers, closure check
//	GET  /api/v1/sites/{site}/plans?at              every withdrawal plan's burn-down
//	GET  /api/v1/sites/{site}/snapshot              the evaluator's latest hour, day, month, year and plans
//	GET  /api/v1/sites/{site}/inputs?from&to        production inputs overlapping the period
//	PUT  /api/v1/sites/{site}/inputs                store production inputs (POST too)
//	GET  /api/v1/sites/{site}/meters                each meter's latest reading
//	GET  /api/v1/parks                              the parks and their sites
//	GET  /api/v1/parks/{park}/indicators            park boundary: the sum over its sites
//	GET  /api/v1/parks/{park}/snapshot              the evaluator's latest park figures
//
// Without from and to a period is today so far in the site's time zone; with period, the
// calendar period containing at (default now), up to now if it has not ended.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/collector"
)

// Engine is the part of the engine the API reads.
type Engine interface {
	Indicators(ctx context.Context, site string, from, to time.Time) (engine.Indicators, error)
	UnitIndicators(ctx context.Context, site, unit string, from, to time.Time) (engine.Indicators, error)
	ParkIndicators(ctx context.Context, park string, from, to time.Time) (engine.Indicators, error)
	Balance(ctx context.Context, site string, from, to time.Time) (engine.Balance, error)
	Plans(ctx context.Context, site string, at time.Time) ([]engine.PlanStatus, error)
}

var _ Engine = (*engine.Engine)(nil)

// Snapshots are the evaluator's latest figures.
type Snapshots interface {
	Snapshot(id string) (engine.Snapshot, bool)
}

var _ Snapshots = (*engine.Evaluator)(nil)

// Inputs keeps production inputs.
type Inputs interface {
	WriteInputs(ctx context.Context, ins []engine.Input) error
	Inputs(ctx context.Context, site string, from, to time.Time) ([]engine.Input, error)
}

// Readings is the part of the store the API reads.
type Readings interface {
	LastReading(ctx context.Context, site, meter string, t time.Time) (collector.Reading, bool, error)
}

// Options are the API's dependencies.
type Options struct {
	Sites     []*analytics.Site
	Engine    Engine
	Snapshots Snapshots // nil: /snapshot answers 404
	Inputs    Inputs
	Readings  Readings
	Logger    *slog.Logger
	// Now is the clock that "now" and default periods use; the demo passes the simulator's.
	Now func() time.Time
	// Health returns the components' states for /healthz; ok false answers 503.
	Health func() (state map[string]any, ok bool)
}

//go:embed status.html
var statusPage []byte

// maxBody bounds a request body: a year of daily inputs for one site is far below it.
const maxBody = 1 << 20

// Handler returns the API's routes.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{o: o, parks: analytics.Parks(o.Sites)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(statusPage)
	})
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /api/v1/sites", h.sites)
	mux.HandleFunc("GET /api/v1/sites/{site}/indicators", h.siteRoute(h.indicators))
	mux.HandleFunc("GET /api/v1/sites/{site}/units/{unit}/indicators", h.siteRoute(h.unitIndicators))
	mux.HandleFunc("GET /api/v1/sites/{site}/balance", h.siteRoute(h.balance))
	mux.HandleFunc("GET /api/v1/sites/{site}/plans", h.siteRoute(h.plans))
	mux.HandleFunc("GET /api/v1/sites/{site}/snapshot", h.siteRoute(h.snapshot))
	mux.HandleFunc("GET /api/v1/sites/{site}/inputs", h.siteRoute(h.listInputs))
	mux.HandleFunc("PUT /api/v1/sites/{site}/inputs", h.siteRoute(h.putInputs))
	mux.HandleFunc("POST /api/v1/sites/{site}/inputs", h.siteRoute(h.putInputs))
	mux.HandleFunc("GET /api/v1/sites/{site}/meters", h.siteRoute(h.meters))
	mux.HandleFunc("GET /api/v1/sites/{site}/conflicts", h.siteRoute(h.conflicts)) // conflicts.go
	mux.HandleFunc("GET /api/v1/parks", h.listParks)
	mux.HandleFunc("GET /api/v1/parks/{park}/indicators", h.parkIndicators)
	mux.HandleFunc("GET /api/v1/parks/{park}/snapshot", h.parkSnapshot)
	return mux
}

type handler struct {
	o     Options
	parks map[string][]*analytics.Site
}

func (h *handler) site(id string) *analytics.Site {
	i := slices.IndexFunc(h.o.Sites, func(s *analytics.Site) bool { return s.ID == id })
	if i < 0 {
		return nil
	}
	return h.o.Sites[i]
}

// siteRoute resolves {site} or answers 404.
func (h *handler) siteRoute(fn func(w http.ResponseWriter, r *http.Request, s *analytics.Site)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := h.site(r.PathValue("site"))
		if s == nil {
			writeError(w, http.StatusNotFound, "unknown site "+r.PathValue("site"))
			return
		}
		fn(w, r, s)
	}
}

type siteSummary struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Park   string `json:"park,omitempty"`
	Meters int    `json:"meters"`
	Flows  int    `json:"flows"`
	Plans  int    `json:"plans"`
	Now    string `json:"now"`
}

func (h *handler) sites(w http.ResponseWriter, _ *http.Request) {
	out := make([]siteSummary, 0, len(h.o.Sites))
	for _, s := range h.o.Sites {
		out = append(out, siteSummary{ID: s.ID, Name: s.Name, Park: s.Park, Meters: len(s.Meters), Flows: len(s.Flows), Plans: len(s.Plans),
			Now: h.o.Now().In(s.Location()).Format(time.RFC3339)})
	}
	writeJSON(w, http.StatusOK, out)
}

// period reads the period of a request in loc: from and to, or period and at, or today so far.
func (h *handler) period(r *http.Request, loc *time.Location) (from, to time.Time, err error) {
	q := r.URL.Query()
	now := h.o.Now()
	if p := q.Get("period"); p != "" {
		if q.Has("from") || q.Has("to") {
			return from, to, errors.New("give either period (and at) or from and to, not both")
		}
		per, err := engine.ParsePeriod(p)
		if err != nil {
			return from, to, err
		}
		at := now
		if v := q.Get("at"); v != "" {
			if at, err = engine.ParseTime(v, loc); err != nil {
				return from, to, fmt.Errorf("at: %w", err)
			}
		}
		from, to = per.Span(at, loc)
		if now.Before(to) && now.After(from) {
			to = now
		}
		return from, to, nil
	}
	to = now
	y, m, d := now.In(loc).Date()
	from = time.Date(y, m, d, 0, 0, 0, 0, loc)
	if v := q.Get("from"); v != "" {
		if from, err = engine.ParseTime(v, loc); err != nil {
			return from, to, fmt.Errorf("from: %w", err)
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = engine.ParseTime(v, loc); err != nil {
			return from, to, fmt.Errorf("to: %w", err)
		}
	}
	if !to.After(from) {
		return from, to, errors.New("to must be after from")
	}
	return from, to, nil
}

// answer writes v, or the error: 404 for what does not exist, 500 for the rest.
func (h *handler) answer(w http.ResponseWriter, what string, v any, err error) {
	switch {
	case errors.Is(err, engine.ErrUnknownSite), errors.Is(err, engine.ErrUnknownUnit), errors.Is(err, engine.ErrUnknownPark):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		h.o.Logger.Error(what+" failed; answered 500", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func (h *handler) indicators(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	from, to, err := h.period(r, s.Location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ind, err := h.o.Engine.Indicators(r.Context(), s.ID, from, to)
	h.answer(w, "indicators", ind, err)
}

func (h *handler) unitIndicators(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	from, to, err := h.period(r, s.Location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ind, err := h.o.Engine.UnitIndicators(r.Context(), s.ID, r.PathValue("unit"), from, to)
	h.answer(w, "unit indicators", ind, err)
}

func (h *handler) balance(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	from, to, err := h.period(r, s.Location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, err := h.o.Engine.Balance(r.Context(), s.ID, from, to)
	h.answer(w, "balance", b, err)
}

func (h *handler) plans(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	at := h.o.Now()
	if v := r.URL.Query().Get("at"); v != "" {
		var err error
		if at, err = engine.ParseTime(v, s.Location()); err != nil {
			writeError(w, http.StatusBadRequest, "at: "+err.Error())
			return
		}
	}
	ps, err := h.o.Engine.Plans(r.Context(), s.ID, at)
	h.answer(w, "plans", ps, err)
}

func (h *handler) snapshot(w http.ResponseWriter, _ *http.Request, s *analytics.Site) {
	h.writeSnapshot(w, s.ID)
}

func (h *handler) writeSnapshot(w http.ResponseWriter, id string) {
	if h.o.Snapshots == nil {
		writeError(w, http.StatusNotFound, "no evaluator runs in this process")
		return
	}
	snap, ok := h.o.Snapshots.Snapshot(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no snapshot of "+id+" yet: the evaluator has not finished its first pass")
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

type parkSummary struct {
	ID    string   `json:"id"`
	Sites []string `json:"sites"`
}

func (h *handler) listParks(w http.ResponseWriter, _ *http.Request) {
	out := []parkSummary{}
	for _, id := range slices.Sorted(maps.Keys(h.parks)) {
		ps := parkSummary{ID: id}
		for _, s := range h.parks[id] {
			ps.Sites = append(ps.Sites, s.ID)
		}
		out = append(out, ps)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) parkIndicators(w http.ResponseWriter, r *http.Request) {
	sites, ok := h.parks[r.PathValue("park")]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown park "+r.PathValue("park"))
		return
	}
	from, to, err := h.period(r, sites[0].Location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ind, err := h.o.Engine.ParkIndicators(r.Context(), r.PathValue("park"), from, to)
	h.answer(w, "park indicators", ind, err)
}

func (h *handler) parkSnapshot(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.parks[r.PathValue("park")]; !ok {
		writeError(w, http.StatusNotFound, "unknown park "+r.PathValue("park"))
		return
	}
	h.writeSnapshot(w, r.PathValue("park"))
}

// inputJSON is a production input as the API takes it: times as ParseTime reads them, in the
// site's time zone unless they carry an offset.
type inputJSON struct {
	From        string   `json:"from"`
	To          string   `json:"to"`
	Product     *float64 `json:"product"`
	ProductUnit string   `json:"product_unit"`
	OutputValue *float64 `json:"output_value"`
	Steam       *float64 `json:"steam"`
}

// putInputs stores one input (a JSON object) or several (an array), all or none. An input with
// the start of a stored one replaces it; one that overlaps a stored input starting elsewhere is
// refused with 409, since both would count the overlap.
func (h *handler) putInputs(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	if h.o.Inputs == nil {
		writeError(w, http.StatusNotImplemented, "this platform keeps no production inputs")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "read body: "+err.Error())
		return
	}
	var raw []inputJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		var one inputJSON
		if err1 := json.Unmarshal(body, &one); err1 != nil {
			writeError(w, http.StatusBadRequest, "body is neither an input nor a list of inputs: "+err1.Error())
			return
		}
		raw = []inputJSON{one}
	}
	if len(raw) == 0 {
		writeError(w, http.StatusBadRequest, "no input given")
		return
	}
	ins := make([]engine.Input, 0, len(raw))
	for i, in := range raw {
		e := engine.Input{Site: s.ID, Product: in.Product, ProductUnit: in.ProductUnit, OutputValue: in.OutputValue, Steam: in.Steam}
		if e.From, err = engine.ParseTime(in.From, s.Location()); err == nil {
			e.To, err = engine.ParseTime(in.To, s.Location())
		}
		if err == nil {
			err = e.Check()
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("input %d: %v", i, err))
			return
		}
		for _, prev := range ins[:i] {
			if prev.From.Before(e.To) && e.From.Before(prev.To) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("input %d overlaps input from %s of the same request", i, prev.From.Format(time.RFC3339)))
				return
			}
		}
		ins = append(ins, e)
	}
	for i, in := range ins {
		stored, err := h.o.Inputs.Inputs(r.Context(), s.ID, in.From, in.To)
		if err != nil {
			h.answer(w, "read inputs", nil, err)
			return
		}
		if other, ok := engine.Overlapping(stored, in); ok {
			writeError(w, http.StatusConflict, fmt.Sprintf("input %d [%s, %s) %v [%s, %s); write it with that start to replace it, or split the period",
				i, in.From.Format(time.RFC3339), in.To.Format(time.RFC3339), engine.ErrOverlap, other.From.Format(time.RFC3339), other.To.Format(time.RFC3339)))
			return
		}
	}
	if err := h.o.Inputs.WriteInputs(r.Context(), ins); err != nil {
		h.answer(w, "write inputs", nil, err)
		return
	}
	h.o.Logger.Info("production inputs stored", "site", s.ID, "count", len(ins))
	writeJSON(w, http.StatusOK, ins)
}

func (h *handler) listInputs(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	if h.o.Inputs == nil {
		writeError(w, http.StatusNotImplemented, "this platform keeps no production inputs")
		return
	}
	from, to, err := h.period(r, s.Location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ins, err := h.o.Inputs.Inputs(r.Context(), s.ID, from, to)
	if ins == nil {
		ins = []engine.Input{}
	}
	h.answer(w, "inputs", ins, err)
}

type meterState struct {
	ID      string           `json:"id"`
	Name    string           `json:"name,omitempty"`
	Level   int              `json:"level"`
	Flow    string           `json:"flow,omitempty"`
	Kind    string           `json:"kind,omitempty"`
	Time    *time.Time       `json:"time,omitempty"`
	Seq     uint64           `json:"seq,omitempty"`
	Points  map[string]point `json:"points,omitempty"`
	Missing bool             `json:"missing,omitempty"`
}

type point struct {
	Value   *float64 `json:"value,omitempty"`
	Unit    string   `json:"unit,omitempty"`
	Quality string   `json:"quality"`
	Error   string   `json:"error,omitempty"`
}

func (h *handler) meters(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	now := h.o.Now()
	out := make([]meterState, 0, len(s.Meters))
	for _, m := range s.Meters {
		ms := meterState{ID: m.ID, Name: m.Name, Level: m.Level}
		if f, ok := s.FlowOfMeter(m.ID); ok {
			ms.Flow, ms.Kind = f.ID, string(f.Kind)
		}
		rd, ok, err := h.o.Readings.LastReading(r.Context(), s.ID, m.ID, now)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if !ok {
			ms.Missing = true
			out = append(out, ms)
			continue
		}
		t := rd.Time
		ms.Time, ms.Seq, ms.Points = &t, rd.Seq, map[string]point{}
		for _, p := range rd.Points {
			pt := point{Unit: p.Unit, Quality: p.Quality.String(), Error: p.Error}
			if p.Quality != collector.Bad {
				v := p.Value
				pt.Value = &v
			}
			ms.Points[p.Name] = pt
		}
		out = append(out, ms)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) health(w http.ResponseWriter, _ *http.Request) {
	state, ok := map[string]any{}, true
	if h.o.Health != nil {
		state, ok = h.o.Health()
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ok": ok, "components": state})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
