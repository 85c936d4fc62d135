package testenv

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestMosquittoTLSAndPassword(t *testing.T) {
	b := Mosquitto(t, WithTLS(), WithUser("edge", "s3cret pass"), WithUser("platform", "other"))
	if !strings.HasPrefix(b.URL(), "ssl://127.0.0.1:") {
		t.Fatalf("URL() = %q, want ssl://127.0.0.1:PORT", b.URL())
	}
	good := b.ClientTLS()
	noCert := good.Clone()
	noCert.Certificates = nil
	stranger := good.Clone()
	cert, err := tls.LoadX509KeyPair(b.TLS().OtherClientCert, b.TLS().OtherClientKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger.Certificates = []tls.Certificate{cert}

	tests := []struct {
		name           string
		tls            *tls.Config
		user, password string
		wantErr        bool
	}{
		{name: "certificate and password", tls: good, user: "edge", password: "s3cret pass"},
		{name: "second user", tls: good, user: "platform", password: "other"},
		{name: "wrong password", tls: good, user: "edge", password: "s3cret", wantErr: true},
		{name: "no credentials", tls: good, wantErr: true},
		{name: "no client certificate", tls: noCert, user: "edge", password: "s3cret pass", wantErr: true},
		{name: "certificate of another CA", tls: stranger, user: "edge", password: "s3cret pass", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("testenv-tls").
				SetTLSConfig(tt.tls).SetUsername(tt.user).SetPassword(tt.password).
				SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
			c := mqtt.NewClient(opts)
			tok := c.Connect()
			if !tok.WaitTimeout(15 * time.Second) {
				t.Fatal("connect did not complete")
			}
			err := tok.Error()
			t.Logf("connect: %v", err)
			if (err != nil) != tt.wantErr {
				t.Fatalf("connect error = %v, want error %v", err, tt.wantErr)
			}
			c.Disconnect(50)
		})
	}
}

func TestMosquittoLogShowsSessions(t *testing.T) {
	b := Mosquitto(t)
	c := connect(t, b.URL(), "testenv-persistent", false, nil)
	c.Disconnect(50)
	// Mosquitto logs the clean-session flag of each connection: c0 is a persistent session.
	if log := b.Log(); !strings.Contains(log, "as testenv-persistent (p2, c0") {
		t.Errorf("broker log has no persistent-session connect line for testenv-persistent:\n%s", log)
	}
}

func TestConnectPacket(t *testing.T) {
	tests := []struct {
		name           string
		id, user, pass string
		wantLen        []byte // the remaining-length bytes after the fixed header's first byte
		wantFlags      byte
	}{
		{name: "anonymous", id: "x", wantLen: []byte{13}, wantFlags: 0x02},
		{name: "credentials", id: "x", user: "u", pass: "p", wantLen: []byte{19}, wantFlags: 0xc2},
		{name: "two-byte length", id: "x", user: "u", pass: strings.Repeat("p", 200), wantLen: []byte{218&0x7f | 0x80, 1}, wantFlags: 0xc2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := connectPacket(tt.id, tt.user, tt.pass)
			if pkt[0] != 0x10 {
				t.Fatalf("packet type %#x, want CONNECT", pkt[0])
			}
			n := len(tt.wantLen)
			if got := pkt[1 : 1+n]; string(got) != string(tt.wantLen) {
				t.Errorf("remaining length % x, want % x", got, tt.wantLen)
			}
			body := pkt[1+n:]
			if int(tt.wantLen[0]&0x7f)+128*int(append(tt.wantLen[1:], 0)[0]) != len(body) {
				t.Errorf("remaining length does not match the body of %d bytes", len(body))
			}
			if body[7] != tt.wantFlags {
				t.Errorf("connect flags %#x, want %#x", body[7], tt.wantFlags)
			}
		})
	}
}
