package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names of the generated client certificate and key inside cert_dir.
const (
	GeneratedCertFile = "aqualoop-opcua-client.crt.pem"
	GeneratedKeyFile  = "aqualoop-opcua-client.key.pem"
)

// generatedValidity is long on purpose: a server trusts a self-signed client certificate by
// its thumbprint, and a new certificate has to be trusted again by hand on every server.
const generatedValidity = 10 * 365 * 24 * time.Hour

// identity is the client's application instance certificate (DER) and its key.
type identity struct {
	cert []byte
	key  *rsa.PrivateKey
	uri  string // the certificate's application URI, which the session must announce

	notAfter time.Time
}

// loadIdentity returns the configured certificate, or the one generated into cert_dir, making
// it on first start. generated reports that new files were written.
func loadIdentity(c *Config, now time.Time) (id *identity, generated bool, err error) {
	certPath, keyPath := c.Certificate, c.PrivateKey
	if certPath == "" {
		certPath = filepath.Join(c.CertDir, GeneratedCertFile)
		keyPath = filepath.Join(c.CertDir, GeneratedKeyFile)
		_, certErr := os.Stat(certPath)
		_, keyErr := os.Stat(keyPath)
		switch {
		case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
			id, err = generateIdentity(certPath, keyPath, now)
			return id, err == nil, err
		case errors.Is(certErr, fs.ErrNotExist) || errors.Is(keyErr, fs.ErrNotExist):
			// Never replace half of a pair: the servers trust the certificate that goes with this key.
			return nil, false, fmt.Errorf("load client certificate: %s and %s must both exist or both be absent", certPath, keyPath)
		}
	}
	id, err = readIdentity(certPath, keyPath)
	if err != nil {
		return nil, false, err
	}
	return id, false, nil
}

// readCertificate reads a PEM or DER certificate file and returns its DER bytes.
func readCertificate(path, what string) ([]byte, *x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", what, err)
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("read %s %s: PEM block is %q, not CERTIFICATE", what, path, blk.Type)
		}
		der = blk.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s %s: %w", what, path, err)
	}
	return der, cert, nil
}

// thumbprint is the SHA-1 of a DER certificate in hex, the way OPC UA tools show certificates.
func thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

func readIdentity(certPath, keyPath string) (*identity, error) {
	der, cert, err := readCertificate(certPath, "client certificate")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read client private key: %w", err)
	}
	kder := b
	if blk, _ := pem.Decode(b); blk != nil {
		kder = blk.Bytes
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(kder); err == nil {
		key = k
	} else if k8, err8 := x509.ParsePKCS8PrivateKey(kder); err8 == nil {
		rk, ok := k8.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("parse client private key %s: %T is not an RSA key, which OPC UA security policies need", keyPath, k8)
		}
		key = rk
	} else {
		return nil, fmt.Errorf("parse client private key %s: neither PKCS#1 nor PKCS#8: %w", keyPath, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("load client certificate: %s does not belong to the key in %s", certPath, keyPath)
	}
	id := &identity{cert: der, key: key, notAfter: cert.NotAfter}
	if len(cert.URIs) > 0 {
		id.uri = cert.URIs[0].String()
	}
	return id, nil
}

// generateIdentity writes a self-signed application instance certificate as OPC UA Part 6
// describes it: RSA 2048 with SHA-256 (what Basic256Sha256 and the Aes policies require), the
// application URI in subjectAltName, usable for both client and server authentication.
func generateIdentity(certPath, keyPath string, now time.Time) (*identity, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	uri := &url.URL{Scheme: "urn", Opaque: "aqualoop:edge:" + strings.ToLower(host)}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "aqualoop edge " + host, Organization: []string{"aqualoop"}},
		NotBefore:    now.Add(-time.Hour), // tolerate a server clock slightly behind ours
		NotAfter:     now.Add(generatedValidity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{host},
		URIs:                  []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create client certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return nil, fmt.Errorf("create cert_dir: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return &identity{cert: der, key: key, uri: uri.String(), notAfter: tmpl.NotAfter}, nil
}

// writeFileAtomic writes through a temporary file and a rename, so that a crash never leaves a
// truncated key behind for the next start to choke on.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
