// Package api serves the platform's read side: the JSON API, the live status page and health.
// Analytics state is written by ingest and the engine, never through here; the one thing people
// write is production inputs (product, output value, steam), which no meter measures.
//
// Routes (docs/api.md describes each with its fields; times are RFC 3339, in UTC with the
// same instants in the site's zone beside them; every answer is JSON; errors are
// {"error": {"code": "...", "message": "...", "field": "..."}}, see package problem):
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
//	GET  /healthz                                   liveness: the process serves HTTP
//	GET  /readyz                                    readiness: broker, store, ingest and evaluator lag; 503 when not ready
//
// Who may call what is decided in front of this handler by package auth; the lists of sites
// and parks are filtered here by the caller's scope (auth.SiteAllowed).
//
// Without from and to a period is today so far in the site's time zone; with period, the
// calendar period containing at (default now), up to now if it has not ended.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
	"github.com/aqualoop/aqualoop/analytics/api/problem"
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
	// Ready returns the components' states for /readyz; ok false answers 503. Nil: /readyz
	// answers as /healthz.
	Ready func() (state map[string]any, ok bool)
}

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
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /readyz", h.ready)
	// Every other /api/ path answers a JSON 404, not the mux's plain-text one.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, http.StatusNotFound, problem.NotFound, "", "no route "+r.Method+" "+r.URL.Path+"; the routes are listed in docs/api.md")
	})
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
	h.routeConsole(mux)
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
			problem.Write(w, http.StatusNotFound, problem.UnknownSite, "site", "unknown site "+strconvQuote(r.PathValue("site")))
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
	// TimeZone is the zone of Now and of the site's days and months.
	TimeZone string `json:"time_zone"`
}

func (h *handler) sites(w http.ResponseWriter, r *http.Request) {
	out := make([]siteSummary, 0, len(h.o.Sites))
	for _, s := range h.o.Sites {
		if !auth.SiteAllowed(r.Context(), s.ID) {
			continue
		}
		out = append(out, siteSummary{ID: s.ID, Name: s.Name, Park: s.Park, Meters: len(s.Meters), Flows: len(s.Flows), Plans: len(s.Plans),
			Now: h.o.Now().In(s.Location()).Format(time.RFC3339), TimeZone: zoneName(s.Location())})
	}
	writeJSON(w, http.StatusOK, out)
}

// Times the API accepts lie in [minTime, maxTime): wide enough for any evidence, narrow
// enough that no store or calendar arithmetic overflows.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fieldError is a client's mistake in one named field.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

// parseTime reads a time of field, in loc unless it carries an offset, within the accepted range.
func parseTime(field, v string, loc *time.Location) (time.Time, *fieldError) {
	t, err := engine.ParseTime(v, loc)
	if err != nil {
		return t, &fieldError{field, err.Error()}
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return t, &fieldError{field, fmt.Sprintf("%s is outside the accepted range %d..%d", t.Format(time.RFC3339), minTime.Year(), maxTime.Year()-1)}
	}
	return t, nil
}

// period reads the period of a request in loc: from and to, or period and at, or today so far.
func (h *handler) period(r *http.Request, loc *time.Location) (from, to time.Time, fe *fieldError) {
	q := r.URL.Query()
	now := h.o.Now()
	if p := q.Get("period"); p != "" {
		if q.Has("from") || q.Has("to") {
			return from, to, &fieldError{"period", "give either period (and at) or from and to, not both"}
		}
		per, err := engine.ParsePeriod(p)
		if err != nil {
			return from, to, &fieldError{"period", err.Error()}
		}
		at := now
		if v := q.Get("at"); v != "" {
			if at, fe = parseTime("at", v, loc); fe != nil {
				return from, to, fe
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
		if from, fe = parseTime("from", v, loc); fe != nil {
			return from, to, fe
		}
	}
	if v := q.Get("to"); v != "" {
		if to, fe = parseTime("to", v, loc); fe != nil {
			return from, to, fe
		}
	}
	if !to.After(from) {
		return from, to, &fieldError{"to", "to must be after from"}
	}
	return from, to, nil
}

// badParam answers a client's mistake in a query parameter.
func badParam(w http.ResponseWriter, fe *fieldError) {
	problem.Write(w, http.StatusBadRequest, problem.InvalidParameter, fe.field, fe.Error())
}

// answer writes v, or the error: 404 for what does not exist, 500 for the rest.
func (h *handler) answer(w http.ResponseWriter, what string, v any, err error) {
	switch {
	case errors.Is(err, engine.ErrUnknownSite):
		problem.Write(w, http.StatusNotFound, problem.UnknownSite, "site", err.Error())
	case errors.Is(err, engine.ErrUnknownUnit):
		problem.Write(w, http.StatusNotFound, problem.UnknownUnit, "unit", err.Error())
	case errors.Is(err, engine.ErrUnknownPark):
		problem.Write(w, http.StatusNotFound, problem.UnknownPark, "park", err.Error())
	case err != nil:
		h.o.Logger.Error(what+" failed; answered 500", "err", err)
		problem.Write(w, http.StatusInternalServerError, problem.Internal, "", what+" failed on the server; its log has the details")
	default:
		h.writeJSON(w, what, v)
	}
}

func (h *handler) indicators(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	from, to, fe := h.period(r, s.Location())
	if fe != nil {
		badParam(w, fe)
		return
	}
	ind, err := h.o.Engine.Indicators(r.Context(), s.ID, from, to)
	h.answer(w, "indicators", indicatorsOf(ind, s.Location()), err)
}

func (h *handler) unitIndicators(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	from, to, fe := h.period(r, s.Location())
	if fe != nil {
		badParam(w, fe)
		return
	}
	ind, err := h.o.Engine.UnitIndicators(r.Context(), s.ID, r.PathValue("unit"), from, to)
	h.answer(w, "unit indicators", indicatorsOf(ind, s.Location()), err)
}

func (h *handler) balance(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	from, to, fe := h.period(r, s.Location())
	if fe != nil {
		badParam(w, fe)
		return
	}
	b, err := h.o.Engine.Balance(r.Context(), s.ID, from, to)
	h.answer(w, "balance", balanceOf(b, s.Location()), err)
}

func (h *handler) plans(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	at := h.o.Now()
	if v := r.URL.Query().Get("at"); v != "" {
		var fe *fieldError
		if at, fe = parseTime("at", v, s.Location()); fe != nil {
			badParam(w, fe)
			return
		}
	}
	ps, err := h.o.Engine.Plans(r.Context(), s.ID, at)
	h.answer(w, "plans", plansOf(ps, s.Location()), err)
}

func (h *handler) snapshot(w http.ResponseWriter, _ *http.Request, s *analytics.Site) {
	h.writeSnapshot(w, s.ID, s.Location())
}

// writeSnapshot answers the snapshot of a site or park, its periods also given in loc.
func (h *handler) writeSnapshot(w http.ResponseWriter, id string, loc *time.Location) {
	if h.o.Snapshots == nil {
		problem.Write(w, http.StatusNotFound, problem.NoSnapshot, "", "no evaluator runs in this process")
		return
	}
	snap, ok := h.o.Snapshots.Snapshot(id)
	if !ok {
		problem.Write(w, http.StatusNotFound, problem.NoSnapshot, "", "no snapshot of "+id+" yet: the evaluator has not finished its first pass")
		return
	}
	h.writeJSON(w, "snapshot", snapshotOf(snap, loc))
}

type parkSummary struct {
	ID    string   `json:"id"`
	Sites []string `json:"sites"`
}

func (h *handler) listParks(w http.ResponseWriter, r *http.Request) {
	out := []parkSummary{}
	for _, id := range slices.Sorted(maps.Keys(h.parks)) {
		// A caller sees a park whose every site is in scope, and no other.
		ps := parkSummary{ID: id}
		for _, s := range h.parks[id] {
			ps.Sites = append(ps.Sites, s.ID)
		}
		if !auth.SitesAllowed(r.Context(), ps.Sites) {
			continue
		}
		out = append(out, ps)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) parkIndicators(w http.ResponseWriter, r *http.Request) {
	sites, ok := h.parks[r.PathValue("park")]
	if !ok {
		problem.Write(w, http.StatusNotFound, problem.UnknownPark, "park", "unknown park "+strconvQuote(r.PathValue("park")))
		return
	}
	from, to, fe := h.period(r, sites[0].Location())
	if fe != nil {
		badParam(w, fe)
		return
	}
	ind, err := h.o.Engine.ParkIndicators(r.Context(), r.PathValue("park"), from, to)
	h.answer(w, "park indicators", indicatorsOf(ind, sites[0].Location()), err)
}

func (h *handler) parkSnapshot(w http.ResponseWriter, r *http.Request) {
	sites, ok := h.parks[r.PathValue("park")]
	if !ok {
		problem.Write(w, http.StatusNotFound, problem.UnknownPark, "park", "unknown park "+strconvQuote(r.PathValue("park")))
		return
	}
	h.writeSnapshot(w, r.PathValue("park"), sites[0].Location())
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
		problem.Write(w, http.StatusNotImplemented, problem.NotImplemented, "", "this platform keeps no production inputs")
		return
	}
	ins, fe, status := readInputs(w, r, s)
	if fe != nil {
		code := problem.InvalidField
		if fe.field == "" {
			code = problem.InvalidBody
		}
		if status == http.StatusRequestEntityTooLarge {
			code = problem.BodyTooLarge
		}
		problem.Write(w, status, code, fe.field, fe.Error())
		return
	}
	for i, in := range ins {
		stored, err := h.o.Inputs.Inputs(r.Context(), s.ID, in.From, in.To)
		if err != nil {
			h.answer(w, "read inputs", nil, err)
			return
		}
		if other, ok := engine.Overlapping(stored, in); ok {
			problem.Write(w, http.StatusConflict, problem.Conflict, fmt.Sprintf("[%d].from", i), fmt.Sprintf("input %d [%s, %s) %v [%s, %s); write it with that start to replace it, or split the period",
				i, in.From.Format(time.RFC3339), in.To.Format(time.RFC3339), engine.ErrOverlap, other.From.Format(time.RFC3339), other.To.Format(time.RFC3339)))
			return
		}
	}
	if err := h.o.Inputs.WriteInputs(r.Context(), ins); err != nil {
		h.answer(w, "write inputs", nil, err)
		return
	}
	h.o.Logger.Info("production inputs stored", "site", s.ID, "count", len(ins))
	h.writeJSON(w, "inputs", inputsOf(ins, s.Location()))
}

func (h *handler) listInputs(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	if h.o.Inputs == nil {
		problem.Write(w, http.StatusNotImplemented, problem.NotImplemented, "", "this platform keeps no production inputs")
		return
	}
	from, to, fe := h.period(r, s.Location())
	if fe != nil {
		badParam(w, fe)
		return
	}
	ins, err := h.o.Inputs.Inputs(r.Context(), s.ID, from, to)
	if ins == nil {
		ins = []engine.Input{}
	}
	h.answer(w, "inputs", inputsOf(ins, s.Location()), err)
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

	// TimeLocal is Time in the site's zone.
	TimeLocal string `json:"time_local,omitempty"`
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
			h.answer(w, "latest readings", nil, err)
			return
		}
		if !ok {
			ms.Missing = true
			out = append(out, ms)
			continue
		}
		t := rd.Time
		ms.Time, ms.TimeLocal, ms.Seq, ms.Points = &t, local(t, s.Location()), rd.Seq, map[string]point{}
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
	h.writeJSON(w, "meters", out)
}

func (h *handler) health(w http.ResponseWriter, _ *http.Request) {
	h.components(w, h.o.Health)
}

func (h *handler) ready(w http.ResponseWriter, _ *http.Request) {
	if h.o.Ready == nil {
		h.components(w, h.o.Health)
		return
	}
	h.components(w, h.o.Ready)
}

func (h *handler) components(w http.ResponseWriter, fn func() (map[string]any, bool)) {
	state, ok := map[string]any{}, true
	if fn != nil {
		state, ok = fn()
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	h.writeJSON(w, "health", map[string]any{"ok": ok, "components": state}, status)
}

// writeJSON answers v (status 200 unless given), encoded before anything is written.
func (h *handler) writeJSON(w http.ResponseWriter, what string, v any, status ...int) {
	code := http.StatusOK
	if len(status) > 0 {
		code = status[0]
	}
	if !problem.JSON(w, code, v) {
		h.o.Logger.Error(what+" could not be encoded; answered 500", "err", fmt.Sprintf("%v", encodeErr(v)))
	}
}

func encodeErr(v any) error {
	_, err := json.Marshal(v)
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	problem.JSON(w, status, v)
}

// writeError answers an error with the default code of its status; prefer problem.Write with a
// specific code and field.
func writeError(w http.ResponseWriter, status int, msg string) {
	problem.Write(w, status, problem.CodeOf(status), "", msg)
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
