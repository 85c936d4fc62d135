package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Handler serves the truth over HTTP:
//
//	GET /api/v1/sim/truth?from=RFC3339&to=RFC3339
//	GET /api/v1/sim/truth?period=hour|day
//
// answers the Truth JSON, or 400 with a message when from or to is missing, malformed or out of
// order. A period is the plant's current hour or day in its time zone, from its start to the
// last whole simulated minute, the span the platform's `?period=` answers cover.
func (p *Plant) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sim/truth", p.serveTruth)
	mux.HandleFunc("GET /api/v1/sim/faults", p.serveFaults)
	mux.HandleFunc("POST /api/v1/sim/faults", p.servePostFault)
	mux.HandleFunc("DELETE /api/v1/sim/faults/{id}", p.serveDeleteFault)
	return mux
}

func (p *Plant) serveTruth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if period := q.Get("period"); period != "" {
		from, to, err := p.periodSpan(period)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.writeTruth(w, from, to)
		return
	}
	from, err := parseQueryTime(q.Get("from"), "from")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	to, err := parseQueryTime(q.Get("to"), "to")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !to.After(from) {
		http.Error(w, fmt.Sprintf("to (%s) must be after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339)), http.StatusBadRequest)
		return
	}
	p.writeTruth(w, from, to)
}

func (p *Plant) writeTruth(w http.ResponseWriter, from, to time.Time) {
	b, err := json.Marshal(p.Truth(from, to))
	if err != nil {
		http.Error(w, "encode truth: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(append(b, '\n')); err != nil {
		p.log.Debug("write truth response", "err", err)
	}
}

// periodSpan is the current simulated hour or day so far, in whole minutes.
func (p *Plant) periodSpan(period string) (from, to time.Time, err error) {
	now := p.Now().In(p.prof.loc)
	to = now.Truncate(time.Minute)
	switch period {
	case "hour":
		from = time.Date(now.Year(), now.Month(), now.Day(), now.Hour(), 0, 0, 0, p.prof.loc)
	case "day":
		from = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, p.prof.loc)
	default:
		return from, to, fmt.Errorf("query parameter period=%q is not one of hour, day", period)
	}
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	return from, to, nil
}

func parseQueryTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("query parameter %s is required (RFC3339, e.g. 2025-01-06T00:00:00+08:00)", name)
	}
	// An unescaped "+08:00" arrives as " 08:00"; take it for what the caller meant.
	t, err := time.Parse(time.RFC3339, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		return time.Time{}, fmt.Errorf("query parameter %s=%q is not an RFC3339 time (e.g. 2025-01-06T00:00:00+08:00)", name, v)
	}
	if t.Year() < 1900 || t.Year() > 2200 {
		return time.Time{}, fmt.Errorf("query parameter %s=%q is outside the years 1900 to 2200", name, v)
	}
	return t, nil
}
