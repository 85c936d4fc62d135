package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the cert and key files.
func writeCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aqualoop-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, keyf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyf
}

// platformFile writes an aqualoop.yaml for the demo site with its SQLite store (and state.db)
// in dir, plus extra YAML, and returns its path.
func platformFile(t *testing.T, dir, extra string) string {
	t.Helper()
	site, _ := filepath.Abs("../../configs/demo/site.yaml")
	body := "sites: [" + site + "]\ningest:\n  mqtt:\n    servers: [\"tcp://127.0.0.1:1\"]\n    client_id: test-" + strings.ReplaceAll(t.Name(), "/", "-") +
		"\n    max_reconnect_interval: 1s\ndata_dir: " + dir + "\nsqlite:\n  path: aqualoop.db\n" + extra
	p := filepath.Join(dir, "aqualoop.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs serve on cfg until the test ends and returns its address.
func startServe(t *testing.T, cfg *platformConfig, o serveOptions) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.Ready = func(a string) { ready <- a }
	go func() { done <- serve(ctx, cfg, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve not ready")
	}
	return ""
}

type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func (c client) do(method, path, token, ctype, body string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestServeSecured runs serve as an operator would off loopback: HTTPS, tokens made with the
// token command, the embedded broker with accounts. It checks the whole path of a request:
// TLS and headers, roles, JSON-only writes, bad input, revocation, the audit log and readiness.
func TestServeSecured(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	path := platformFile(t, dir, "http:\n  listen: 127.0.0.1:0\n  tls:\n    cert_file: "+cert+"\n    key_file: "+key+
		"\nbroker:\n  listen: 127.0.0.1:0\n  tls:\n    cert_file: "+cert+"\n    key_file: "+key+"\n  users:\n    demo: \""+hashMosquittoPassword("edge-pw")+"\"\n")

	var out, errb bytes.Buffer
	if code := run([]string{"token", "create", "--config", path, "--name", "ops", "--role", "viewer", "--sites", "demo", "--expires", "30d"}, &out, &errb); code != 0 {
		t.Fatalf("token create: %d %s", code, errb.String())
	}
	viewer := regexp.MustCompile(`aql_[A-Za-z0-9_-]{40,}`).FindString(out.String())
	if viewer == "" {
		t.Fatalf("token create printed no token: %s", out.String())
	}
	if code := run([]string{"token", "create", "--config", path, "--name", "x", "--role", "viewer", "--sites", "nosuchsite"}, &out, &errb); code == 0 {
		t.Error("token create accepted an unknown site")
	}

	cfg, err := loadPlatform(path)
	if err != nil {
		t.Fatal(err)
	}
	const admin = "aql_security-test-admin-token-not-secret"
	addr := startServe(t, cfg, serveOptions{Logger: testLogger(t), AdminToken: admin})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustReadFile(t, cert))
	c := client{t, "https://" + addr, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}

	code, h, b := c.do("GET", "/api/v1/sites", "", "", "")
	if code != 401 || !strings.Contains(string(b), `"unauthenticated"`) {
		t.Errorf("no token: %d %s", code, b)
	}
	if h.Get("Strict-Transport-Security") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("secure headers over TLS: %v", h)
	}
	if code, _, b := c.do("GET", "/api/v1/sites", viewer, "", ""); code != 200 || !strings.Contains(string(b), `"demo"`) {
		t.Errorf("viewer: %d %s", code, b)
	}
	input := `{"from": "2026-03", "to": "2026-04", "steam": 100}`
	for _, tt := range []struct {
		token, ctype, body string
		want               int
	}{
		{viewer, "application/json", input, 403},
		{admin, "text/plain", input, 415},
		{admin, "application/json", `{"from": "9998-01", "to": "9998-02", "steam": 1}`, 400},
		{admin, "application/json", `{"from": "2026-03", "to": "2026-04", "steam": 1.79e308}`, 400},
		{admin, "application/json", input, 200},
	} {
		if code, _, b := c.do("PUT", "/api/v1/sites/demo/inputs", tt.token, tt.ctype, tt.body); code != tt.want {
			t.Errorf("PUT inputs %s as %.12s: %d %s, want %d", tt.ctype, tt.token, code, b, tt.want)
		}
	}
	_, _, b = c.do("GET", "/api/v1/audit", admin, "", "")
	var audit []struct {
		Who    string
		Status int
	}
	if err := json.Unmarshal(b, &audit); err != nil || len(audit) != 5 || audit[0].Who != "demo" || audit[0].Status != 200 || audit[4].Who != "ops" || audit[4].Status != 403 {
		t.Errorf("audit log %s", b)
	}

	// Revoked in the state database by the command, refused by the running server.
	out.Reset()
	run([]string{"token", "list", "--config", path}, &out, &errb)
	id := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+ops\s`).FindStringSubmatch(out.String())
	if id == nil {
		t.Fatalf("token list does not show ops: %s", out.String())
	}
	if code := run([]string{"token", "revoke", "--config", path, id[1]}, &out, &errb); code != 0 {
		t.Fatalf("revoke: %s", errb.String())
	}
	if code, _, _ := c.do("GET", "/api/v1/sites", viewer, "", ""); code != 401 {
		t.Errorf("revoked viewer: %d, want 401", code)
	}

	// Ready once ingest has its broker connection (to the embedded broker, over TLS, with the
	// platform account); the gauges say the same.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _, b := c.do("GET", "/readyz", "", "", "")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %s", code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, _, b = c.do("GET", "/metrics", "", "", "")
	for _, want := range []string{"aqualoop_ready 1", "aqualoop_broker_connected 1", "aqualoop_store_write_ok 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestReadyzWhenBrokerIsDown: the process is alive, but without its broker it is not ready, it
// says why, and it logs it at once.
func TestReadyzWhenBrokerIsDown(t *testing.T) {
	dir := t.TempDir()
	cfg, err := loadPlatform(platformFile(t, dir, "http:\n  listen: 127.0.0.1:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	addr := startServe(t, cfg, serveOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := client{t, "http://" + addr, http.DefaultClient}
	if code, _, b := c.do("GET", "/healthz", "", "", ""); code != 200 || !strings.Contains(string(b), `"ok": true`) {
		t.Errorf("/healthz %d %s, want 200: the process serves", code, b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "mqtt broker unreachable") {
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged about the unreachable broker:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Liveness stays 200, and says what is wrong with the broker.
	if code, _, b := c.do("GET", "/healthz", "", "", ""); code != 200 || !strings.Contains(string(b), `"connected": false`) || !strings.Contains(string(b), `"last_error"`) {
		t.Errorf("/healthz %d %s, want 200 naming the unreachable broker", code, b)
	}
	code, _, b := c.do("GET", "/readyz", "", "", "")
	var r struct {
		OK         bool
		Components map[string]struct {
			Status    string
			LastError string `json:"last_error"`
		}
	}
	if code != 503 || json.Unmarshal(b, &r) != nil || r.OK || r.Components["broker"].Status != "fail" || r.Components["broker"].LastError == "" || r.Components["store"].Status != "ok" {
		t.Errorf("/readyz %d %s, want 503 with the broker failing", code, b)
	}
	_, _, b = c.do("GET", "/metrics", "", "", "")
	if !strings.Contains(string(b), "aqualoop_broker_connected 0") || !strings.Contains(string(b), "aqualoop_ready 0") {
		t.Errorf("/metrics does not show the broker down")
	}
}

func TestOpenModeOnlyOnLoopback(t *testing.T) {
	dir := t.TempDir()
	cfg, err := loadPlatform(platformFile(t, dir, "http:\n  listen: 127.0.0.1:0\n  auth: open\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr := startServe(t, cfg, serveOptions{Logger: testLogger(t)})
	c := client{t, "http://" + addr, http.DefaultClient}
	if code, _, b := c.do("GET", "/api/v1/sites", "", "", ""); code != 200 {
		t.Errorf("open mode on loopback: %d %s", code, b)
	}
	cfg.HTTP.Listen = "0.0.0.0:0"
	if err := serve(context.Background(), cfg, serveOptions{}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("open mode on every interface: %v, want a refusal", err)
	}
}

func TestCheckSecurity(t *testing.T) {
	dir := t.TempDir()
	bad := platformFile(t, dir, "http:\n  listen: 0.0.0.0:8080\n  auth: open\nbroker:\n  listen: 0.0.0.0:1883\n")
	var out, errb bytes.Buffer
	if code := run([]string{"check", bad}, &out, &errb); code != 1 {
		t.Fatalf("check of an open, anonymous platform: exit %d, want 1", code)
	}
	for _, want := range []string{"aqualoop.yaml:12: http.auth: open serves every caller as admin", "aqualoop.yaml:14: broker.listen: \"0.0.0.0:1883\" is not a loopback address"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, errb.String())
		}
	}
	os.Remove(bad)
	dir = t.TempDir()
	risky := platformFile(t, dir, "http:\n  listen: 0.0.0.0:8080\nbroker:\n  listen: 0.0.0.0:1883\n  users:\n    demo: \""+hashMosquittoPassword("x")+"\"\n")
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", risky}, &out, &errb); code != 0 {
		t.Fatalf("check: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"warning: http.listen 0.0.0.0:8080 is reachable from other hosts without TLS", "warning: broker.listen 0.0.0.0:1883 is reachable from other hosts without TLS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
