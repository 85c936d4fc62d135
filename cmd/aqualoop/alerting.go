package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/alerting"
	"github.com/aqualoop/aqualoop/alerting/notify"
	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
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
	// Notify routes alerts to receivers (docs/alerting-notify.md); without receivers alerts are
	// only logged.
	Notify notify.Config `yaml:"notify"`
}

// notifying reports whether the config names any receiver.
func (c *alertingConfig) notifying() bool { return len(c.Notify.Receivers) > 0 }

// newNotifier builds the notification pipeline of the config, with an MQTT client of its own
// (the ingest account, client id suffixed "-notify") when a receiver publishes to MQTT. The
// returned function hands the alert manager's alerts to the pipeline.
func newNotifier(ctx context.Context, c *platformConfig, db *sql.DB, reg prometheus.Registerer, logger *slog.Logger) (*notify.Dispatcher, func(context.Context, []alerting.Alert), func(), error) {
	o := notify.Options{Logger: logger, Metrics: notify.NewMetrics(reg)}
	closeMQTT := func() {}
	if c.Alerting.Notify.UsesMQTT() {
		b := c.Ingest.MQTT
		b.ClientID += "-notify"
		opts, err := b.ClientOptions()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("notifier mqtt: %w", err)
		}
		opts.SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true)
		client := paho.NewClient(opts)
		client.Connect() // retried in the background; a publish while down is retried by the pipeline
		o.Publish = notify.PahoPublisher(client)
		closeMQTT = func() { client.Disconnect(250) }
	}
	d, err := notify.New(c.Alerting.Notify, db, o)
	if err != nil {
		closeMQTT()
		return nil, nil, nil, err
	}
	send := func(ctx context.Context, as []alerting.Alert) {
		out := make([]notify.Alert, len(as))
		for i, a := range as {
			out[i] = notify.Alert{Fingerprint: a.Fingerprint, Status: a.Status, Labels: a.Labels, Annotations: a.Annotations,
				StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}
		}
		d.Notify(ctx, out)
	}
	return d, send, closeMQTT, nil
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
		// Who acknowledged, silenced or closed an alert, and which sites a caller may see, come
		// from the authenticated caller (analytics/api/auth).
		Who: func(r *http.Request) string {
			if p, ok := auth.FromContext(r.Context()); ok {
				return p.Name
			}
			return ""
		},
		Allowed: func(r *http.Request, site string) bool { return auth.SiteAllowed(r.Context(), site) },
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
