package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Alertmanager pushes alerts to a Prometheus Alertmanager over its v2 API (POST
// /api/v2/alerts, a list of postable alerts), the way Prometheus itself does: firing alerts are
// pushed again at every group tick with endsAt a few intervals ahead, so Alertmanager keeps them
// while aqualoop keeps sending and resolves them by itself if aqualoop goes away; resolved alerts
// carry the endsAt at which they resolved.
type Alertmanager struct {
	url   string
	post  httpPoster
	now   func() time.Time
	valid time.Duration // how far ahead a firing alert's endsAt is put
}

var _ Notifier = (*Alertmanager)(nil)

type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// NewAlertmanager builds an Alertmanager integration. valid is how long a pushed firing alert
// stays firing in Alertmanager without another push.
func NewAlertmanager(c *AlertmanagerConfig, client *http.Client, now func() time.Time, valid time.Duration) (*Alertmanager, error) {
	auth, err := c.Auth.authFunc()
	if err != nil {
		return nil, err
	}
	return &Alertmanager{
		url:  strings.TrimRight(c.URL, "/") + "/api/v2/alerts",
		post: httpPoster{client: client, auth: auth}, now: now, valid: valid,
	}, nil
}

// Notify pushes m's alerts.
func (a *Alertmanager) Notify(ctx context.Context, m *Message) error {
	out := make([]postableAlert, 0, len(m.Alerts))
	now := a.now()
	for _, al := range m.Alerts {
		p := postableAlert{
			Labels: al.Labels, Annotations: al.Annotations, StartsAt: al.StartsAt, GeneratorURL: al.GeneratorURL,
		}
		if al.Resolved() {
			p.EndsAt = al.EndsAt
			if p.EndsAt.IsZero() || p.EndsAt.After(now) {
				p.EndsAt = now
			}
		} else {
			p.EndsAt = now.Add(a.valid)
		}
		out = append(out, p)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return Permanent(fmt.Errorf("encode alertmanager alerts: %w", err))
	}
	_, err = a.post.post(ctx, a.url, "application/json", body)
	return err
}
