package notify

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func hookConfig(wait, interval, repeat time.Duration) Config {
	cfg := Config{
		Global: Global{ExternalURL: "http://console.test", Retry: Retry{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second, MaxAttempts: 3}},
		Route: Route{
			Receiver: "hook", GroupBy: []string{"alertname", "site"},
			GroupWait: dur(wait), GroupInterval: dur(interval), RepeatInterval: dur(repeat),
		},
		Receivers: []Receiver{{Name: "hook", WebhookConfigs: []WebhookConfig{{URL: "http://hook.test/alerts"}}}},
	}
	cfg.Default()
	return cfg
}

// sleepTo advances the bubble's clock to t0+d and lets every goroutine settle.
func sleepTo(t0 time.Time, d time.Duration) {
	time.Sleep(time.Until(t0.Add(d)))
	synctest.Wait()
}

func fingerprints(r hookRequest) (firing, res []string) {
	for _, a := range r.payload.Alerts {
		if a.Status == StatusFiring {
			firing = append(firing, a.Labels["alertname"]+"@"+a.Labels["site"]+a.Labels["meter"])
		} else {
			res = append(res, a.Labels["alertname"]+"@"+a.Labels["site"]+a.Labels["meter"])
		}
	}
	slices.Sort(firing)
	slices.Sort(res)
	return
}

// TestGroupTimers follows one alert group through group_wait, group_interval, repeat_interval
// and resolution on the bubble's fake clock, the core re-sending firing alerts every minute.
func TestGroupTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := openDB(t, tempDBPath(t))
		defer db.Close()
		rec := &recorder{t: t}
		reg := prometheus.NewRegistry()
		d, err := New(hookConfig(30*time.Second, 5*time.Minute, time.Hour), db, Options{
			HTTPClient: &http.Client{Transport: handlerTransport{rec}}, Metrics: NewMetrics(reg),
		})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		stop := runDispatcher(t, d)
		defer stop()
		ctx := context.Background()

		a1 := alert("leak", "s1", t0, "meter", "m1")
		a2 := alert("leak", "s1", t0.Add(time.Minute), "meter", "m2")
		b1 := alert("leak", "s2", t0, "meter", "m9")
		firing := []Alert{a1, b1}
		d.Notify(ctx, firing)

		// The core re-sends what still fires every minute.
		resend := func(until time.Duration) {
			for next := time.Since(t0).Truncate(time.Minute) + time.Minute; next <= until; next += time.Minute {
				sleepTo(t0, next)
				d.Notify(ctx, firing)
			}
		}

		sleepTo(t0, 29*time.Second)
		if n := len(rec.all()); n != 0 {
			t.Fatalf("before group_wait: %d requests, want 0", n)
		}
		sleepTo(t0, 31*time.Second)
		got := rec.all()
		if len(got) != 2 {
			t.Fatalf("after group_wait: %d requests, want one per group (2)", len(got))
		}
		sites := []string{got[0].payload.GroupLabels["site"], got[1].payload.GroupLabels["site"]}
		slices.Sort(sites)
		if !slices.Equal(sites, []string{"s1", "s2"}) {
			t.Fatalf("group labels sites = %v, want s1 and s2", sites)
		}
		for _, r := range got {
			if r.payload.GroupLabels["alertname"] != "leak" || len(r.payload.GroupLabels) != 2 {
				t.Errorf("groupLabels = %v, want alertname and site only", r.payload.GroupLabels)
			}
		}

		// A second alert joins the s1 group: it waits for the group's next tick (5m30s).
		sleepTo(t0, time.Minute)
		firing = append(firing, a2)
		d.Notify(ctx, firing)
		resend(5 * time.Minute)
		sleepTo(t0, 5*time.Minute+29*time.Second)
		if n := len(rec.all()); n != 2 {
			t.Fatalf("before the group interval: %d requests, want 2", n)
		}
		sleepTo(t0, 5*time.Minute+31*time.Second)
		got = rec.all()
		if len(got) != 3 {
			t.Fatalf("after the group interval: %d requests, want 3 (only s1 changed)", len(got))
		}
		if f, _ := fingerprints(got[2]); !slices.Equal(f, []string{"leak@s1m1", "leak@s1m2"}) {
			t.Fatalf("third notification fires %v, want both s1 meters", f)
		}

		// Nothing changes: the next notifications are the repeats one hour after the last send,
		// on the first group tick at or after it (s2: 60m30s, s1: 65m30s).
		resend(60 * time.Minute)
		sleepTo(t0, 60*time.Minute+29*time.Second)
		if n := len(rec.all()); n != 3 {
			t.Fatalf("before repeat_interval: %d requests, want 3", n)
		}
		sleepTo(t0, 60*time.Minute+31*time.Second)
		if got = rec.all(); len(got) != 4 || got[3].payload.GroupLabels["site"] != "s2" {
			t.Fatalf("at 60m31s: %d requests (want 4, the s2 repeat)", len(got))
		}
		resend(65 * time.Minute)
		sleepTo(t0, 65*time.Minute+31*time.Second)
		if got = rec.all(); len(got) != 5 || got[4].payload.GroupLabels["site"] != "s1" {
			t.Fatalf("at 65m31s: %d requests (want 5, the s1 repeat)", len(got))
		}

		// m1 resolves: sent at the next tick with m2 still firing.
		sleepTo(t0, 66*time.Minute)
		firing = []Alert{a2, b1}
		d.Notify(ctx, append(slices.Clone(firing), resolved(a1, t0.Add(66*time.Minute))))
		resend(70 * time.Minute)
		sleepTo(t0, 70*time.Minute+31*time.Second)
		got = rec.all()
		if len(got) != 6 {
			t.Fatalf("after m1 resolved: %d requests, want 6", len(got))
		}
		f, res := fingerprints(got[5])
		if !slices.Equal(f, []string{"leak@s1m2"}) || !slices.Equal(res, []string{"leak@s1m1"}) || got[5].payload.Status != StatusFiring {
			t.Fatalf("resolution notification: firing %v resolved %v status %s", f, res, got[5].payload.Status)
		}
		if end := got[5].payload.Alerts[1].EndsAt; !end.Equal(t0.Add(66 * time.Minute)) {
			t.Errorf("resolved endsAt = %v, want %v", end, t0.Add(66*time.Minute))
		}

		// Everything resolves; the groups empty out and stop.
		sleepTo(t0, 71*time.Minute)
		d.Notify(ctx, []Alert{resolved(a2, time.Now()), resolved(b1, time.Now())})
		firing = nil
		sleepTo(t0, 76*time.Minute)
		got = rec.all()
		if len(got) != 8 {
			t.Fatalf("after all resolved: %d requests, want 8", len(got))
		}
		for _, r := range got[6:] {
			if r.payload.Status != StatusResolved {
				t.Errorf("final notification status %s, want resolved", r.payload.Status)
			}
		}
		sleepTo(t0, 90*time.Minute)
		if n := len(rec.all()); n != 8 {
			t.Fatalf("after the groups emptied: %d requests, want still 8", n)
		}
		if g := testutil.ToFloat64(d.metrics.groups); g != 0 {
			t.Errorf("groups gauge = %v, want 0", g)
		}
		if n := testutil.ToFloat64(d.metrics.notifications.WithLabelValues("hook", "webhook", "success")); n != 8 {
			t.Errorf("success counter = %v, want 8", n)
		}
		log, err := d.Log(ctx, LogFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 8 {
			t.Fatalf("notification log has %d entries, want 8", len(log))
		}
		for _, e := range log {
			if e.Result != ResultSent || e.Attempts != 1 || e.Receiver != "hook" || e.Integration != "webhook[0]" {
				t.Errorf("log entry %+v", e)
			}
		}
		a1fp := LabelsFingerprint(a1.Labels)
		withA1, err := d.Log(ctx, LogFilter{Fingerprint: a1fp})
		if err != nil {
			t.Fatal(err)
		}
		if len(withA1) != 4 { // first, with m2, repeat, resolution
			t.Errorf("log entries holding m1: %d, want 4", len(withA1))
		}
		stop()

	})
}

// TestReceiverDownThenBack: a receiver answers 503 for ten minutes while alerts fire and more
// arrive; when it is back every alert is delivered, exactly once, and the failure was logged
// once, not per retry.
func TestReceiverDownThenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := openDB(t, tempDBPath(t))
		defer db.Close()
		rec := &recorder{t: t}
		rec.setFail(http.StatusServiceUnavailable)
		var logs logBuffer
		reg := prometheus.NewRegistry()
		d, err := New(hookConfig(10*time.Second, time.Minute, 4*time.Hour), db, Options{
			HTTPClient: &http.Client{Transport: handlerTransport{rec}}, Metrics: NewMetrics(reg), Logger: newLogger(&logs),
		})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		stop := runDispatcher(t, d)
		defer stop()
		ctx := context.Background()
		a := alert("overuse", "s1", t0, "plan", "p1")
		b := alert("overuse", "s1", t0.Add(3*time.Minute), "plan", "p2")
		firing := []Alert{a}
		for m := time.Duration(0); m <= 20; m++ {
			sleepTo(t0, m*time.Minute)
			if m == 3 {
				firing = append(firing, b)
			}
			if m == 10 {
				rec.setFail(0)
			}
			if m == 15 {
				firing = []Alert{b}
				d.Notify(ctx, []Alert{resolved(a, time.Now())})
			}
			d.Notify(ctx, firing)
		}
		sleepTo(t0, 25*time.Minute)
		stop()

		all := rec.all()
		ok := rec.delivered()
		if len(ok) != 2 {
			t.Fatalf("delivered %d notifications, want 2 (both firing, then p1 resolved)", len(ok))
		}
		if f, res := fingerprints(ok[0]); len(f) != 2 || len(res) != 0 {
			t.Errorf("first delivery fires %v resolves %v, want both plans firing", f, res)
		}
		if f, res := fingerprints(ok[1]); len(f) != 1 || len(res) != 1 {
			t.Errorf("second delivery fires %v resolves %v, want p2 firing and p1 resolved", f, res)
		}
		failed := len(all) - len(ok)
		if failed < 10 {
			t.Errorf("only %d failed attempts while down for ten minutes", failed)
		}
		if n := logs.count("receiver failing"); n != 1 {
			t.Errorf("logged the failing receiver %d times, want once per episode:\n%s", n, logs.String())
		}
		if n := logs.count("receiver answering again"); n != 1 {
			t.Errorf("logged the recovery %d times, want 1", n)
		}
		if n := testutil.ToFloat64(d.metrics.notifications.WithLabelValues("hook", "webhook", "failure")); int(n) != failed {
			t.Errorf("failure counter %v, want %d (one per failed attempt)", n, failed)
		}
		if n := testutil.CollectAndCount(reg, "aqualoop_notification_latency_seconds"); n == 0 {
			t.Errorf("no latency series")
		}
		entries, err := d.Log(ctx, LogFilter{Result: ResultFailed, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 || entries[0].Error == "" || entries[0].Attempts < 1 {
			t.Errorf("failed log entries: %+v", entries)
		}
	})
}

// TestRestartNoDuplicates closes the dispatcher and opens a new one on the same state DB: the
// core re-sends its firing alerts after the restart, and nothing goes out twice; the repeat
// timer continues from the last delivery before the restart; a notification that had failed
// before the restart is delivered after it.
func TestRestartNoDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tempDBPath(t)
		rec := &recorder{t: t}
		cfg := hookConfig(30*time.Second, 5*time.Minute, 2*time.Hour)
		open := func() (*Dispatcher, func()) {
			db := openDB(t, path)
			d, err := New(cfg, db, Options{HTTPClient: &http.Client{Transport: handlerTransport{rec}}})
			if err != nil {
				t.Fatal(err)
			}
			stop := runDispatcher(t, d)
			return d, func() { stop(); db.Close() }
		}
		ctx := context.Background()
		t0 := time.Now()
		a := alert("stale", "s1", t0, "meter", "m1")
		b := alert("stale", "s2", t0, "meter", "m2")

		d, closeD := open()
		d.Notify(ctx, []Alert{a})
		sleepTo(t0, time.Minute)
		if n := len(rec.delivered()); n != 1 {
			t.Fatalf("first run delivered %d, want 1", n)
		}
		rec.setFail(http.StatusBadGateway)
		d.Notify(ctx, []Alert{a, b})
		sleepTo(t0, 2*time.Minute)
		closeD()
		if n := len(rec.delivered()); n != 1 {
			t.Fatalf("s2 was delivered while the receiver was down")
		}
		rec.setFail(0)

		// Restart after ten minutes. The core sends both again.
		sleepTo(t0, 10*time.Minute)
		d, closeD = open()
		defer func() { closeD() }()
		for m := 10; m <= 130; m++ {
			sleepTo(t0, time.Duration(m)*time.Minute)
			d.Notify(ctx, []Alert{a, b})
			if m == 12 {
				got := rec.delivered()
				if len(got) != 2 || got[1].payload.GroupLabels["site"] != "s2" {
					t.Fatalf("after restart: %d deliveries, want 2 (s2 once, s1 not again)", len(got))
				}
			}
			if m == 119 {
				if n := len(rec.delivered()); n != 2 {
					t.Fatalf("before the repeat interval after restart: %d deliveries, want 2", n)
				}
			}
		}
		// s1 was delivered at t0+30s; its repeat is due at 2h30s, and the restarted group (which
		// flushed at once at 10m, then every 5m) reaches it at its tick at 2h5m.
		got := rec.delivered()
		if len(got) != 4 {
			t.Fatalf("after the repeat interval: %d deliveries, want 4 (s1 and s2 repeats)", len(got))
		}
		if at := got[2].at.Sub(t0); at < 2*time.Hour || at > 2*time.Hour+5*time.Minute {
			t.Errorf("s1 repeat at %v, want within one group interval after 2h0m30s", at)
		}
	})
}

// TestNotifyNeverBlocks: a receiver that never answers does not slow Notify down; its requests
// end at the configured timeout.
func TestNotifyNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := openDB(t, tempDBPath(t))
		defer db.Close()
		hang := make(chan struct{})
		rec := &recorder{t: t, hang: hang}
		cfg := hookConfig(0, time.Minute, time.Hour)
		cfg.Global.Timeout = 5 * time.Second
		d, err := New(cfg, db, Options{HTTPClient: &http.Client{Transport: handlerTransport{rec}}})
		if err != nil {
			t.Fatal(err)
		}
		stop := runDispatcher(t, d)
		t0 := time.Now()
		for i := range 1000 {
			d.Notify(context.Background(), []Alert{alert("burst", "s1", t0, "n", string(rune('a'+i%26)))})
		}
		if el := time.Since(t0); el != 0 {
			t.Errorf("1000 Notify calls took %v of fake time with a hanging receiver, want 0", el)
		}
		sleepTo(t0, 10*time.Second)
		if n := len(rec.all()); n == 0 {
			t.Fatalf("no request reached the hanging receiver")
		}
		close(hang)
		stop()
	})
}
