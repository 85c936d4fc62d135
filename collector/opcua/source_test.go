package opcua

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
)

// waitLimit bounds every wait for something the source should do; it is a deadline against
// hanging, not a speed requirement.
const waitLimit = 20 * time.Second

// t0 is a fixed device time, so that timestamps can be compared exactly.
var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// testLogWriter sends slog output to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// running is a Source under test with everything it emitted.
type running struct {
	t   *testing.T
	src *Source
	reg *prometheus.Registry

	mu     sync.Mutex
	all    []collector.Reading
	cursor int           // readings before it have been looked at by wait
	more   chan struct{} // signalled (capacity 1) after every reading
}

// baseConfig reads meter m1 (total, flow with scale 2) from ts, fast enough for tests.
func baseConfig(ts *testServer, mode string) Config {
	return Config{
		Name:              "test",
		Endpoint:          ts.url,
		Mode:              mode,
		Interval:          100 * time.Millisecond,
		Timeout:           time.Second,
		ConnectBackoffMax: 200 * time.Millisecond,
		Meters: []Meter{{Meter: "m1", Nodes: []Node{
			{Name: "total", NodeID: nodeIDOf("m1.total"), Unit: "m3"},
			{Name: "flow", NodeID: nodeIDOf("m1.flow"), Unit: "m3/h", Scale: 2},
		}}},
	}
}

// start runs a Source for cfg until the test ends.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("bus", cfg.Name)
	src, err := New(cfg, "site1", Options{Logger: logger, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &running{t: t, src: src, reg: reg, more: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(rd collector.Reading) {
			r.mu.Lock()
			r.all = append(r.all, rd)
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after cancel")
		}
	})
	return r
}

// wait returns the next reading, in emission order, that ok accepts.
func (r *running) wait(what string, ok func(collector.Reading) bool) collector.Reading {
	r.t.Helper()
	deadline := time.After(waitLimit)
	for {
		r.mu.Lock()
		for r.cursor < len(r.all) {
			rd := r.all[r.cursor]
			r.cursor++
			if ok(rd) {
				r.mu.Unlock()
				return rd
			}
		}
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-deadline:
			r.t.Fatalf("no reading with %s; state %+v", what, r.src.State())
			return collector.Reading{}
		}
	}
}

// waitPoints waits until the newest point of every wanted meter/name, over all readings so
// far, has the wanted quality (and value for usable points, code when given).
func (r *running) waitPoints(want map[string]collector.Point) map[string]collector.Point {
	r.t.Helper()
	deadline := time.After(waitLimit)
	for {
		seen := map[string]collector.Point{}
		for _, rd := range r.readings() {
			for _, p := range rd.Points {
				seen[rd.Meter+"/"+p.Name] = p
			}
		}
		match := true
		for k, w := range want {
			p, ok := seen[k]
			if !ok || p.Quality != w.Quality || (w.Quality != collector.Bad && p.Value != w.Value) ||
				(w.Code != 0 && p.Code != w.Code) {
				match = false
			}
		}
		if match {
			return seen
		}
		select {
		case <-r.more:
		case <-deadline:
			r.t.Fatalf("points never became %v: newest seen %v; state %+v", want, seen, r.src.State())
			return nil
		}
	}
}

func (r *running) readings() []collector.Reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]collector.Reading(nil), r.all...)
}

// metric returns the value of a counter or gauge of the source's registry.
func (r *running) metric(name string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
		return sum
	}
	return 0
}

func pointOf(t *testing.T, rd collector.Reading, name string) collector.Point {
	t.Helper()
	p, ok := rd.Point(name)
	if !ok {
		t.Fatalf("reading %+v has no point %q", rd, name)
	}
	return p
}

func hasValue(name string, v float64) func(collector.Reading) bool {
	return func(rd collector.Reading) bool {
		p, ok := rd.Point(name)
		return ok && p.Quality == collector.Good && p.Value == v
	}
}

func TestCollectValuesAndTimestamps(t *testing.T) {
	ts := startServer(t, serverOpts{vars: []string{"m1.total", "m1.flow", "m2.total"}})
	for _, mode := range []string{ModeSubscribe, ModePoll} {
		for _, stamp := range []string{TimestampSource, TimestampServer} {
			t.Run(mode+"/"+stamp, func(t *testing.T) {
				src1, srv1 := t0, t0.Add(1500*time.Millisecond)
				ts.set("m1.total", 1234.5, src1, srv1)
				ts.set("m1.flow", 3.25, src1, srv1)
				ts.set("m2.total", 42, src1, srv1)
				cfg := baseConfig(ts, mode)
				cfg.Timestamp = stamp
				// ns= ids work too; without a decoy the test namespace has index 1.
				cfg.Meters = append(cfg.Meters, Meter{Meter: "m2", Nodes: []Node{{Name: "total", NodeID: "ns=1;s=m2.total"}}})
				r := start(t, cfg)

				wantTime, wantSource := src1, collector.TimeSourceDevice
				if stamp == TimestampServer {
					wantTime, wantSource = srv1, collector.TimeSourceServer
				}
				rd := r.wait("total 1234.5", hasValue("total", 1234.5))
				if rd.Site != "site1" || rd.Meter != "m1" || rd.Seq != 0 {
					t.Errorf("reading site/meter/seq = %q/%q/%d, want site1/m1/0", rd.Site, rd.Meter, rd.Seq)
				}
				if !rd.Time.Equal(wantTime) || rd.TimeSource != wantSource {
					t.Errorf("reading time = %v (%s), want %v (%s)", rd.Time, rd.TimeSource, wantTime, wantSource)
				}
				if p := pointOf(t, rd, "total"); p.Unit != "m3" || p.Code != 0 || p.Error != "" {
					t.Errorf("total = %+v, want unit m3 and no status", p)
				}
				r.waitPoints(map[string]collector.Point{
					"m1/flow":  {Quality: collector.Good, Value: 6.5}, // 3.25 · scale 2
					"m2/total": {Quality: collector.Good, Value: 42},
				})

				// A later change arrives with its own timestamps.
				src2, srv2 := t0.Add(time.Minute), t0.Add(time.Minute+time.Second)
				ts.set("m1.total", 1240, src2, srv2)
				rd = r.wait("total 1240", hasValue("total", 1240))
				want := src2
				if stamp == TimestampServer {
					want = srv2
				}
				if !rd.Time.Equal(want) {
					t.Errorf("second reading time = %v, want %v", rd.Time, want)
				}
				for _, rd := range r.readings() {
					if len(rd.Points) == 0 {
						t.Errorf("empty reading %+v", rd)
					}
				}
			})
		}
	}
}

func TestUnknownNodesAreBadOthersPublish(t *testing.T) {
	ts := startServer(t, serverOpts{vars: []string{"m1.total", "m2.total"}})
	ts.set("m1.total", 10, t0, t0)
	ts.set("m2.total", 20, t0, t0)
	for _, mode := range []string{ModeSubscribe, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			cfg := baseConfig(ts, mode)
			cfg.Meters = []Meter{
				{Meter: "m1", Nodes: []Node{
					{Name: "total", NodeID: nodeIDOf("m1.total")},
					{Name: "missing", NodeID: nodeIDOf("m1.nothing")},
					{Name: "foreign", NodeID: "nsu=urn:not:on:this:server;s=x"},
				}},
				{Meter: "m2", Nodes: []Node{{Name: "total", NodeID: nodeIDOf("m2.total")}}},
			}
			r := start(t, cfg)
			seen := r.waitPoints(map[string]collector.Point{
				"m1/total":   {Quality: collector.Good, Value: 10},
				"m1/missing": {Quality: collector.Bad, Code: uint32(ua.StatusBadNodeIDUnknown)},
				"m1/foreign": {Quality: collector.Bad, Code: uint32(ua.StatusBadNodeIDUnknown)},
				"m2/total":   {Quality: collector.Good, Value: 20},
			})
			if e := seen["m1/missing"].Error; e != "BadNodeIDUnknown" {
				t.Errorf("missing node error = %q, want BadNodeIDUnknown", e)
			}
			if e := seen["m1/foreign"].Error; !strings.Contains(e, "urn:not:on:this:server") {
				t.Errorf("foreign node error = %q, want the unknown namespace named", e)
			}
			if got := r.metric("aqualoop_opcua_bad_nodes"); got != 2 {
				t.Errorf("bad_nodes = %v, want 2", got)
			}
			if st := r.src.State(); st.BadNodes != 2 || !st.Connected {
				t.Errorf("state = %+v, want connected with 2 bad nodes", st)
			}
		})
	}
}

func TestSecurity(t *testing.T) {
	ts := startServer(t, serverOpts{security: true, user: "operator", password: "s3cret", vars: []string{"m1.total", "m1.flow"}})
	ts.set("m1.total", 77, t0, t0)
	ts.set("m1.flow", 1, t0, t0)
	for _, tc := range []struct {
		policy, mode string
	}{
		{PolicyBasic256Sha256, SecurityModeSignAndEncrypt},
		{PolicyBasic256Sha256, SecurityModeSign},
		{PolicyAes128Sha256RsaOaep, SecurityModeSignAndEncrypt},
		{PolicyAes256Sha256RsaPss, SecurityModeSignAndEncrypt},
		{PolicyBasic256, SecurityModeSignAndEncrypt},
		{PolicyNone, SecurityModeNone}, // the password is still encrypted, with the token's policy
	} {
		t.Run(tc.policy+"/"+tc.mode, func(t *testing.T) {
			cfg := baseConfig(ts, ModeSubscribe)
			cfg.SecurityPolicy, cfg.SecurityMode = tc.policy, tc.mode
			cfg.Auth, cfg.Username, cfg.Password = AuthUserName, "operator", "s3cret"
			cfg.CertDir = t.TempDir()
			r := start(t, cfg)
			r.wait("total 77", hasValue("total", 77))
			if st := r.src.State(); !st.Connected || !st.Session || st.Sessions != 1 || st.SubscriptionID == 0 {
				t.Errorf("state = %+v, want connected, one session, a subscription", st)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		cfg := baseConfig(ts, ModeSubscribe)
		cfg.SecurityPolicy, cfg.SecurityMode = PolicyBasic256Sha256, SecurityModeSignAndEncrypt
		cfg.Auth, cfg.Username, cfg.Password = AuthUserName, "operator", "wrong"
		cfg.CertDir = t.TempDir()
		r := start(t, cfg)
		deadline := time.Now().Add(waitLimit)
		for r.src.State().LastError == "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		st := r.src.State()
		if !strings.Contains(st.LastError, "BadUserAccessDenied") || !strings.Contains(st.LastError, "check username and password") {
			t.Errorf("last error = %q, want BadUserAccessDenied with a hint", st.LastError)
		}
		if strings.Contains(st.LastError, "wrong") {
			t.Errorf("last error %q shows the password", st.LastError)
		}
		if st.Connected || len(r.readings()) != 0 {
			t.Errorf("state %+v, %d readings: want no session and no readings", st, len(r.readings()))
		}
	})

	t.Run("password from file and environment", func(t *testing.T) {
		dir := t.TempDir()
		pwFile := filepath.Join(dir, "pw")
		if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(ts, ModePoll)
		cfg.Auth, cfg.Username, cfg.PasswordFile = AuthUserName, "operator", pwFile
		r := start(t, cfg)
		r.wait("total 77 with password_file", hasValue("total", 77))

		t.Setenv(PasswordEnv, "s3cret")
		cfg.PasswordFile = ""
		r = start(t, cfg)
		r.wait("total 77 with "+PasswordEnv, hasValue("total", 77))
	})

	t.Run("pinned server certificate", func(t *testing.T) {
		dir := t.TempDir()
		good := filepath.Join(dir, "server.pem")
		if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.cert}), 0o644); err != nil {
			t.Fatal(err)
		}
		other, _ := testCert(t, "urn:somebody:else")
		bad := filepath.Join(dir, "other.der")
		if err := os.WriteFile(bad, other, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(ts, ModeSubscribe)
		cfg.SecurityPolicy, cfg.SecurityMode = PolicyBasic256Sha256, SecurityModeSignAndEncrypt
		cfg.Auth, cfg.Username, cfg.Password = AuthUserName, "operator", "s3cret"
		cfg.CertDir, cfg.ServerCertificate = dir, good
		r := start(t, cfg)
		r.wait("total 77 from the pinned server", hasValue("total", 77))

		cfg.ServerCertificate = bad
		r = start(t, cfg)
		deadline := time.Now().Add(waitLimit)
		for r.src.State().LastError == "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if e := r.src.State().LastError; !strings.Contains(e, "not "+thumbprint(other)+" from server_certificate") {
			t.Errorf("last error = %q, want the certificate mismatch", e)
		}
		if len(r.readings()) != 0 {
			t.Errorf("read from a server with the wrong certificate")
		}
	})

	t.Run("anonymous refused", func(t *testing.T) {
		cfg := baseConfig(ts, ModeSubscribe)
		r := start(t, cfg)
		deadline := time.Now().Add(waitLimit)
		for r.src.State().LastError == "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if e := r.src.State().LastError; !strings.Contains(e, "BadIdentityTokenInvalid") {
			t.Errorf("last error = %q, want BadIdentityTokenInvalid", e)
		}
	})
}

func TestGeneratedClientCertificateIsReused(t *testing.T) {
	ts := startServer(t, serverOpts{security: true, certAuth: true, vars: []string{"m1.total", "m1.flow"}})
	ts.set("m1.total", 5, t0, t0)
	dir := filepath.Join(t.TempDir(), "pki")
	cfg := baseConfig(ts, ModeSubscribe)
	cfg.SecurityPolicy, cfg.SecurityMode, cfg.Auth = PolicyBasic256Sha256, SecurityModeSignAndEncrypt, AuthCertificate
	cfg.CertDir = dir

	certPath, keyPath := filepath.Join(dir, GeneratedCertFile), filepath.Join(dir, GeneratedKeyFile)
	if _, err := os.Stat(certPath); !os.IsNotExist(err) {
		t.Fatalf("certificate exists before the first start: %v", err)
	}
	r := start(t, cfg)
	r.wait("total 5 on first start", hasValue("total", 5))
	cert1, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatalf("first start left no certificate: %v", err)
	}
	key1, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("first start left no key: %v", err)
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", fi.Mode().Perm())
	}
	if !bytes.Equal(ts.identityCertsLast(), r.src.ident.cert) {
		t.Errorf("the server did not receive the generated certificate as X509 identity token")
	}

	ts.set("m1.total", 6, t0.Add(time.Second), t0.Add(time.Second))
	r2 := start(t, cfg)
	r2.wait("total 6 on second start", hasValue("total", 6))
	cert2, _ := os.ReadFile(certPath)
	key2, _ := os.ReadFile(keyPath)
	if !bytes.Equal(cert1, cert2) || !bytes.Equal(key1, key2) {
		t.Errorf("second start replaced the certificate or key instead of reusing them")
	}
	if !bytes.Equal(r.src.ident.cert, r2.src.ident.cert) {
		t.Errorf("second start presents another certificate")
	}
}

func (ts *testServer) identityCertsLast() []byte {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.identityCerts) == 0 {
		return nil
	}
	return ts.identityCerts[len(ts.identityCerts)-1]
}

func TestServerRestartWithRenumberedNamespaces(t *testing.T) {
	for _, mode := range []string{ModeSubscribe, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			vars := []string{"m1.total", "m1.flow"}
			ts := startServer(t, serverOpts{vars: vars})
			ts.set("m1.total", 100, t0, t0)
			r := start(t, baseConfig(ts, mode))
			r.wait("total 100 before the restart", hasValue("total", 100))

			ts.stop()
			// The new server lists a decoy namespace first: the test namespace moves from index 1
			// to 2, and index 1 now holds variables of the same names reading -1.
			ts2 := startServer(t, serverOpts{port: ts.port, decoyFirst: true, vars: vars})
			if ts2.ns.ID() == ts.ns.ID() {
				t.Fatalf("test namespace kept index %d", ts.ns.ID())
			}
			ts2.set("m1.total", 200, t0.Add(time.Hour), t0.Add(time.Hour))
			ts2.set("m1.flow", 4, t0.Add(time.Hour), t0.Add(time.Hour))
			r.waitPoints(map[string]collector.Point{
				"m1/total": {Quality: collector.Good, Value: 200},
				"m1/flow":  {Quality: collector.Good, Value: 8},
			})
			for _, rd := range r.readings() {
				for _, p := range rd.Points {
					if p.Quality == collector.Good && p.Value < 0 {
						t.Errorf("read the decoy namespace: %+v", rd)
					}
				}
			}
			if got := r.metric("aqualoop_opcua_reconnects_total"); got < 1 {
				t.Errorf("reconnects = %v, want at least 1", got)
			}
			if st := r.src.State(); st.Sessions < 2 || !st.Connected {
				t.Errorf("state = %+v, want a second session", st)
			}
		})
	}
}

func TestUnreachableAtStart(t *testing.T) {
	port := freePort(t)
	cfg := Config{
		Name: "late", Endpoint: fmt.Sprintf("opc.tcp://127.0.0.1:%d", port),
		Interval: 100 * time.Millisecond, Timeout: time.Second, ConnectBackoffMax: 200 * time.Millisecond,
		Meters: []Meter{{Meter: "m1", Nodes: []Node{{Name: "total", NodeID: nodeIDOf("m1.total")}}}},
	}
	r := start(t, cfg)
	deadline := time.Now().Add(waitLimit)
	for r.metric("aqualoop_opcua_connect_errors_total") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := r.src.State(); st.Connected || st.LastError == "" {
		t.Fatalf("state before the server is up = %+v, want disconnected with an error", st)
	}
	ts := startServer(t, serverOpts{port: port, vars: []string{"m1.total"}})
	ts.set("m1.total", 9, t0, t0)
	r.wait("total 9 once the server is up", hasValue("total", 9))
}

func TestSilentSubscriptionIsRecreated(t *testing.T) {
	ts := startServer(t, serverOpts{vars: []string{"m1.total", "m1.flow"}})
	ts.set("m1.total", 1, t0, t0)
	r := start(t, baseConfig(ts, ModeSubscribe))
	r.wait("total 1", hasValue("total", 1))
	first := r.src.State().SubscriptionID
	if n := ts.dropSubscriptions(); n != 1 {
		t.Fatalf("dropped %d subscriptions, want 1", n)
	}

	// Keep changing the value: the first notifications go nowhere until the source notices.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				ts.set("m1.total", 2, t0.Add(time.Duration(i)*time.Second), t0)
			}
		}
	}()
	r.wait("total 2 after the subscription was recreated", hasValue("total", 2))
	close(stop)
	<-done
	if got := r.metric("aqualoop_opcua_subscription_recreations_total"); got != 1 {
		t.Errorf("subscription recreations = %v, want 1", got)
	}
	if got := r.metric("aqualoop_opcua_reconnects_total"); got != 0 {
		t.Errorf("reconnects = %v, want 0: the session was fine", got)
	}
	st := r.src.State()
	if st.SubscriptionID == 0 || st.Sessions != 1 || !strings.Contains(st.LastError, "no data and no keep-alive") {
		t.Errorf("state = %+v (first subscription %d), want a new subscription in the same session", st, first)
	}
}

func TestOperationLimitsSplitRequests(t *testing.T) {
	names := []string{"m1.a", "m1.b", "m1.c", "m1.d", "m1.e"}
	for _, tc := range []struct {
		name string
		mode string
		opts serverOpts
		// rejected is how many requests may exceed the limit: with an unpublished limit the
		// source learns it from the first BadTooManyOperations.
		rejected int
	}{
		{name: "poll with published MaxNodesPerRead", mode: ModePoll, opts: serverOpts{maxNodesPerRead: 2}},
		{name: "poll with unpublished MaxNodesPerRead", mode: ModePoll, opts: serverOpts{maxNodesPerRead: 2, hideLimits: true}, rejected: 1},
		{name: "subscribe with published MaxMonitoredItemsPerCall", mode: ModeSubscribe, opts: serverOpts{maxItemsPerCall: 2}},
		{name: "subscribe with unpublished MaxMonitoredItemsPerCall", mode: ModeSubscribe, opts: serverOpts{maxItemsPerCall: 2, hideLimits: true}, rejected: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.vars = names
			ts := startServer(t, tc.opts)
			cfg := baseConfig(ts, tc.mode)
			cfg.Meters = []Meter{{Meter: "m1"}}
			want := map[string]collector.Point{}
			for i, n := range names {
				ts.set(n, float64(i+1), t0, t0)
				cfg.Meters[0].Nodes = append(cfg.Meters[0].Nodes, Node{Name: n[3:], NodeID: nodeIDOf(n)})
				want["m1/"+n[3:]] = collector.Point{Quality: collector.Good, Value: float64(i + 1)}
			}
			r := start(t, cfg)
			r.waitPoints(want)
			reads, monitors := ts.sizes()
			limit, sizes := tc.opts.maxNodesPerRead, reads
			if tc.mode == ModeSubscribe {
				limit, sizes = tc.opts.maxItemsPerCall, monitors
			}
			over, carried := 0, 0
			for _, n := range sizes {
				if n > limit {
					over++
				} else {
					carried += n
				}
			}
			if over > tc.rejected {
				t.Errorf("%d requests exceeded the limit %d, want at most %d (sizes %v)", over, limit, tc.rejected, sizes)
			}
			if carried < len(names) {
				t.Errorf("requests within the limit carried %d operations, want at least %d (sizes %v)", carried, len(names), sizes)
			}
		})
	}
}

func TestDeadband(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refused=%v", refuse), func(t *testing.T) {
			ts := startServer(t, serverOpts{refuseFilters: refuse, vars: []string{"m1.total", "m1.flow"}})
			ts.set("m1.total", 3, t0, t0)
			cfg := baseConfig(ts, ModeSubscribe)
			cfg.Deadband = 0.5
			r := start(t, cfg)
			r.wait("total 3", hasValue("total", 3))
			ts.mu.Lock()
			deadbands := append([]float64(nil), ts.deadbands...)
			ts.mu.Unlock()
			if len(deadbands) != 2 || deadbands[0] != 0.5 {
				t.Errorf("deadbands requested = %v, want 0.5 for both items", deadbands)
			}
			if st := r.src.State(); st.BadNodes != 0 {
				t.Errorf("bad nodes = %d, want 0: refused filters are retried without one", st.BadNodes)
			}
		})
	}
}

func TestEachChunkHalvesOnTooManyOperations(t *testing.T) {
	serverLimit := 3
	var calls [][2]int
	limit := 500
	err := eachChunk(10, &limit, func(lo, hi int) error {
		calls = append(calls, [2]int{lo, hi})
		if hi-lo > serverLimit {
			return fmt.Errorf("read: %w", ua.StatusBadTooManyOperations)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{0, 10}, {0, 5}, {0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 10}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
	if limit != 2 {
		t.Errorf("limit afterwards = %d, want 2", limit)
	}

	limit = 4
	calls = nil
	if err := eachChunk(9, &limit, func(lo, hi int) error { calls = append(calls, [2]int{lo, hi}); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[[0 4] [4 8] [8 9]]" {
		t.Errorf("calls = %v, want [[0 4] [4 8] [8 9]]", calls)
	}

	limit = 1
	boom := fmt.Errorf("boom: %w", ua.StatusBadTooManyOperations)
	if err := eachChunk(3, &limit, func(lo, hi int) error { return boom }); err != boom {
		t.Errorf("single-item BadTooManyOperations: err = %v, want it returned", err)
	}
}
