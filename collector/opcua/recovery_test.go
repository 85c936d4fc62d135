package opcua

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aqualoop/aqualoop/collector"
)

// TestRepublishConstantValue: a totalizer that does not change is sent by the server once; the
// source publishes its value and status again at least once per republish_interval, so the
// platform's stale detection does not mistake a constant meter for a dead edge.
func TestRepublishConstantValue(t *testing.T) {
	ts := startServer(t, serverOpts{vars: []string{"m1.total", "m1.flow"}})
	ts.set("m1.total", 100, t0, t0)
	cfg := baseConfig(ts, ModeSubscribe)
	cfg.Interval = 100 * time.Millisecond
	cfg.RepublishInterval = 300 * time.Millisecond
	r := start(t, cfg)
	first := r.wait("total 100", hasValue("total", 100))
	window := 2 * time.Second
	time.Sleep(window)
	var times []time.Time
	republished := 0
	for _, rd := range r.readings() {
		if p, ok := rd.Point("total"); !ok || p.Value != 100 {
			continue
		}
		if rd.TimeSource == collector.TimeSourceCollector {
			republished++
			times = append(times, rd.Time)
			if !rd.Time.After(first.Time) {
				t.Errorf("republished reading stamped %s, not after the value's %s", rd.Time, first.Time)
			}
			if len(rd.Points) != 2 {
				t.Errorf("republished reading has %d points, want both total and flow: %+v", len(rd.Points), rd)
			}
		}
	}
	// At least one reading per republish interval over the window, less one for the edges.
	if want := int(window/cfg.RepublishInterval) - 1; republished < want {
		t.Errorf("%d readings republished in %s at a %s republish interval, want at least %d", republished, window, cfg.RepublishInterval, want)
	}
	var worst time.Duration
	for i := 1; i < len(times); i++ {
		worst = max(worst, times[i].Sub(times[i-1]))
	}
	t.Logf("%d readings of a constant total republished in %s; longest gap between them %s (republish_interval %s)",
		republished, window, worst, cfg.RepublishInterval)
	// Generous: the ticker checks every quarter interval and the box is loaded.
	if worst > 3*cfg.RepublishInterval {
		t.Errorf("longest gap between readings %s, more than 3 × republish_interval", worst)
	}
}

// TestRecoveryWithinOneInterval stops the server long enough for the reconnect backoff to grow
// past the interval, restarts it on the same port and measures how long after its return the
// first good reading comes: at most one interval (plus the connect handshake), whatever the
// backoff had grown to.
func TestRecoveryWithinOneInterval(t *testing.T) {
	for _, mode := range []string{ModeSubscribe, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			vars := []string{"m1.total", "m1.flow"}
			ts := startServer(t, serverOpts{vars: vars})
			ts.set("m1.total", 100, t0, t0)
			cfg := baseConfig(ts, mode)
			cfg.Interval = 800 * time.Millisecond
			cfg.ConnectBackoffMax = 30 * time.Second
			r := start(t, cfg)
			r.wait("total 100 before the outage", hasValue("total", 100))
			ts.stop()
			// After 1 and 2 s of backoff the next uncapped wait (up to 4 s) is far beyond the
			// interval.
			time.Sleep(3 * time.Second)
			ts2 := startServer(t, serverOpts{port: ts.port, vars: vars})
			back := time.Now()
			ts2.set("m1.total", 200, t0.Add(time.Hour), t0.Add(time.Hour))
			r.wait("total 200 after the restart", hasValue("total", 200))
			took := time.Since(back)
			t.Logf("%s: first good reading %s after the server returned (interval %s)", mode, took.Round(time.Millisecond), cfg.Interval)
			// One interval, with a second of tolerance for a loaded machine.
			if limit := cfg.Interval + time.Second; took > limit {
				t.Errorf("first good reading %s after the server returned, more than one interval (%s) plus 1 s of tolerance", took, cfg.Interval)
			}
		})
	}
}

func TestDescribeLoss(t *testing.T) {
	err := describeLoss(fmt.Errorf("publish: %w", ua.StatusBadSessionClosed))
	if msg := err.Error(); !strings.Contains(msg, "server shut down or connection lost") || strings.Contains(msg, "closed by the client") {
		t.Errorf("loss described as %q", msg)
	}
	other := fmt.Errorf("publish: %w", ua.StatusBadTooManyOperations)
	if got := describeLoss(other); got != other {
		t.Errorf("another error rewritten: %v", got)
	}
}
