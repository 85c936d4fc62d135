package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for 127.0.0.1 named cn.
func writePair(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, keyf := filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyf
}

// TestCertificateReloadsWhenFilesChange serves HTTPS from two files, replaces them with another
// pair the way a renewal does (rename over), and sees the new certificate at the next handshake;
// a broken pair keeps the old one in service.
func TestCertificateReloadsWhenFilesChange(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	install := func(cn string) {
		c, k := writePair(t, dir, cn)
		if err := os.Rename(c, certFile); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(k, keyFile); err != nil {
			t.Fatal(err)
		}
	}
	install("first")
	c, err := LoadCertificate(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.every = 0 // look at the files at every handshake
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go srv.Serve(tls.NewListener(ln, c.ServerConfig()))
	t.Cleanup(func() { srv.Close() })

	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("serves %q, want first", got)
	}
	install("second")
	// Make sure the modification time differs even on a coarse clock.
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	if got := served(); got != "second" {
		t.Fatalf("after the swap serves %q, want second", got)
	}
	// A half-written certificate does not take the server down.
	os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644)
	even := later.Add(time.Minute)
	os.Chtimes(certFile, even, even)
	if got := served(); got != "second" {
		t.Fatalf("with a broken file serves %q, want second still", got)
	}
}
