package publish

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and returns the server's
// TLS configuration and the certificate's PEM file (the client's CA).
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "broker"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, ca
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestOpenConnSchemes: the connection paho gets from ClientOptions (openConn, with its read
// buffer) carries MQTT over plain TCP, TLS and WebSocket: a message published through each
// comes back to a subscriber on the same connection, many packets per read included.
func TestOpenConnSchemes(t *testing.T) {
	srvTLS, ca := selfSigned(t)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	tlsL := listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: srvTLS})
	wsAddr := freeAddr(t)
	ws := listeners.NewWebsocket(listeners.Config{ID: "ws", Address: wsAddr})
	for _, l := range []listeners.Listener{tcp, tlsL, ws} {
		if err := srv.AddListener(l); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })

	for _, c := range []struct {
		url string
		tls TLS
	}{
		{"tcp://" + tcp.Address(), TLS{}},
		{"mqtt://" + tcp.Address(), TLS{}},
		{"ssl://" + tlsL.Address(), TLS{CA: ca}},
		{"mqtts://" + tlsL.Address(), TLS{CA: ca}},
		{"ws://" + wsAddr, TLS{}},
	} {
		t.Run(strings.SplitN(c.url, ":", 2)[0], func(t *testing.T) {
			b := Broker{Servers: []string{c.url}, ClientID: "conn-" + c.url, TLS: c.tls, CleanSession: true}
			b.Default()
			o, err := b.ClientOptions()
			if err != nil {
				t.Fatal(err)
			}
			if o.CustomOpenConnectionFn == nil {
				t.Fatal("ClientOptions leaves paho to dial unbuffered")
			}
			const n = 200
			got := make(chan string, n)
			o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) })
			cl := mqtt.NewClient(o)
			if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("connect to %s: %v", c.url, tok.Error())
			}
			defer cl.Disconnect(100)
			if tok := cl.Subscribe("t/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			for i := range n {
				cl.Publish("t/x", 1, false, []byte{byte('a' + i%26)})
			}
			for i := range n {
				select {
				case p := <-got:
					if want := string(rune('a' + i%26)); p != want {
						t.Fatalf("message %d: %q, want %q", i, p, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of %d messages came back through %s", i, n, c.url)
				}
			}
		})
	}
	if _, err := openConn(mustURL(t, "quic://127.0.0.1:1"), mqtt.ClientOptions{}); err == nil {
		t.Error("openConn accepted an unknown scheme")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
