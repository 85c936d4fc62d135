package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
)

// faultImage: slave 1 has two reads (0..1 and 50), slave 2 one (0..1).
func faultImage() *registerImage {
	return &registerImage{Units: map[byte]*unitImage{
		1: {Holding: map[uint16][]uint16{0: {0x4148, 0x0000}, 50: {7}}},
		2: {Holding: map[uint16][]uint16{0: {0, 42}}},
	}}
}

func faultConfig(controller string) Config {
	return Config{
		Name: "bus-1", Transport: TransportTCP, Controller: controller,
		Interval: time.Hour, Timeout: 150 * time.Millisecond,
		Meters: []Meter{
			{Meter: "m1", SlaveID: 1, Points: []Point{
				{Name: "flow", Address: 0, Type: "FLOAT32", Unit: "m3/h"},
				{Name: "status", Address: 50, Type: "UINT16"},
			}},
			{Meter: "m2", SlaveID: 2, Points: []Point{{Name: "total", Address: 0, Type: "UINT32", Unit: "m3"}}},
		},
	}
}

// counter reads one labelled series of reg by gathering it, as a scrape would.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
		}
	}
	return 0
}

func pointOf(t *testing.T, rs []collector.Reading, meter, name string) collector.Point {
	t.Helper()
	for _, r := range rs {
		if r.Meter == meter {
			if p, ok := r.Point(name); ok {
				return p
			}
		}
	}
	t.Fatalf("no point %s.%s in %+v", meter, name, rs)
	return collector.Point{}
}

func allGood(t *testing.T, rs []collector.Reading) {
	t.Helper()
	for _, r := range rs {
		for _, p := range r.Points {
			if p.Quality != collector.Good {
				t.Errorf("%s.%s is %s: %s", r.Meter, p.Name, p.Quality, p.Error)
			}
		}
	}
}

func TestTimeoutClosesAndReopens(t *testing.T) {
	srv := startServer(t, faultImage())
	reg := prometheus.NewRegistry()
	src, err := New(faultConfig(srv.controller()), "s", Options{Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx := t.Context()
	rs, err := src.Poll(ctx)
	if err != nil {
		t.Fatalf("first poll: %v", err)
	}
	allGood(t, rs)

	// Slave 1 answers its next read long after the client's 150 ms timeout.
	srv.stall(1, time.Second)
	rs, err = src.Poll(ctx)
	if err == nil {
		t.Fatal("poll with a timed-out read returned no error")
	}
	flow := pointOf(t, rs, "m1", "flow")
	if flow.Quality != collector.Bad || !strings.Contains(flow.Error, "timeout") || !strings.Contains(flow.Error, "slave 1 holding address 0..1") {
		t.Errorf("timed-out point: %+v", flow)
	}
	status := pointOf(t, rs, "m1", "status")
	if status.Quality != collector.Bad || !strings.Contains(status.Error, "timed out earlier in this poll") {
		t.Errorf("slave 1's second read should be skipped after its timeout: %+v", status)
	}
	if total := pointOf(t, rs, "m2", "total"); total.Quality != collector.Good || total.Value != 42 {
		t.Errorf("slave 2 after slave 1's timeout: %+v", total)
	}
	st := src.State()
	if st.ConsecutiveFailures != 1 || st.Reconnects != 1 || !strings.Contains(st.LastError, "timeout") {
		t.Errorf("state after the timeout: %+v", st)
	}

	rs, err = src.Poll(ctx)
	if err != nil {
		t.Fatalf("poll after the timeout: %v", err)
	}
	allGood(t, rs)
	if v := pointOf(t, rs, "m1", "flow").Value; v != 12.5 {
		t.Errorf("flow after reconnect = %v, want 12.5", v)
	}
	st = src.State()
	if st.ConsecutiveFailures != 0 || st.Reconnects != 1 || !st.Connected || st.LastError != "" {
		t.Errorf("state after recovery: %+v", st)
	}
	if n := srv.connections(); n != 2 {
		t.Errorf("server saw %d connections, want 2 (the timed-out one is never read again)", n)
	}
	if v := counter(t, reg, "aqualoop_modbus_reconnects_total", map[string]string{"bus": "bus-1"}); v != 1 {
		t.Errorf("reconnects_total = %v, want 1", v)
	}
	if v := counter(t, reg, "aqualoop_modbus_request_errors_total", map[string]string{"bus": "bus-1", "kind": KindTimeout}); v != 1 {
		t.Errorf("request_errors_total{kind=timeout} = %v, want 1", v)
	}
}

func TestGarbledAnswerClosesAndReopens(t *testing.T) {
	srv := startServer(t, faultImage())
	g := startGarbler(t, srv.addr)
	reg := prometheus.NewRegistry()
	src, err := New(faultConfig(g.controller()), "s", Options{Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx := t.Context()
	if _, err := src.Poll(ctx); err != nil {
		t.Fatalf("first poll: %v", err)
	}
	g.garbleNext()
	rs, err := src.Poll(ctx)
	if err == nil {
		t.Fatal("poll with a garbled answer returned no error")
	}
	if flow := pointOf(t, rs, "m1", "flow"); flow.Quality != collector.Bad || !strings.Contains(flow.Error, "unit id") {
		t.Errorf("garbled point: %+v", flow)
	}
	// The stray bytes after the garbled answer must not reach the next read: it runs on a new
	// connection and succeeds.
	if p := pointOf(t, rs, "m1", "status"); p.Quality != collector.Good || p.Value != 7 {
		t.Errorf("read after the garbled one: %+v", p)
	}
	rs, err = src.Poll(ctx)
	if err != nil {
		t.Fatalf("poll after the garbled answer: %v", err)
	}
	allGood(t, rs)
	if n := srv.connections(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
	if v := counter(t, reg, "aqualoop_modbus_request_errors_total", map[string]string{"kind": KindDecode}); v != 1 {
		t.Errorf("request_errors_total{kind=decode} = %v, want 1", v)
	}
	if v := src.State().Reconnects; v != 1 {
		t.Errorf("reconnects = %d, want 1", v)
	}
}

func TestIdleConnectionClosedByPeerIsRetried(t *testing.T) {
	srv := startServer(t, faultImage())
	src, err := New(faultConfig(srv.controller()), "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if _, err := src.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The server drops every connection between two polls, as a device rebooting or a NAT
	// forgetting an idle flow does.
	srv.stop()
	srv.restart()
	rs, err := src.Poll(t.Context())
	if err != nil {
		t.Fatalf("poll over a connection the peer closed: %v", err)
	}
	allGood(t, rs)
	if st := src.State(); st.Reconnects != 1 {
		t.Errorf("reconnects = %d, want 1", st.Reconnects)
	}
}

// TestUnreachableDialsOncePerPoll: a poll of an unreachable device dials once (not once per
// read) and marks every point Bad; the next poll dials again, however soon it comes, so the
// device is read at the first poll after it answers again.
func TestUnreachableDialsOncePerPoll(t *testing.T) {
	srv := startServer(t, faultImage())
	addr := srv.addr
	srv.stop() // nothing listens here now
	src, err := New(faultConfig("tcp://"+addr), "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for attempt := 1; attempt <= 2; attempt++ {
		rs, err := src.Poll(t.Context())
		if err == nil {
			t.Fatal("poll of an unreachable device returned no error")
		}
		want := fmt.Sprintf("connect tcp://%s (attempt %d)", addr, attempt)
		for _, r := range rs {
			for _, p := range r.Points {
				if p.Quality != collector.Bad || !strings.Contains(p.Error, want) {
					t.Errorf("poll %d: %s.%s: %+v, want bad with %q", attempt, r.Meter, p.Name, p, want)
				}
			}
		}
	}
	if st := src.State(); st.ConsecutiveFailures != 2 || st.Connected {
		t.Errorf("state: %+v", st)
	}
	srv.restart()
	rs, err := src.Poll(t.Context())
	if err != nil {
		t.Fatalf("first poll after the device is back: %v", err)
	}
	allGood(t, rs)
}

// TestRecoveryWithinOneInterval runs the source as the edge does, stops the server for longer
// than any backoff would have grown in the old code, restarts it on the same port, and measures
// the time from its return to the first good reading: at most one poll interval. Every reading
// published while the server is up must be good.
func TestRecoveryWithinOneInterval(t *testing.T) {
	srv := startServer(t, faultImage())
	cfg := faultConfig(srv.controller())
	cfg.Interval = 500 * time.Millisecond
	src, err := New(cfg, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	type stamped struct {
		r  collector.Reading
		at time.Time
	}
	readings := make(chan stamped, 4096)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		src.Run(ctx, func(r collector.Reading) {
			select {
			case readings <- stamped{r, time.Now()}:
			default:
			}
		})
	})
	defer func() { cancel(); wg.Wait() }()
	next := func(what string, ok func(stamped) bool) stamped {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case s := <-readings:
				if ok(s) {
					return s
				}
			case <-deadline:
				t.Fatalf("no reading where %s", what)
			}
		}
	}
	good := func(s stamped) bool { return s.r.Meter == "m2" && s.r.Points[0].Quality == collector.Good }
	next("m2 good", good)
	srv.stop()
	down := time.Now()
	next("m2 bad while the server is down", func(s stamped) bool { return s.r.Meter == "m2" && !good(s) })
	time.Sleep(time.Until(down.Add(3 * time.Second)))
	srv.restart()
	back := time.Now()
	first := next("m2 good again", func(s stamped) bool { return s.at.After(back) && good(s) })
	took := first.at.Sub(back)
	t.Logf("first good reading %s after the device returned (interval %s, down %s)",
		took.Round(time.Millisecond), cfg.Interval, back.Sub(down).Round(time.Millisecond))
	// One interval, with tolerance for a loaded machine.
	if limit := cfg.Interval + 500*time.Millisecond; took > limit {
		t.Errorf("first good reading %s after the device returned, more than one interval (%s)", took, cfg.Interval)
	}
	// From then on, with the device up, no poll may publish a bad point.
	stopAt := time.After(4 * cfg.Interval)
	for {
		select {
		case s := <-readings:
			for _, p := range s.r.Points {
				if p.Quality != collector.Good {
					t.Errorf("bad point while the device is up: %s.%s %+v", s.r.Meter, p.Name, p)
				}
			}
			continue
		case <-stopAt:
		}
		break
	}
}

func TestCloseAfterPoll(t *testing.T) {
	srv := startServer(t, faultImage())
	cfg := faultConfig(srv.controller())
	cfg.CloseAfterPoll = true
	src, err := New(cfg, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for range 3 {
		rs, err := src.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		allGood(t, rs)
		if src.State().Connected {
			t.Error("connection still open after the poll")
		}
	}
	if n := srv.connections(); n != 3 {
		t.Errorf("server saw %d connections for 3 polls, want 3", n)
	}
	if r := src.State().Reconnects; r != 0 {
		t.Errorf("planned closes counted as %d reconnects", r)
	}
}

func TestPauses(t *testing.T) {
	srv := startServer(t, faultImage())
	cfg := faultConfig(srv.controller())
	cfg.PauseAfterConnect = 100 * time.Millisecond
	cfg.PauseBetweenRequests = 50 * time.Millisecond
	src, err := New(cfg, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	start := time.Now()
	rs, err := src.Poll(t.Context())
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	allGood(t, rs)
	// Three reads: one pause after connecting and two between reads, at the least.
	if least := 100*time.Millisecond + 2*50*time.Millisecond; took < least {
		t.Errorf("poll took %v, less than its pauses (%v): a pause was skipped", took, least)
	}
}

// TestRunSurvivesServerRestart runs the source as the edge does and restarts the server under it.
func TestRunSurvivesServerRestart(t *testing.T) {
	srv := startServer(t, faultImage())
	cfg := faultConfig(srv.controller())
	cfg.Interval = 40 * time.Millisecond
	src, err := New(cfg, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	readings := make(chan collector.Reading, 4096)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() {
		runErr = src.Run(ctx, func(r collector.Reading) {
			select {
			case readings <- r:
			default: // the test reads what it needs; never block the poller
			}
		})
	})
	waitFor := func(what string, ok func(collector.Reading) bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case r := <-readings:
				if ok(r) {
					return
				}
			case <-deadline:
				t.Fatalf("no reading where %s", what)
			}
		}
	}
	quality := func(q collector.Quality) func(collector.Reading) bool {
		return func(r collector.Reading) bool { return r.Meter == "m2" && r.Points[0].Quality == q }
	}
	waitFor("m2 is good", quality(collector.Good))
	srv.stop()
	waitFor("m2 is bad while the server is down", quality(collector.Bad))
	srv.restart()
	waitFor("m2 is good again after the restart", quality(collector.Good))
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Errorf("Run returned %v on cancellation, want nil", runErr)
	}
	if st := src.State(); st.Reconnects < 1 || st.Connected {
		t.Errorf("state after Run: %+v (want a reconnect counted and the connection closed)", st)
	}
}

func TestPollCutShort(t *testing.T) {
	srv := startServer(t, faultImage())
	src, err := New(faultConfig(srv.controller()), "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })

	// Shutting down: meters that could not be read are left out, not published as bad.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rs, err := src.Poll(ctx)
	if !errors.Is(err, context.Canceled) || len(rs) != 0 {
		t.Errorf("cancelled poll: %d readings, err %v; want none and context.Canceled", len(rs), err)
	}

	// Overrunning the poll deadline is a fault of the bus: every meter reports it.
	ctx, cancel = context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	rs, err = src.Poll(ctx)
	if err == nil || len(rs) != 2 {
		t.Fatalf("expired poll: %d readings, err %v", len(rs), err)
	}
	if p := pointOf(t, rs, "m2", "total"); p.Quality != collector.Bad || !strings.Contains(p.Error, "deadline exceeded") {
		t.Errorf("point of an expired poll: %+v", p)
	}
}
