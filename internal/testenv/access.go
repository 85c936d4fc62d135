package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// MosquittoOption changes how Mosquitto sets up its broker.
type MosquittoOption func(*mosquittoOptions)

type mosquittoOptions struct {
	tls   bool
	users []account
}

type account struct{ name, password string }

// WithTLS makes the broker listen with TLS only and require a client certificate. A CA, a server
// certificate for 127.0.0.1 and localhost, and a client certificate are generated for the test;
// Broker.TLS names their files.
func WithTLS() MosquittoOption {
	return func(o *mosquittoOptions) { o.tls = true }
}

// WithUser adds an account to the broker's password file, made with the mosquitto_passwd tool
// shipped with Mosquitto, and turns anonymous access off.
func WithUser(name, password string) MosquittoOption {
	return func(o *mosquittoOptions) { o.users = append(o.users, account{name, password}) }
}

// TLSFiles are the PEM files of a broker started WithTLS.
type TLSFiles struct {
	CA         string // signs the server and the client certificate
	ServerCert string
	ServerKey  string
	ClientCert string // accepted by the broker
	ClientKey  string
	// OtherClientCert and OtherClientKey are a client certificate from another CA, which the
	// broker refuses.
	OtherClientCert string
	OtherClientKey  string
}

// TLS names the certificate files of a broker started WithTLS; it is the zero value otherwise.
func (b *Broker) TLS() TLSFiles { return b.tlsFiles }

// ClientTLS is a TLS configuration that trusts the broker's CA and presents the client
// certificate, for a test's own MQTT client. It is nil for a broker without TLS.
func (b *Broker) ClientTLS() *tls.Config {
	b.t.Helper()
	if !b.opts.tls {
		return nil
	}
	cfg, err := clientTLS(b.tlsFiles)
	if err != nil {
		b.t.Fatalf("client tls config: %v", err)
	}
	return cfg
}

func clientTLS(f TLSFiles) (*tls.Config, error) {
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no certificate", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// prepareAccess writes the certificates and the password file the options ask for.
func (b *Broker) prepareAccess() error {
	if b.opts.tls {
		files, err := writePKI(filepath.Join(b.dir, "tls"))
		if err != nil {
			return err
		}
		b.tlsFiles = files
	}
	if len(b.opts.users) > 0 {
		bin := Require(b.t, "mosquitto_passwd")
		path := filepath.Join(b.dir, "passwd")
		for i, u := range b.opts.users {
			args := []string{"-b", path, u.name, u.password}
			if i == 0 {
				args = append([]string{"-c"}, args...)
			}
			// The password is an argument here only because this is a test's throwaway account.
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				return fmt.Errorf("mosquitto_passwd for %s: %w: %s", u.name, err, strings.TrimSpace(string(out)))
			}
		}
	}
	return nil
}

// accessConfig is the part of mosquitto.conf that says who may connect and how.
func (b *Broker) accessConfig() string {
	var s strings.Builder
	if b.opts.tls {
		fmt.Fprintf(&s, "cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
			b.tlsFiles.CA, b.tlsFiles.ServerCert, b.tlsFiles.ServerKey)
	}
	if len(b.opts.users) > 0 {
		fmt.Fprintf(&s, "allow_anonymous false\npassword_file %s\n", filepath.Join(b.dir, "passwd"))
	} else {
		s.WriteString("allow_anonymous true\n")
	}
	return s.String()
}

// dial opens a connection to the broker, TLS with the client certificate when it has one.
func (b *Broker) dial(ctx context.Context) (net.Conn, error) {
	if !b.opts.tls {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", b.Addr())
	}
	cfg, err := clientTLS(b.tlsFiles)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{Config: cfg}
	return d.DialContext(ctx, "tcp", b.Addr())
}

// connectPacket is an MQTT 3.1.1 CONNECT with a clean session, a 10 s keep-alive and, when user
// is not empty, a user name and password.
func connectPacket(id, user, password string) []byte {
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	flags := byte(0x02)
	if user != "" {
		flags |= 0x80 | 0x40
	}
	body := str(nil, "MQTT")
	body = append(body, 4, flags, 0, 10)
	body = str(body, id)
	if user != "" {
		body = str(body, user)
		body = str(body, password)
	}
	pkt := []byte{0x10}
	for n := len(body); ; {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		pkt = append(pkt, d)
		if n == 0 {
			break
		}
	}
	return append(pkt, body...)
}

// writePKI generates a CA with a server and a client certificate, and a client certificate of an
// unrelated CA, into dir.
func writePKI(dir string) (TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return TLSFiles{}, err
	}
	f := TLSFiles{
		CA:              filepath.Join(dir, "ca.pem"),
		ServerCert:      filepath.Join(dir, "server.pem"),
		ServerKey:       filepath.Join(dir, "server-key.pem"),
		ClientCert:      filepath.Join(dir, "client.pem"),
		ClientKey:       filepath.Join(dir, "client-key.pem"),
		OtherClientCert: filepath.Join(dir, "other-client.pem"),
		OtherClientKey:  filepath.Join(dir, "other-client-key.pem"),
	}
	ca, caKey, err := newCA("aqualoop test CA")
	if err != nil {
		return TLSFiles{}, err
	}
	if err := writePEM(f.CA, "CERTIFICATE", ca.Raw); err != nil {
		return TLSFiles{}, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := issue(server, ca, caKey, f.ServerCert, f.ServerKey); err != nil {
		return TLSFiles{}, err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "aqualoop-test-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := issue(client, ca, caKey, f.ClientCert, f.ClientKey); err != nil {
		return TLSFiles{}, err
	}
	other, otherKey, err := newCA("unrelated CA")
	if err != nil {
		return TLSFiles{}, err
	}
	stranger := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "stranger"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := issue(stranger, other, otherKey, f.OtherClientCert, f.OtherClientKey); err != nil {
		return TLSFiles{}, err
	}
	return f, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// issue signs tmpl with the CA and writes the certificate and a new key.
func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return err
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyPath, "PRIVATE KEY", pkcs8)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
