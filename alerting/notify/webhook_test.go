package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func testMessage(t0 time.Time) *Message {
	a := alert("leak_imbalance", "park-a", t0, "meter", "m1", "unit", "u1")
	a.Labels["severity"] = "critical"
	a.Fingerprint = LabelsFingerprint(a.Labels)
	a.Annotations["runbook"] = "close valve V3"
	a.GeneratorURL = "http://console.test/alerts/1"
	b := alert("leak_imbalance", "park-a", t0.Add(-time.Hour), "meter", "m2", "unit", "u1")
	b.Labels["severity"] = "critical"
	b.Fingerprint = LabelsFingerprint(b.Labels)
	b = resolved(b, t0.Add(-time.Minute))
	return &Message{
		Receiver: "ops", GroupKey: `{}:{alertname="leak_imbalance",site="park-a"}`,
		GroupLabels: map[string]string{"alertname": "leak_imbalance", "site": "park-a"},
		Alerts:      []Alert{a, b}, ExternalURL: "http://console.test",
	}
}

// TestWebhookPayload posts to a real HTTP server and checks the Alertmanager webhook payload,
// version 4, field by field, and the auth header.
func TestWebhookPayload(t *testing.T) {
	rec := &recorder{t: t}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

	tests := []struct {
		name     string
		cfg      WebhookConfig
		wantAuth string
	}{
		{"no auth", WebhookConfig{URL: srv.URL + "/hook"}, ""},
		{"bearer", WebhookConfig{URL: srv.URL + "/hook", Auth: HTTPAuth{BearerToken: "s3cret"}}, "Bearer s3cret"},
		{"basic", WebhookConfig{URL: srv.URL + "/hook", Auth: HTTPAuth{BasicAuth: BasicAuth{Username: "am", Password: "pw"}}}, "Basic YW06cHc="},
		{"truncated", WebhookConfig{URL: srv.URL + "/hook", MaxAlerts: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWebhook(&tt.cfg, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			n := len(rec.all())
			if err := w.Notify(context.Background(), testMessage(t0)); err != nil {
				t.Fatal(err)
			}
			got := rec.all()
			if len(got) != n+1 {
				t.Fatalf("%d requests, want 1", len(got)-n)
			}
			r := got[n]
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if a := r.header.Get("Authorization"); a != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", a, tt.wantAuth)
			}
			p := r.payload
			if p.Version != "4" || p.Status != "firing" || p.Receiver != "ops" || p.ExternalURL != "http://console.test" ||
				p.GroupKey != `{}:{alertname="leak_imbalance",site="park-a"}` {
				t.Errorf("envelope %+v", p)
			}
			if p.CommonLabels["unit"] != "u1" || p.CommonLabels["severity"] != "critical" || p.CommonLabels["meter"] != "" {
				t.Errorf("commonLabels %v", p.CommonLabels)
			}
			if p.CommonAnnotations["runbook"] != "" {
				t.Errorf("commonAnnotations holds a runbook only one alert has: %v", p.CommonAnnotations)
			}
			wantN, wantTrunc := 2, 0
			if tt.cfg.MaxAlerts == 1 {
				wantN, wantTrunc = 1, 1
			}
			if len(p.Alerts) != wantN || p.TruncatedAlerts != wantTrunc {
				t.Fatalf("%d alerts, %d truncated; want %d, %d", len(p.Alerts), p.TruncatedAlerts, wantN, wantTrunc)
			}
			a := p.Alerts[0]
			if a.Status != "firing" || !a.StartsAt.Equal(t0) || !a.EndsAt.IsZero() || a.Labels["meter"] != "m1" ||
				a.GeneratorURL != "http://console.test/alerts/1" || a.Fingerprint == "" || a.Annotations["summary_zh"] == "" {
				t.Errorf("first alert %+v", a)
			}
			if wantN == 2 {
				b := p.Alerts[1]
				if b.Status != "resolved" || !b.EndsAt.Equal(t0.Add(-time.Minute)) {
					t.Errorf("second alert %+v", b)
				}
			}
		})
	}
}

// TestWebhookErrors: 5xx and 429 are retried, 4xx are not.
func TestWebhookErrors(t *testing.T) {
	for _, tt := range []struct {
		status    int
		retryable bool
	}{{500, true}, {503, true}, {429, true}, {400, false}, {401, false}, {404, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", tt.status)
		}))
		w, _ := NewWebhook(&WebhookConfig{URL: srv.URL}, srv.Client())
		err := w.Notify(context.Background(), testMessage(time.Now()))
		srv.Close()
		if err == nil || Retryable(err) != tt.retryable {
			t.Errorf("status %d: err %v, retryable %v, want %v", tt.status, err, Retryable(err), tt.retryable)
		}
	}
	// A refused connection is retried.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	w, _ := NewWebhook(&WebhookConfig{URL: url}, http.DefaultClient)
	err := w.Notify(context.Background(), testMessage(time.Now()))
	if err == nil || !Retryable(err) {
		t.Errorf("refused connection: %v, retryable %v", err, Retryable(err))
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		t.Error("connection error marked permanent")
	}
}
