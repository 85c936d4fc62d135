package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics/console"
)

// mountConsole mounts the operators' console on mux: the page at / (taking that route from the
// API's old status page), /login and /ui/, and the live event stream at /api/v1/events. The
// returned hub's Sink goes to the evaluator and its Run beside the HTTP server.
func mountConsole(mux *http.ServeMux, reg prometheus.Registerer, logger *slog.Logger) *console.Hub {
	hub := console.NewHub(console.HubOptions{Logger: logger, Metrics: console.NewMetrics(reg)})
	page := console.Handler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /login", page)
	mux.Handle("/ui/", page)
	mux.Handle("GET /api/v1/events", hub)
	return hub
}
