package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // the state database's driver

	"github.com/aqualoop/aqualoop/alerting"
	"github.com/aqualoop/aqualoop/analytics"
)

// alertingConfig is aqualoop.yaml's alerting section.
type alertingConfig struct {
	// RulesFiles are rules files relative to aqualoop.yaml: the platform's (no site key) and
	// per-site ones, on top of the built-in default rules.
	RulesFiles []string `yaml:"rules_files"`
	// Resend is how often a still-firing alert goes to the notifiers again (default 1m).
	Resend time.Duration `yaml:"resend"`
	// ExternalURL is the console's address, for links in notifications.
	ExternalURL string `yaml:"external_url"`
}

// loadRules reads and validates every rules file against the site models; the error lists every
// file's problems.
func (c *platformConfig) loadRules(sites []*analytics.Site) ([]*alerting.RulesFile, error) {
	var files []*alerting.RulesFile
	var errs []error
	for _, f := range c.Alerting.RulesFiles {
		rf, err := alerting.LoadRules(c.path(f), sites)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, rf)
	}
	return files, errors.Join(errs...)
}

// statePath is the state database beside the SQLite store file (or where it would be with
// InfluxDB): alerts, silences and other platform state that is not a time series.
func (c *platformConfig) statePath() string {
	return filepath.Join(filepath.Dir(c.path(c.SQLite.Path)), "state.db")
}

// openState opens the platform's state database (SQLite, WAL, one writer).
func openState(c *platformConfig) (*sql.DB, error) {
	p := c.statePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create state database folder: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+p+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", p, err)
	}
	return db, nil
}

// newAlerting builds the alert manager from the platform config. Until the notifier pipeline
// is wired, notifications are logged.
func newAlerting(ctx context.Context, c *platformConfig, sites []*analytics.Site, db *sql.DB, reg prometheus.Registerer,
	logger *slog.Logger, notify func(context.Context, []alerting.Alert)) (*alerting.Manager, error) {
	files, err := c.loadRules(sites)
	if err != nil {
		return nil, err
	}
	if notify == nil {
		notify = logNotify(logger)
	}
	return alerting.New(ctx, alerting.Options{
		Sites: sites, RulesFiles: files, DB: db, Notify: notify, Resend: c.Alerting.Resend,
		GeneratorURL: c.Alerting.ExternalURL, Logger: logger, Metrics: alerting.NewMetrics(reg),
	})
}

// logNotify logs each alert state change (resends only at debug).
func logNotify(logger *slog.Logger) func(context.Context, []alerting.Alert) {
	return func(_ context.Context, as []alerting.Alert) {
		for _, a := range as {
			logger.Info("alert", "status", a.Status, "alertname", a.Labels["alertname"], "site", a.Labels["site"],
				"severity", a.Labels["severity"], "summary", a.Annotations["summary"], "starts_at", a.StartsAt)
		}
	}
}
