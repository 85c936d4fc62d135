package main

import (
	"context"
	"database/sql"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

// guard puts package auth in front of every route of the platform's HTTP server.
type guard struct {
	next http.Handler // the routes; set before the server starts
	m    *auth.Middleware
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.m.ServeHTTP(w, r) }

func newGuard(ctx context.Context, cfg *platformConfig, state *sql.DB, sites []*analytics.Site, o serveOptions, reg prometheus.Registerer) (*guard, error) {
	logger := o.Logger.With("component", "auth")
	store, err := auth.Open(ctx, state, nil)
	if err != nil {
		return nil, err
	}
	if o.AdminToken != "" {
		if _, err := store.Authenticate(ctx, o.AdminToken); errors.Is(err, auth.ErrInvalid) {
			if _, err := store.Insert(ctx, auth.NewToken{Name: "demo", Role: "admin"}, o.AdminToken); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
	}
	switch cfg.HTTP.Auth {
	case auth.ModeOpen:
		logger.Warn("HTTP API IS OPEN: no authentication, every caller is admin; allowed on loopback only", "listen", cfg.HTTP.Listen)
	default:
		if ts, err := store.List(ctx); err == nil && len(ts) == 0 {
			logger.Warn("no API tokens yet, so only public pages answer; create one with: aqualoop token create --config FILE --name admin --role admin")
		}
	}
	parks := analytics.Parks(sites)
	g := &guard{}
	g.m, err = auth.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.next.ServeHTTP(w, r) }), auth.Options{
		Config: cfg.HTTP.Config,
		Store:  store,
		ParkSites: func(park string) []string {
			var ids []string
			for _, s := range parks[park] {
				ids = append(ids, s.ID)
			}
			return ids
		},
		Logger:  logger,
		Metrics: auth.NewMetrics(reg),
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}
