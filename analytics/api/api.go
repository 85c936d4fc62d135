// Package api serves the platform's read side: the JSON API, the live status page and health.
// It only reads: analytics state is written by ingest and the engine, never through here.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
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
}

// Readings is the part of the store the API reads.
type Readings interface {
	LastReading(ctx context.Context, site, meter string, t time.Time) (collector.Reading, bool, error)
}

// Options are the API's dependencies.
type Options struct {
	Sites    []*analytics.Site
	Engine   Engine
	Readings Readings
	Logger   *slog.Logger
	// Now is the clock that "now" and default periods use; the demo passes the simulator's.
	Now func() time.Time
	// Health returns the components' states for /healthz; ok false answers 503.
	Health func() (state map[string]any, ok bool)
}

//go:embed status.html
var statusPage []byte

// Handler returns the API's routes.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(statusPage)
	})
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /api/v1/sites", h.sites)
	mux.HandleFunc("GET /api/v1/sites/{site}/indicators", h.indicators)
	mux.HandleFunc("GET /api/v1/sites/{site}/meters", h.meters)
	return mux
}

type handler struct{ o Options }

func (h *handler) site(id string) *analytics.Site {
	i := slices.IndexFunc(h.o.Sites, func(s *analytics.Site) bool { return s.ID == id })
	if i < 0 {
		return nil
	}
	return h.o.Sites[i]
}

type siteSummary struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Park   string `json:"park,omitempty"`
	Meters int    `json:"meters"`
	Flows  int    `json:"flows"`
	Now    string `json:"now"`
}

func (h *handler) sites(w http.ResponseWriter, _ *http.Request) {
	out := make([]siteSummary, 0, len(h.o.Sites))
	for _, s := range h.o.Sites {
		out = append(out, siteSummary{ID: s.ID, Name: s.Name, Park: s.Park, Meters: len(s.Meters), Flows: len(s.Flows),
			Now: h.o.Now().In(s.Location()).Format(time.RFC3339)})
	}
	writeJSON(w, http.StatusOK, out)
}

// period reads from and to (RFC 3339). Missing: from the start of today in the site's time zone
// to now.
func (h *handler) period(r *http.Request, s *analytics.Site) (from, to time.Time, err error) {
	now := h.o.Now()
	to = now
	y, m, d := now.In(s.Location()).Date()
	from = time.Date(y, m, d, 0, 0, 0, 0, s.Location())
	if v := r.URL.Query().Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, errors.New("from: not an RFC 3339 time like 2026-11-28T08:00:00+08:00")
		}
	}
	if v := r.URL.Query().Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, errors.New("to: not an RFC 3339 time like 2026-11-28T09:00:00+08:00")
		}
	}
	if !to.After(from) {
		return from, to, errors.New("to must be after from")
	}
	return from, to, nil
}

func (h *handler) indicators(w http.ResponseWriter, r *http.Request) {
	s := h.site(r.PathValue("site"))
	if s == nil {
		writeError(w, http.StatusNotFound, "unknown site "+r.PathValue("site"))
		return
	}
	from, to, err := h.period(r, s)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ind, err := h.o.Engine.Indicators(r.Context(), s.ID, from, to)
	if err != nil {
		h.o.Logger.Error("indicators", "site", s.ID, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ind)
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

func (h *handler) meters(w http.ResponseWriter, r *http.Request) {
	s := h.site(r.PathValue("site"))
	if s == nil {
		writeError(w, http.StatusNotFound, "unknown site "+r.PathValue("site"))
		return
	}
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
