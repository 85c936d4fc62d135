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
//
// answers the Truth JSON, or 400 with a message when from or to is missing, malformed or out of
// order.
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
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(p.Truth(from, to)); err != nil {
		p.log.Debug("write truth response", "err", err)
	}
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
