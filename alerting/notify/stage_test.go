package notify

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestNeedsUpdate is Alertmanager's de-duplication rule, case by case.
func TestNeedsUpdate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := func(firing, res []string, ago time.Duration) *sentState {
		return &sentState{firing: firing, resolved: res, at: t0.Add(-ago)}
	}
	tests := []struct {
		name         string
		st           *sentState
		firing, res  []string
		sendResolved bool
		everyFlush   bool
		want         bool
	}{
		{"first firing", nil, []string{"a"}, nil, true, false, true},
		{"first, only resolved", nil, nil, []string{"a"}, true, false, false},
		{"unchanged", st([]string{"a"}, nil, time.Minute), []string{"a"}, nil, true, false, false},
		{"new firing", st([]string{"a"}, nil, time.Minute), []string{"a", "b"}, nil, true, false, true},
		{"one resolved, send_resolved", st([]string{"a", "b"}, nil, time.Minute), []string{"b"}, []string{"a"}, true, false, true},
		{"one resolved, no send_resolved", st([]string{"a", "b"}, nil, time.Minute), []string{"b"}, []string{"a"}, false, false, false},
		{"all resolved, no send_resolved", st([]string{"a"}, nil, time.Minute), nil, []string{"a"}, false, false, true},
		{"all resolved already sent", st(nil, []string{"a"}, time.Minute), nil, []string{"a"}, true, false, false},
		{"repeat due", st([]string{"a"}, nil, time.Hour), []string{"a"}, nil, true, false, true},
		{"repeat not yet due", st([]string{"a"}, nil, time.Hour-time.Second), []string{"a"}, nil, true, false, false},
		{"alertmanager re-push", st([]string{"a"}, nil, time.Minute), []string{"a"}, nil, true, true, true},
		{"alertmanager resolved once", st(nil, []string{"a"}, time.Minute), nil, []string{"a"}, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Batch{
				integ:  &integration{sendResolved: tt.sendResolved, everyFlush: tt.everyFlush},
				Firing: tt.firing, Resolved: tt.res, At: t0, RepeatInterval: time.Hour,
			}
			if got := (NotifyDedup{}).needsUpdate(tt.st, b); got != tt.want {
				t.Errorf("needsUpdate = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBackoff: doubling from the initial delay, capped, jittered within the upper half.
func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 10 * time.Second, 30: 10 * time.Second} {
		for range 50 {
			d := backoff(time.Second, 10*time.Second, attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

// TestSendResolvedOff: an integration with send_resolved off gets no resolved alerts, and an
// all-resolved group is logged as skipped instead of being sent.
func TestSendResolvedOff(t *testing.T) {
	db := openDB(t, tempDBPath(t))
	defer db.Close()
	rec := &recorder{t: t}
	off := false
	cfg := hookConfig(0, time.Minute, time.Hour)
	cfg.Receivers[0].WebhookConfigs[0].SendResolved = &off
	d, err := New(cfg, db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := d.receivers["hook"][0]
	in.notifier, _ = NewWebhook(&WebhookConfig{URL: "http://hook.test/"}, &http.Client{Transport: handlerTransport{rec}})
	ctx := context.Background()
	now := time.Now()
	a, b := alert("x", "s", now, "m", "1"), alert("x", "s", now, "m", "2")
	a.Fingerprint, b.Fingerprint = "fa", "fb"
	run := func(alerts ...Alert) error {
		return d.pipeline.Exec(ctx, &Batch{integ: in, GroupKey: "g", Alerts: alerts, RepeatInterval: time.Hour, At: now})
	}
	if err := run(a, b); err != nil {
		t.Fatal(err)
	}
	if err := run(resolved(a, now), b); err != errNothingNew {
		t.Fatalf("one resolved without send_resolved: %v, want nothing new", err)
	}
	if err := run(resolved(a, now), resolved(b, now)); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d requests, want 1 (the resolved ones are not sent)", n)
	}
	log, _ := d.Log(ctx, LogFilter{})
	if len(log) != 2 || log[0].Result != ResultSkipped || log[1].Result != ResultSent {
		t.Errorf("log %+v, want sent then skipped", log)
	}
}
