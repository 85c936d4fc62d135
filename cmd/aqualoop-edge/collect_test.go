package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: "usage: aqualoop-edge"},
		{name: "unknown command", args: []string{"serve"}, wantCode: 2, wantStderr: `unknown command "serve"`},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "collect --config FILE"},
		{name: "missing config", args: []string{"collect", "--config", "/nonexistent/edge.yaml"}, wantCode: 1, wantStderr: "aqualoop-edge collect: read config"},
		{name: "bad probe slave", args: []string{"probe", "--slave", "300"}, wantCode: 1, wantStderr: "--slave 300 is not a Modbus unit id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q", stdout.String(), stderr.String(), tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// TestOutage is issue 3's outage: the real Mosquitto is stopped for more than 30 seconds and
// restarted, and the real aqualoop-edge is killed with SIGKILL and started again while the broker
// is down. Afterwards every sequence number the edge stamped has arrived at least once and none is
// missing.
func TestOutage(t *testing.T) {
	plant := testenv.Plant(t, nil)
	broker := testenv.Mosquitto(t)
	// The platform's side: a persistent session, QoS 1, a fixed client id, subscribed before the
	// edge starts, so what the broker accepted while the recorder reconnects waits for it.
	rec := newRecorder()
	sub := client(t, broker.URL(), "outage-recorder", true, rec.handle)
	subscribe(t, sub, wire.ReadingTopic("plant-a", "+"), rec.handle)

	spoolDir := filepath.Join(t.TempDir(), "spool")
	cfgPath, cfg := writeConfig(t, plant, broker.URL(), spoolDir, 200*time.Millisecond)
	meters := meterIDs(cfg)
	logPath := filepath.Join(t.TempDir(), "edge.log")

	first := startEdge(t, cfgPath, logPath)
	eventually(t, 20*time.Second, "readings of every meter", func() bool { return rec.meters() == len(meters) })
	time.Sleep(5 * time.Second)

	broker.Stop()
	down := time.Now()
	time.Sleep(5 * time.Second)
	// The killed edge must leave unsent readings behind, or the restart would prove nothing.
	unsent := first.health(t).Spool["readings"]
	if unsent == 0 {
		t.Fatal("the first edge has nothing spooled after 5 s without a broker")
	}
	first.kill(t)
	second := startEdge(t, cfgPath, logPath)
	time.Sleep(time.Until(down.Add(31 * time.Second)))
	backlog := second.health(t).Spool["readings"]
	broker.Start()
	t.Logf("broker down for %s; %.0f readings spooled when the first edge was killed, %.0f when the broker came back",
		time.Since(down).Round(time.Second), unsent, backlog)
	if backlog <= unsent {
		t.Errorf("the restarted edge holds %.0f readings, not more than the %.0f the killed one left: it did not go on spooling", backlog, unsent)
	}

	eventually(t, 30*time.Second, "the restarted edge to catch up", func() bool {
		h := second.health(t)
		return h.BrokerConnected && h.Spool["readings"] < float64(2*len(meters))
	})
	second.stop(t)

	last, pending := lastSeqs(t, cfg.Spool, meters)
	if pending > 0 {
		t.Logf("%d readings were left in the spool after the graceful stop", pending)
	}
	deadline := time.Now().Add(20 * time.Second)
	missing, beyond := rec.gaps(last)
	for len(missing) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		missing, beyond = rec.gaps(last)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var stamped uint64
	for _, m := range meters {
		stamped += last[m]
		if last[m] < 100 {
			t.Errorf("meter %s: only %d readings stamped over about 40 s at 200 ms", m, last[m])
		}
	}
	t.Logf("%d meters, %d readings stamped, %d messages received, %d duplicates", len(meters), stamped, rec.received, rec.dups)
	for _, m := range meters {
		if seqs := missing[m]; len(seqs) > 0 {
			t.Errorf("meter %s: %d of seq 1..%d never arrived: %v", m, len(seqs), last[m], seqs[:min(len(seqs), 20)])
		}
		if seqs := beyond[m]; len(seqs) > 0 {
			slices.Sort(seqs)
			t.Errorf("meter %s: received seqs %v beyond the last stamped %d", m, seqs[:min(len(seqs), 20)], last[m])
		}
	}
	if len(rec.conflicts) > 0 {
		t.Errorf("sequence numbers used for two readings: %s", strings.Join(rec.conflicts[:min(len(rec.conflicts), 10)], "; "))
	}
	if len(rec.bad) > 0 {
		t.Errorf("undecodable messages: %s", strings.Join(rec.bad, "; "))
	}
	if t.Failed() {
		t.Logf("edge log:\n%s", second.log())
	}
}

// TestStatus checks the edge's retained status: "online" when it starts, "offline" from the
// broker's last will when the edge is killed with SIGKILL, and from the edge itself when it stops.
func TestStatus(t *testing.T) {
	plant := testenv.Plant(t, nil)
	broker := testenv.Mosquitto(t)
	topic := wire.StatusTopic("plant-a", "edge-1")
	var mu sync.Mutex
	var got []string
	watch := client(t, broker.URL(), "status-watcher", false, nil)
	subscribe(t, watch, topic, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got = append(got, string(m.Payload()))
		mu.Unlock()
	})
	// next waits for the next change of status and checks it is want: the changes must come
	// exactly in the order the test expects. A repeat of the current status (the edge says
	// "online" again after its connection to the broker was renewed, as happens on a loaded
	// machine) is not a change and is passed over.
	seen, last := 0, ""
	next := func(want string) {
		t.Helper()
		for {
			eventually(t, 30*time.Second, "status "+want, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) > seen
			})
			mu.Lock()
			s := got[seen]
			seen++
			all := append([]string(nil), got...)
			mu.Unlock()
			if s == last && s != want {
				continue
			}
			if s != want {
				t.Fatalf("status #%d is %q, want %q (all: %q)", seen, s, want, all)
			}
			last = s
			return
		}
	}
	// retained is what a client subscribing now is told first.
	retained := func() string {
		t.Helper()
		ch := make(chan string, 1)
		c := client(t, broker.URL(), "status-late-"+time.Now().Format("150405.000000"), false, nil)
		defer c.Disconnect(50)
		subscribe(t, c, topic, func(_ mqtt.Client, m mqtt.Message) {
			select {
			case ch <- string(m.Payload()):
			default:
			}
		})
		select {
		case s := <-ch:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no retained status")
			return ""
		}
	}

	cfgPath, _ := writeConfig(t, plant, broker.URL(), filepath.Join(t.TempDir(), "spool"), 500*time.Millisecond)
	logPath := filepath.Join(t.TempDir(), "edge.log")

	e := startEdge(t, cfgPath, logPath)
	next(wire.StatusOnline)
	if s := retained(); s != wire.StatusOnline {
		t.Errorf("retained status %q while the edge runs, want online", s)
	}
	if !strings.Contains(broker.Log(), "as aqualoop-edge-plant-a-edge-1 (p2, c0") {
		t.Errorf("the edge did not connect with a persistent session (c0):\n%s", broker.Log())
	}

	e.kill(t)
	next(wire.StatusOffline) // the broker's last will
	if s := retained(); s != wire.StatusOffline {
		t.Errorf("retained status %q after kill -9, want the will's offline", s)
	}

	e = startEdge(t, cfgPath, logPath)
	next(wire.StatusOnline)
	e.stop(t)
	next(wire.StatusOffline) // published by the edge on its way out
	if s := retained(); s != wire.StatusOffline {
		t.Errorf("retained status %q after a graceful stop, want offline", s)
	}
	mu.Lock()
	if len(got) != seen {
		t.Errorf("statuses %q, want only online, offline, online, offline", got)
	}
	mu.Unlock()
	if n := logLines(e.log(), `msg="mqtt connected"`); n != 2 {
		t.Errorf("%d connections logged over two runs, want 2:\n%s", n, e.log())
	}
}

// TestSecuredBroker runs the edge binary against a Mosquitto that requires a client certificate
// and a password: with the password in the environment its readings arrive; with a wrong one in
// password_file it reports the refusal in its log and /healthz. No password appears in its log.
func TestSecuredBroker(t *testing.T) {
	const edgePW, platformPW, wrongPW = "Edge-Pw-31337", "Platform-Pw-4242", "Wrong-Pw-0000"
	plant := testenv.Plant(t, nil)
	broker := testenv.Mosquitto(t, testenv.WithTLS(), testenv.WithUser("edge", edgePW), testenv.WithUser("platform", platformPW))
	files := broker.TLS()
	t.Setenv("AQUALOOP_TEST_MQTT_PASSWORD", edgePW) // inherited by the edge process
	wrongFile := filepath.Join(t.TempDir(), "wrong.pw")
	if err := os.WriteFile(wrongFile, []byte(wrongPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secure := func(c *edge.Config) {
		c.MQTT.Username = "edge"
		c.MQTT.PasswordEnv = "AQUALOOP_TEST_MQTT_PASSWORD"
		c.MQTT.TLS = publish.TLS{CA: files.CA, Certificate: files.ClientCert, Key: files.ClientKey}
	}
	wrong := func(c *edge.Config) { c.MQTT.PasswordEnv, c.MQTT.PasswordFile = "", wrongFile }

	var mu sync.Mutex
	meters := map[string]bool{}
	opts := mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("secured-platform").
		SetTLSConfig(broker.ClientTLS()).SetUsername("platform").SetPassword(platformPW).SetConnectTimeout(5 * time.Second)
	sub := mqtt.NewClient(opts)
	if tok := sub.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("platform connect: %v", tok.Error())
	}
	t.Cleanup(func() { sub.Disconnect(50) })
	subscribe(t, sub, wire.ReadingTopic("plant-a", "+"), func(_ mqtt.Client, m mqtt.Message) {
		if r, err := wire.Decode(m.Payload()); err == nil {
			mu.Lock()
			meters[r.Meter] = true
			mu.Unlock()
		}
	})

	cfgPath, cfg := writeConfig(t, plant, broker.URL(), filepath.Join(t.TempDir(), "spool"), 200*time.Millisecond, secure)
	e := startEdge(t, cfgPath, filepath.Join(t.TempDir(), "edge.log"))
	eventually(t, 30*time.Second, "readings of every meter over TLS", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(meters) == len(meterIDs(cfg))
	})
	e.stop(t)
	goodLog := e.log()

	cfgPath, _ = writeConfig(t, plant, broker.URL(), filepath.Join(t.TempDir(), "spool"), 200*time.Millisecond, secure, wrong)
	e = startEdge(t, cfgPath, filepath.Join(t.TempDir(), "edge.log"))
	var h struct {
		BrokerError string `json:"broker_error"`
	}
	eventually(t, 30*time.Second, "the refusal in /healthz", func() bool {
		resp, err := http.Get("http://" + e.addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.BrokerError != ""
	})
	if !strings.Contains(h.BrokerError, "not Authorized") {
		t.Errorf("broker_error %q, want the broker's refusal", h.BrokerError)
	}
	e.stop(t)
	badLog := e.log()
	if n := logLines(badLog, `level=ERROR msg="mqtt broker refused the connection, check username and password; retrying"`); n != 1 {
		t.Errorf("%d error records of the refusal, want 1:\n%s", n, badLog)
	}
	for _, pw := range []string{edgePW, platformPW, wrongPW} {
		if strings.Contains(goodLog+badLog, pw) {
			t.Errorf("a password appears in the edge's log:\n%s\n%s", goodLog, badLog)
		}
	}
}
