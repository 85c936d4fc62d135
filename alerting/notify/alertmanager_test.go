package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/internal/testenv"
)

// amAlert is an alert as Alertmanager's GET /api/v2/alerts returns it (gettable alert).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

func getAlerts(t *testing.T, base string, filter string) []amAlert {
	t.Helper()
	u := base + "/api/v2/alerts"
	if filter != "" {
		u += "?filter=" + url.QueryEscape(filter)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	var out []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAlertmanagerPush pushes to a real Prometheus Alertmanager and reads the alerts back over
// its own API: labels, annotations, startsAt, and the endsAt that keeps a firing alert alive or
// ends a resolved one.
func TestAlertmanagerPush(t *testing.T) {
	am := testenv.Alertmanager(t, "")
	now := time.Now().UTC().Truncate(time.Millisecond)
	n, err := NewAlertmanager(&AlertmanagerConfig{URL: am.URL() + "/"}, &http.Client{Timeout: 10 * time.Second},
		func() time.Time { return now }, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage(now.Add(-10 * time.Minute))
	// The test message's resolved alert ended a minute before the firing one started; make it
	// end just now so Alertmanager has it as resolved rather than ignoring an old alert.
	m.Alerts[1].EndsAt = now.Add(-time.Second)
	if err := n.Notify(context.Background(), m); err != nil {
		t.Fatalf("push: %v\n%s", err, am.Log())
	}
	got := getAlerts(t, am.URL(), `alertname="leak_imbalance"`)
	if len(got) != 1 {
		t.Fatalf("Alertmanager lists %d active alerts, want 1 (the resolved one is not active): %+v", len(got), got)
	}
	a := got[0]
	want := m.Alerts[0]
	if a.Labels["meter"] != "m1" || a.Labels["site"] != "park-a" || a.Labels["severity"] != "critical" || len(a.Labels) != len(want.Labels) {
		t.Errorf("labels %v, want %v", a.Labels, want.Labels)
	}
	if a.Annotations["summary_zh"] != want.Annotations["summary_zh"] || a.Annotations["runbook"] != "close valve V3" {
		t.Errorf("annotations %v", a.Annotations)
	}
	if !a.StartsAt.Equal(want.StartsAt) {
		t.Errorf("startsAt %v, want %v", a.StartsAt, want.StartsAt)
	}
	if !a.EndsAt.Equal(now.Add(20 * time.Minute)) {
		t.Errorf("endsAt %v, want now + 20m = %v", a.EndsAt, now.Add(20*time.Minute))
	}
	if a.GeneratorURL != want.GeneratorURL || a.Status.State != "active" {
		t.Errorf("generatorURL %q state %q", a.GeneratorURL, a.Status.State)
	}

	// Resolve it: the push carries endsAt and Alertmanager no longer lists it as active.
	// Alertmanager compares endsAt with its own clock, so this step runs on the real one.
	now = time.Now().UTC()
	end := now.Add(-time.Millisecond)
	m.Alerts = []Alert{resolved(m.Alerts[0], end)}
	if err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := getAlerts(t, am.URL(), `alertname="leak_imbalance"`); len(got) != 0 {
		t.Errorf("after the resolved push Alertmanager still lists %+v", got)
	}

	// A label name Alertmanager refuses: its 400 is a permanent error, not a retry loop.
	bad := testMessage(now)
	bad.Alerts[0].Labels["bad-name"] = "x"
	if err := n.Notify(context.Background(), bad); err == nil || Retryable(err) {
		t.Errorf("invalid label: %v (retryable %v), want a permanent error", err, Retryable(err))
	}
}

// TestDispatcherToAlertmanager runs the whole pipeline against the real Alertmanager on the real
// clock: the alert appears, stays while the core keeps sending it (re-pushed at each group tick),
// and disappears after the core resolves it.
func TestDispatcherToAlertmanager(t *testing.T) {
	am := testenv.Alertmanager(t, "")
	db := openDB(t, tempDBPath(t))
	defer db.Close()
	cfg := Config{
		Route:     Route{Receiver: "am", GroupWait: dur(0), GroupInterval: dur(200 * time.Millisecond)},
		Receivers: []Receiver{{Name: "am", AlertmanagerConfigs: []AlertmanagerConfig{{URL: am.URL()}}}},
	}
	d, err := New(cfg, db, Options{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	stop := runDispatcher(t, d)
	defer stop()
	a := alert("meter_stuck", "park-c", time.Now().Add(-time.Hour).UTC().Truncate(time.Second), "meter", "m7")
	ctx := context.Background()
	waitFor := func(what string, cond func([]amAlert) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := getAlerts(t, am.URL(), `alertname="meter_stuck"`)
			if cond(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Alertmanager lists %+v", what, got)
			}
			d.Notify(ctx, []Alert{a}) // the core re-sends firing alerts each cycle
			time.Sleep(50 * time.Millisecond)
		}
	}
	d.Notify(ctx, []Alert{a})
	waitFor("firing", func(got []amAlert) bool {
		return len(got) == 1 && got[0].Labels["meter"] == "m7" && got[0].StartsAt.Equal(a.StartsAt)
	})
	// Several group ticks later it has been pushed again (the log shows each push).
	time.Sleep(time.Second)
	log, err := d.Log(ctx, LogFilter{Receiver: "am", Result: ResultSent})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) < 2 {
		t.Errorf("%d pushes logged after several group ticks, want Alertmanager re-pushed", len(log))
	}
	a = resolved(a, time.Now().UTC())
	d.Notify(ctx, []Alert{a})
	deadline := time.Now().Add(20 * time.Second)
	for len(getAlerts(t, am.URL(), `alertname="meter_stuck"`)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the resolved alert is still active in Alertmanager")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
