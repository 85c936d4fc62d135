package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// webhookPayload is Alertmanager's webhook payload, version 4, so receivers written for
// Alertmanager (and its many bridges) take aqualoop's notifications unchanged.
type webhookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []webhookAlert    `json:"alerts"`
}

type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Webhook posts the Alertmanager webhook payload to a URL.
type Webhook struct {
	url       string
	maxAlerts int
	post      httpPoster
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook builds a webhook integration.
func NewWebhook(c *WebhookConfig, client *http.Client) (*Webhook, error) {
	auth, err := c.Auth.authFunc()
	if err != nil {
		return nil, err
	}
	return &Webhook{url: c.URL, maxAlerts: c.MaxAlerts, post: httpPoster{client: client, auth: auth}}, nil
}

// Notify posts m.
func (w *Webhook) Notify(ctx context.Context, m *Message) error {
	p := webhookPayload{
		Version:           "4",
		GroupKey:          m.GroupKey,
		Status:            m.Status(),
		Receiver:          m.Receiver,
		GroupLabels:       nonNilMap(m.GroupLabels),
		CommonLabels:      m.CommonLabels(),
		CommonAnnotations: m.CommonAnnotations(),
		ExternalURL:       m.ExternalURL,
		Alerts:            []webhookAlert{},
	}
	alerts := m.Alerts
	if w.maxAlerts > 0 && len(alerts) > w.maxAlerts {
		p.TruncatedAlerts = len(alerts) - w.maxAlerts
		alerts = alerts[:w.maxAlerts]
	}
	for _, a := range alerts {
		p.Alerts = append(p.Alerts, webhookAlert{
			Status: a.Status, Labels: nonNilMap(a.Labels), Annotations: nonNilMap(a.Annotations),
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
		})
	}
	body, err := json.Marshal(p)
	if err != nil {
		return Permanent(fmt.Errorf("encode webhook payload: %w", err))
	}
	_, err = w.post.post(ctx, w.url, "application/json", body)
	return err
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
