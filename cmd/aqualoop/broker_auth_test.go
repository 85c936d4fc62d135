package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/analytics/api/auth"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// TestEmbeddedBrokerEnforcesSiteACL runs the embedded broker with a password file made by the
// real mosquitto_passwd and checks the guarantees deploy/mosquitto gives: an edge logs in as its
// site and can publish only that site's topics, a wrong or missing password is refused, and the
// platform account reads everything but publishes only dead letters.
func TestEmbeddedBrokerEnforcesSiteACL(t *testing.T) {
	passwdBin := testenv.Require(t, "mosquitto_passwd")
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	for i, u := range []string{"siteA", "siteB", "aqualoop-platform"} {
		args := []string{"-b", passwd, u, "pw-" + u}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwdBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v: %s", u, err, out)
		}
	}
	// Mosquitto 1.6's salted SHA-512 ($6$) is still read, for old password files.
	if out, err := exec.Command(passwdBin, "-H", "sha512", "-b", passwd, "legacy", "pw-legacy").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd -H sha512: %v: %s", err, out)
	}
	if users, err := readPasswordFile(passwd); err != nil || !strings.HasPrefix(users["legacy"], "$6$") || !strings.HasPrefix(users["siteA"], "$7$") {
		t.Fatalf("password file %v %v", users, err)
	} else if !checkMosquittoHash(users["legacy"], []byte("pw-legacy")) || checkMosquittoHash(users["legacy"], []byte("pw-legacY")) {
		t.Error("$6$ hash from mosquitto_passwd does not verify as expected")
	}
	b, err := startBroker(brokerConfig{Listen: "127.0.0.1:0", PasswordFile: passwd, PlatformUser: "aqualoop-platform"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	connect := func(id, user, pw string, will string) (mqtt.Client, error) {
		o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetUsername(user).SetPassword(pw).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
		if will != "" {
			o.SetWill(will, "offline", 1, true)
		}
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, os.ErrDeadlineExceeded
		}
		return c, tok.Error()
	}
	// The platform logs in with the password file's account and subscribes as ingest does.
	platform, err := connect("platform", "aqualoop-platform", "pw-aqualoop-platform", "")
	if err != nil {
		t.Fatalf("platform login: %v", err)
	}
	defer platform.Disconnect(0)
	got := make(chan string, 10)
	for _, f := range []string{"$share/aqualoop/aqualoop/v1/+/meters/+", "aqualoop/v1/+/edges/+/status"} {
		tok := platform.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() })
		tok.Wait()
		if r := tok.(*mqtt.SubscribeToken).Result()[f]; tok.Error() != nil || r >= 0x80 {
			t.Fatalf("platform subscribe %s: %v, code %#x", f, tok.Error(), r)
		}
	}
	// The in-process ingest's own account works too.
	inproc, err := connect("ingest", b.user, b.password, "")
	if err != nil {
		t.Fatalf("in-process platform login: %v", err)
	}
	inproc.Disconnect(0)

	t.Run("wrong password is refused", func(t *testing.T) {
		if c, err := connect("bad", "siteA", "pw-siteB", ""); err == nil {
			c.Disconnect(0)
			t.Fatal("logged in with another site's password")
		}
	})
	t.Run("anonymous is refused", func(t *testing.T) {
		if c, err := connect("anon", "", "", ""); err == nil {
			c.Disconnect(0)
			t.Fatal("anonymous login accepted")
		}
	})
	t.Run("last will on another site's topic is refused", func(t *testing.T) {
		if c, err := connect("will", "siteA", "pw-siteA", wire.StatusTopic("siteB", "e1")); err == nil {
			c.Disconnect(0)
			t.Fatal("login with a will on site B's status accepted")
		}
	})

	edge, err := connect("edge-a", "siteA", "pw-siteA", "")
	if err != nil {
		t.Fatalf("site A login: %v", err)
	}
	defer edge.Disconnect(0)
	publish := func(c mqtt.Client, topic string) {
		t.Helper()
		c.Publish(topic, 1, false, "{}").WaitTimeout(5 * time.Second)
	}
	marker := 0
	// expectNext publishes a marker as site A's edge and checks it is the next message the
	// platform sees: anything refused before it would have arrived first (delivery is in order).
	expectNext := func(why string) {
		t.Helper()
		marker++
		want := wire.ReadingTopic("siteA", "marker"+strconv.Itoa(marker))
		publish(edge, want)
		select {
		case topic := <-got:
			if topic != want {
				t.Fatalf("platform received %s, want %s: %s", topic, want, why)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("site A's own reading %s never arrived", want)
		}
	}
	expectNext("site A's edge publishes its own readings")
	publish(edge, wire.StatusTopic("siteA", "e1"))
	if topic := <-got; topic != wire.StatusTopic("siteA", "e1") {
		t.Fatalf("got %s, want site A's status", topic)
	}
	// A refused QoS 1 publish ends an MQTT 3.1.1 session (it has no negative acknowledgement),
	// so each attempt uses a connection of its own.
	for _, topic := range []string{wire.ReadingTopic("siteB", "M1"), wire.StatusTopic("siteB", "e1"), wire.DeadLetterTopic("siteA")} {
		c, err := connect("edge-a-"+topic, "siteA", "pw-siteA", "")
		if err != nil {
			t.Fatal(err)
		}
		publish(c, topic)
		c.Disconnect(0)
		expectNext("site A's edge published " + topic)
	}
	// An edge reads nothing, not even its own site.
	tok := edge.Subscribe("aqualoop/v1/siteA/meters/+", 1, nil)
	tok.Wait()
	if r := tok.(*mqtt.SubscribeToken).Result()["aqualoop/v1/siteA/meters/+"]; r < 0x80 {
		t.Errorf("edge subscription granted (code %#x), want refused", r)
	}
	// The platform account publishes dead letters, not readings.
	c, err := connect("platform-2", "aqualoop-platform", "pw-aqualoop-platform", "")
	if err != nil {
		t.Fatal(err)
	}
	publish(c, wire.ReadingTopic("siteA", "M9"))
	c.Disconnect(0)
	expectNext("the platform account published a reading")
}

func TestBrokerACLTable(t *testing.T) {
	tests := []struct {
		user, topic string
		write, want bool
	}{
		{"demo", "aqualoop/v1/demo/meters/M1", true, true},
		{"demo", "aqualoop/v1/demo/edges/e1/status", true, true},
		{"demo", "aqualoop/v1/other/meters/M1", true, false},
		{"demo", "aqualoop/v1/demo/deadletter", true, false},
		{"demo", "aqualoop/v1/demo/meters/+", false, false},
		{"demo", "#", false, false},
		{"aqualoop-platform", "$share/g/aqualoop/v1/+/meters/+", false, true},
		{"aqualoop-platform", "aqualoop/v1/demo/meters/+", false, true},
		{"aqualoop-platform", "aqualoop/v1/#", false, false},
		{"aqualoop-platform", "aqualoop/v1/demo/deadletter", true, true},
		{"aqualoop-platform", "aqualoop/v1/demo/meters/M1", true, false},
		{"", "aqualoop/v1/demo/meters/M1", true, false},
		{"a+b", "aqualoop/v1/a+b/meters/M1", true, false},
	}
	for _, tt := range tests {
		if got := brokerACL(tt.user, "aqualoop-platform", tt.topic, tt.write); got != tt.want {
			t.Errorf("brokerACL(%q, %q, write %v) = %v, want %v", tt.user, tt.topic, tt.write, got, tt.want)
		}
	}
	// Our own $7$ hashes verify, and wrong passwords do not.
	h := hashMosquittoPassword("s3cret")
	if !checkMosquittoHash(h, []byte("s3cret")) || checkMosquittoHash(h, []byte("s3cre")) {
		t.Errorf("hash %s does not verify as expected", h)
	}
	if _, err := parseMosquittoHash("plain-password"); err == nil || !strings.Contains(err.Error(), "mosquitto_passwd") {
		t.Errorf("a plain password is accepted as a hash: %v", err)
	}
}

// TestEmbeddedBrokerTLS: with broker.tls the listener speaks only TLS, with the configured
// certificate, and still asks for the account.
func TestEmbeddedBrokerTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	b, err := startBroker(brokerConfig{Listen: "127.0.0.1:0", PlatformUser: "aqualoop-platform",
		Users: map[string]string{"demo": hashMosquittoPassword("pw")}, TLS: auth.TLSConfig{CertFile: cert, KeyFile: key}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if !strings.HasPrefix(b.URL(), "ssl://") {
		t.Fatalf("broker URL %s, want ssl://", b.URL())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustReadFile(t, cert))
	connect := func(url, pw string) error {
		o := mqtt.NewClientOptions().AddBroker(url).SetClientID("tls-" + pw).SetUsername("demo").SetPassword(pw).
			SetTLSConfig(&tls.Config{RootCAs: pool}).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return os.ErrDeadlineExceeded
		}
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	if err := connect(b.URL(), "pw"); err != nil {
		t.Fatalf("TLS login: %v", err)
	}
	if err := connect(b.URL(), "nope"); err == nil {
		t.Error("TLS login with a wrong password accepted")
	}
	if err := connect("tcp://"+b.Addr(), "pw"); err == nil {
		t.Error("plain MQTT accepted on the TLS listener")
	}
}
