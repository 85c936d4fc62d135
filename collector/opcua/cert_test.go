package opcua

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	cfg := &Config{CertDir: dir}
	id, generated, err := loadIdentity(cfg, t0)
	if err != nil || !generated {
		t.Fatalf("first load: generated=%v err=%v, want a new certificate", generated, err)
	}
	cert, err := x509.ParseCertificate(id.cert)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || !strings.HasPrefix(cert.URIs[0].String(), "urn:aqualoop:edge:") || id.uri != cert.URIs[0].String() {
		t.Errorf("application URI = %v (%q), want urn:aqualoop:edge:<host>", cert.URIs, id.uri)
	}
	if cert.PublicKeyAlgorithm != x509.RSA || id.key.N.BitLen() != 2048 || cert.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("certificate is %v/%d bits/%v, want RSA 2048 with SHA-256", cert.PublicKeyAlgorithm, id.key.N.BitLen(), cert.SignatureAlgorithm)
	}
	if !cert.NotAfter.After(t0.Add(9*365*24*time.Hour)) || cert.KeyUsage&x509.KeyUsageDataEncipherment == 0 {
		t.Errorf("validity to %v, key usage %b: want years of validity and data encipherment", cert.NotAfter, cert.KeyUsage)
	}

	again, generated, err := loadIdentity(cfg, t0.Add(time.Hour))
	if err != nil || generated || string(again.cert) != string(id.cert) || !again.key.Equal(id.key) {
		t.Errorf("second load: generated=%v err=%v, want the same certificate and key", generated, err)
	}

	// A key in PKCS#8 given explicitly is read as well.
	pkcs8, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "key8.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	explicit := &Config{Certificate: filepath.Join(dir, GeneratedCertFile), PrivateKey: keyPath}
	if got, _, err := loadIdentity(explicit, t0); err != nil || string(got.cert) != string(id.cert) {
		t.Errorf("explicit PKCS#8 pair: err=%v", err)
	}

	// A certificate with somebody else's key is refused.
	_, otherKey := testCert(t, "urn:other")
	otherPath := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(otherPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(otherKey)}), 0o600); err != nil {
		t.Fatal(err)
	}
	explicit.PrivateKey = otherPath
	if _, _, err := loadIdentity(explicit, t0); err == nil || !strings.Contains(err.Error(), "does not belong to the key") {
		t.Errorf("mismatched pair: err=%v, want it refused", err)
	}

	// Half a generated pair is never completed behind the operator's back.
	if err := os.Remove(filepath.Join(dir, GeneratedKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadIdentity(cfg, t0); err == nil || !strings.Contains(err.Error(), "must both exist or both be absent") {
		t.Errorf("half pair: err=%v, want it refused", err)
	}
}
