package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// recorder stands in for the test in Require, to see whether it skipped or failed.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name        string
		binary      string
		ci          string
		wantSkip    bool
		wantFail    bool
		wantMsgPart string
	}{
		{name: "missing, local", binary: "aqualoop-no-such-binary", wantSkip: true, wantMsgPart: "not found"},
		{name: "missing, CI", binary: "aqualoop-no-such-binary", ci: "true", wantFail: true, wantMsgPart: "CI is set"},
		{name: "missing, any CI value, says how to install", binary: "aqualoop-no-such-binary", ci: "1", wantFail: true, wantMsgPart: "install it"},
		{name: "present", binary: "sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			path := Require(r, tt.binary)
			if r.skipped != tt.wantSkip || r.failed != tt.wantFail {
				t.Fatalf("skipped=%v failed=%v (%q), want skipped=%v failed=%v", r.skipped, r.failed, r.msg, tt.wantSkip, tt.wantFail)
			}
			if !strings.Contains(r.msg, tt.wantMsgPart) {
				t.Errorf("message %q does not contain %q", r.msg, tt.wantMsgPart)
			}
			if !tt.wantSkip && !tt.wantFail && path == "" {
				t.Errorf("Require(%q) returned no path", tt.binary)
			}
		})
	}
}

func TestRequireLooksBeyondPATH(t *testing.T) {
	// go install puts influxd in $GOBIN or $(go env GOPATH)/bin, which is often not in PATH.
	dir := t.TempDir()
	bin := filepath.Join(dir, "aqualoop-fake-server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent")
	t.Setenv("GOBIN", dir)
	r := &recorder{TB: t}
	if p := Require(r, "aqualoop-fake-server"); p != bin || r.skipped || r.failed {
		t.Errorf("Require = %q (skipped=%v failed=%v %s), want %q", p, r.skipped, r.failed, r.msg, bin)
	}
}

func connect(t *testing.T, broker, id string, clean bool, onMsg mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	if onMsg != nil {
		opts.SetDefaultPublishHandler(onMsg)
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, broker, tok.Error())
	}
	return c
}

func TestMosquittoRestartKeepsQueuedMessages(t *testing.T) {
	b := Mosquitto(t)
	u := b.URL()
	if !strings.HasPrefix(u, "tcp://127.0.0.1:") || strings.TrimPrefix(u, "tcp://") != b.Addr() {
		t.Fatalf("URL() = %q, Addr() = %q", u, b.Addr())
	}
	const topic = "testenv/queued"

	// A persistent session subscribes, then goes away.
	sub := connect(t, u, "testenv-sub", false, nil)
	if tok := sub.Subscribe(topic, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)

	// A QoS 1 message is queued for it while it is offline.
	pub := connect(t, u, "testenv-pub", true, nil)
	if tok := pub.Publish(topic, 1, false, "kept across restart"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(100)

	b.Stop()
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("a stopped broker still accepts connections on %s", b.Addr())
	}
	b.Start()
	if b.URL() != u {
		t.Fatalf("restarted on %s, want %s", b.URL(), u)
	}

	got := make(chan string, 1)
	sub = connect(t, u, "testenv-sub", false, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	defer sub.Disconnect(100)
	select {
	case p := <-got:
		if p != "kept across restart" {
			t.Errorf("received %q", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the queued QoS 1 message did not survive the broker restart")
	}
}

func TestInfluxDBCreateDatabase(t *testing.T) {
	in := InfluxDB(t)
	names := []string{"plain", "site-a.v1"}
	for _, n := range names {
		in.CreateDatabase(t, n)
	}

	resp, err := http.Get(in.URL() + "/query?" + url.Values{"q": {"SHOW DATABASES"}}.Encode())
	if err != nil {
		t.Fatalf("SHOW DATABASES: %v", err)
	}
	defer resp.Body.Close()
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]string `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode SHOW DATABASES: %v", err)
	}
	var have []string
	for _, res := range r.Results {
		for _, s := range res.Series {
			for _, v := range s.Values {
				have = append(have, v...)
			}
		}
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			t.Errorf("SHOW DATABASES = %q, missing %q", have, n)
		}
	}
}
