package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// file is a config file holding only a broker section.
type file struct {
	MQTT Broker `yaml:"mqtt"`
}

func (f *file) Default()                    { f.MQTT.Default() }
func (f *file) Validate(p *config.Problems) { f.MQTT.Validate(p, "mqtt") }

func TestBrokerConfig(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		want    func(b Broker) string // a complaint about the decoded config, "" if fine
		wantErr []string
	}{
		{
			name: "defaults: QoS 1 and a persistent session",
			in:   "mqtt: {servers: [tcp://127.0.0.1:1883]}",
			want: func(b Broker) string {
				if b.QoS != 1 || b.CleanSession || b.KeepAlive != 30*time.Second || b.Timeout != 10*time.Second || b.MaxReconnectInterval != 30*time.Second {
					return fmt.Sprintf("defaults %+v", b)
				}
				return ""
			},
		},
		{
			name: "explicit values stay",
			in:   "mqtt: {servers: [ssl://broker:8883], qos: 2, clean_session: true, keep_alive: 5s, password_file: " + pwFile + "}",
			want: func(b Broker) string {
				if b.QoS != 2 || !b.CleanSession || b.KeepAlive != 5*time.Second {
					return fmt.Sprintf("decoded %+v", b)
				}
				return ""
			},
		},
		{name: "no server", in: "mqtt: {qos: 1}", wantErr: []string{"mqtt.servers: at least one broker URL is required"}},
		{name: "bad scheme", in: "mqtt: {servers: [http://x:1883]}", wantErr: []string{`mqtt.servers[0]: scheme "http" is not one of`}},
		{name: "not a URL", in: "mqtt: {servers: [broker]}", wantErr: []string{`mqtt.servers[0]: "broker" is not a URL`}},
		{name: "qos 3", in: "mqtt: {servers: [tcp://x:1], qos: 3}", wantErr: []string{"mqtt.qos: 3 is not 0, 1 or 2"}},
		{
			name:    "unreadable files",
			in:      "mqtt: {servers: [tcp://x:1], password_file: /nonexistent/pw, tls: {ca: /nonexistent/ca.pem}}",
			wantErr: []string{"mqtt.password_file: cannot be read", "mqtt.tls.ca: cannot be read"},
		},
		{
			name:    "certificate without key",
			in:      "mqtt: {servers: [tcp://x:1], tls: {certificate: " + pwFile + "}}",
			wantErr: []string{"mqtt.tls: certificate and key go together"},
		},
		{name: "unknown key", in: "mqtt: {servers: [tcp://x:1], pasword: x}", wantErr: []string{"pasword"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := config.Parse("edge.yaml", []byte(tt.in), &f)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if msg := tt.want(f.MQTT); msg != "" {
					t.Error(msg)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %s", tt.in)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AQUALOOP_TEST_MQTT_PW", "from-env")
	tests := []struct {
		name    string
		in      Broker
		want    string
		wantErr string
	}{
		{name: "inline", in: Broker{Password: "inline"}, want: "inline"},
		{name: "file wins over inline, line end trimmed", in: Broker{Password: "inline", PasswordFile: pwFile}, want: "from-file"},
		{name: "environment wins", in: Broker{Password: "inline", PasswordFile: pwFile, PasswordEnv: "AQUALOOP_TEST_MQTT_PW"}, want: "from-env"},
		{name: "unset variable falls back to the file", in: Broker{PasswordFile: pwFile, PasswordEnv: "AQUALOOP_TEST_UNSET"}, want: "from-file"},
		{name: "missing file", in: Broker{PasswordFile: filepath.Join(dir, "none")}, wantErr: "read password_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.password()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("password() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConnectErrorKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "not authorized", err: packets.ErrorRefusedNotAuthorised, want: ConnectRefused},
		{name: "bad password", err: fmt.Errorf("connect: %w", packets.ErrorRefusedBadUsernameOrPassword), want: ConnectRefused},
		{name: "client id rejected", err: packets.ErrorRefusedIDRejected, want: ConnectRefused},
		{name: "unknown server CA", err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, want: ConnectTLS},
		{name: "broker alert", err: errors.New("network Error : remote error: tls: certificate required"), want: ConnectTLS},
		{name: "refused port", err: errors.New("network Error : dial tcp 127.0.0.1:1: connect: connection refused"), want: ConnectNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connectErrorKind(tt.err); got != tt.want {
				t.Errorf("connectErrorKind(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestSecuredBroker connects to a Mosquitto that requires a client certificate and a password,
// and checks that the right credentials work from a file and from the environment, that wrong
// ones are refused with an error naming the cause, and that no password reaches a log or error.
func TestSecuredBroker(t *testing.T) {
	const edgePW, platformPW, wrongPW = "Edge-Secret-4711", "Platform-Secret-0815", "Wrong-Secret-1234"
	b := testenv.Mosquitto(t, testenv.WithTLS(), testenv.WithUser("edge", edgePW), testenv.WithUser("platform", platformPW))
	files := b.TLS()
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodFile, wrongFile := writeFile("edge.pw", edgePW+"\n"), writeFile("wrong.pw", wrongPW+"\n")
	t.Setenv("AQUALOOP_TEST_EDGE_PW", edgePW)
	withCert := TLS{CA: files.CA, Certificate: files.ClientCert, Key: files.ClientKey}

	tests := []struct {
		name     string
		cfg      Broker
		wantKind string // "" for a connection that must succeed
		wantErr  string // in LastError and in the logged error
		wantLog  string // the message logged at error level
	}{
		{name: "certificate and password_file", cfg: Broker{Username: "edge", PasswordFile: goodFile, TLS: withCert}},
		{name: "certificate and password_env", cfg: Broker{Username: "edge", PasswordEnv: "AQUALOOP_TEST_EDGE_PW", TLS: withCert}},
		{
			name: "wrong password", cfg: Broker{Username: "edge", PasswordFile: wrongFile, TLS: withCert},
			wantKind: ConnectRefused, wantErr: "not Authorized", wantLog: "mqtt broker refused the connection",
		},
		{
			name: "no client certificate", cfg: Broker{Username: "edge", PasswordFile: goodFile, TLS: TLS{CA: files.CA}},
			wantKind: ConnectTLS, wantErr: "certificate required", wantLog: "mqtt tls handshake failed",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			reg := prometheus.NewRegistry()
			cfg := tt.cfg
			cfg.Servers = []string{b.URL()}
			cfg.ClientID = fmt.Sprintf("edge-secured-%d", i)
			cfg.MaxReconnectInterval = time.Second
			cfg.Default()
			p, err := New(cfg, "plant-a", "edge-1", newLogger(&logs), NewMetrics(reg))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			stop := runPublisher(t, p)
			var errs []string
			if tt.wantKind == "" {
				sub := subscribe(t, b.URL(), b.ClientTLS(), "platform", platformPW, wire.ReadingTopic("plant-a", "+"))
				eventually(t, "publisher connected", p.Connected)
				r := reading("M01", 1)
				if err := p.Publish(context.Background(), r); err != nil {
					t.Fatalf("Publish over TLS: %v", err)
				}
				eventually(t, "reading received", func() bool { return len(sub.payloads(wire.ReadingTopic("plant-a", "M01"))) == 1 })
				got, err := wire.Decode([]byte(sub.payloads(wire.ReadingTopic("plant-a", "M01"))[0]))
				if err != nil || got.Seq != 1 || got.Meter != "M01" {
					t.Errorf("received %+v, %v", got, err)
				}
			} else {
				eventually(t, "a failed connection attempt", func() bool { return p.LastError() != "" })
				// Paho retries every second; wait for a second attempt to see it is not logged again.
				eventually(t, "a second attempt", func() bool {
					return counterValue(t, reg, "aqualoop_edge_broker_connect_failures_total", "kind", tt.wantKind) >= 2
				})
				if p.Connected() {
					t.Fatal("connected with wrong credentials")
				}
				if got := p.LastError(); !strings.Contains(got, tt.wantErr) {
					t.Errorf("LastError() = %q, want it to contain %q", got, tt.wantErr)
				}
				if err := p.Publish(context.Background(), reading("M01", 1)); !errors.Is(err, ErrOffline) {
					t.Errorf("Publish while refused = %v, want ErrOffline", err)
				} else {
					errs = append(errs, err.Error())
				}
				recs := logs.records(t, tt.wantLog)
				if len(recs) != 1 {
					t.Fatalf("%d records %q, want exactly one (first failure only); log:\n%s", len(recs), tt.wantLog, logs.String())
				}
				if recs[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(recs[0]["err"]), tt.wantErr) {
					t.Errorf("logged %v, want level ERROR and err containing %q", recs[0], tt.wantErr)
				}
				errs = append(errs, p.LastError())
			}
			stop()
			for _, pw := range []string{edgePW, platformPW, wrongPW} {
				if strings.Contains(logs.String(), pw) {
					t.Errorf("a password appears in the log:\n%s", logs.String())
				}
				for _, e := range errs {
					if strings.Contains(e, pw) {
						t.Errorf("a password appears in the error %q", e)
					}
				}
			}
		})
	}
}

// TestStatusAndPersistentSession runs a publisher against a real broker: it announces itself
// online (retained), connects with a persistent session, delivers readings with QoS 1, and says
// offline when it stops.
func TestStatusAndPersistentSession(t *testing.T) {
	b := testenv.Mosquitto(t)
	status := wire.StatusTopic("plant-a", "edge-1")
	sub := subscribe(t, b.URL(), nil, "", "", "aqualoop/v1/plant-a/#")

	cfg := Broker{Servers: []string{b.URL()}}
	cfg.Default()
	var logs logBuffer
	p, err := New(cfg, "plant-a", "edge-1", newLogger(&logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := runPublisher(t, p)
	eventually(t, "online status", func() bool { return len(sub.payloads(status)) > 0 })
	if got := sub.payloads(status); got[0] != wire.StatusOnline {
		t.Fatalf("status %q, want %q first", got, wire.StatusOnline)
	}
	// The default client id is derived from site and edge; c0 is Mosquitto's mark of a
	// persistent session (clean_session false).
	if !strings.Contains(b.Log(), "as aqualoop-edge-plant-a-edge-1 (p2, c0") {
		t.Errorf("the broker saw no persistent session for aqualoop-edge-plant-a-edge-1:\n%s", b.Log())
	}

	eventually(t, "connected", p.Connected)
	var readings []collector.Reading
	for seq := uint64(1); seq <= 50; seq++ {
		readings = append(readings, reading("M07", seq))
	}
	n, err := p.PublishAll(context.Background(), readings)
	if err != nil || n != len(readings) {
		t.Fatalf("PublishAll = %d, %v; want %d acknowledged", n, err, len(readings))
	}
	topic := wire.ReadingTopic("plant-a", "M07")
	eventually(t, "50 readings", func() bool { return len(sub.payloads(topic)) == 50 })
	for i, pl := range sub.payloads(topic) {
		r, err := wire.Decode([]byte(pl))
		if err != nil || r.Seq != uint64(i+1) {
			t.Fatalf("message %d: seq %d, %v; want %d in order", i, r.Seq, err, i+1)
		}
	}

	stop()
	eventually(t, "offline status", func() bool {
		got := sub.payloads(status)
		return got[len(got)-1] == wire.StatusOffline
	})
	// Retained: a client that subscribes later learns the edge is offline.
	late := subscribe(t, b.URL(), nil, "", "", status)
	eventually(t, "retained offline status", func() bool { return len(late.payloads(status)) > 0 })
	if got := late.payloads(status); got[0] != wire.StatusOffline {
		t.Errorf("retained status %q, want %q", got[0], wire.StatusOffline)
	}
	if p.Connected() {
		t.Error("Connected() after Run returned")
	}
	if n, err := p.PublishAll(context.Background(), readings[:1]); n != 0 || !errors.Is(err, ErrOffline) {
		t.Errorf("PublishAll after stop = %d, %v; want 0, ErrOffline", n, err)
	}
}
