package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpServer is a real SMTP server (emersion/go-smtp) in the test process, with STARTTLS on a
// generated certificate and PLAIN or LOGIN authentication. It refuses AUTH before STARTTLS.
type smtpServer struct {
	addr   string
	caFile string
	mu     sync.Mutex
	mails  []receivedMail
}

type receivedMail struct {
	user, mech string
	tls        bool
	from       string
	to         []string
	data       []byte
}

func startSMTP(t *testing.T, mechs []string, withTLS bool) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c, mechs: mechs}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = false
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if withTLS {
		cert, caPEM := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.caFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(s.caFile, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpServer) received() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.mails...)
}

type smtpSession struct {
	srv   *smtpServer
	conn  *smtp.Conn
	mechs []string
	cur   receivedMail
}

func (s *smtpSession) AuthMechanisms() []string { return s.mechs }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != "alerts@example.com" || pass != "pässword" {
			return errors.New("invalid credentials")
		}
		s.cur.user, s.cur.mech = user, mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, errors.New("unsupported mechanism")
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.cur.user == "" {
		return errors.New("authentication required")
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, s.cur)
	s.srv.mu.Unlock()
	s.cur = receivedMail{user: s.cur.user, mech: s.cur.mech}
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism (go-sasl has only the client).
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}

func emailNotifier(t *testing.T, s *smtpServer, lang, password string) Notifier {
	t.Helper()
	return buildOne(t, Receiver{Name: "mail", EmailConfigs: []EmailConfig{{
		To: []string{"Ops <ops@example.com>", "duty@example.com"}, From: "aqualoop <alerts@example.com>",
		Smarthost: s.addr, AuthUsername: "alerts@example.com", AuthPassword: password,
		CAFile: s.caFile, Language: lang,
	}}}, time.Now)
}

// TestEmail sends through STARTTLS with PLAIN and with LOGIN and reads the message back as a
// mail client would: headers decoded, multipart parts decoded.
func TestEmail(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		mech, lang, subject string
		text, html          []string
	}{
		{sasl.Plain, "zh", "[告警:1] leak_imbalance park-a critical",
			[]string{"park-a 发生 leak_imbalance", "处置: close valve V3", "已恢复"}, []string{"<table>", "站点", "http://console.test/alerts/1"}},
		{sasl.Login, "en", "[FIRING:1] leak_imbalance park-a critical",
			[]string{"leak_imbalance at park-a", "Runbook: close valve V3", "RESOLVED"}, []string{"<table>", "Site", `lang="en"`}},
	} {
		t.Run(tt.mech, func(t *testing.T) {
			s := startSMTP(t, []string{tt.mech}, true)
			n := emailNotifier(t, s, tt.lang, "pässword")
			if err := n.Notify(context.Background(), testMessage(t0)); err != nil {
				t.Fatal(err)
			}
			got := s.received()
			if len(got) != 1 {
				t.Fatalf("%d mails received, want 1", len(got))
			}
			m := got[0]
			if !m.tls || m.mech != tt.mech || m.user != "alerts@example.com" {
				t.Errorf("tls %v mech %q user %q: want STARTTLS and %s auth", m.tls, m.mech, m.user, tt.mech)
			}
			if m.from != "alerts@example.com" || strings.Join(m.to, ",") != "ops@example.com,duty@example.com" {
				t.Errorf("envelope from %q to %v", m.from, m.to)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(m.data))
			if err != nil {
				t.Fatal(err)
			}
			subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || subj != tt.subject {
				t.Errorf("subject %q (%v), want %q", subj, err, tt.subject)
			}
			if from, _ := msg.Header.AddressList("From"); len(from) != 1 || from[0].Address != "alerts@example.com" || from[0].Name != "aqualoop" {
				t.Errorf("From %v", from)
			}
			if to, _ := msg.Header.AddressList("To"); len(to) != 2 {
				t.Errorf("To %v", to)
			}
			if msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" {
				t.Error("Message-ID or Date missing")
			}
			mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/alternative" {
				t.Fatalf("content type %q: %v", mt, err)
			}
			mr := multipart.NewReader(msg.Body, params["boundary"])
			parts := map[string]string{}
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
				ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
				if cp["charset"] != "UTF-8" {
					t.Errorf("%s charset %q", ct, cp["charset"])
				}
				parts[ct] = string(b)
			}
			for _, w := range tt.text {
				if !strings.Contains(parts["text/plain"], w) {
					t.Errorf("text part lacks %q:\n%s", w, parts["text/plain"])
				}
			}
			for _, w := range tt.html {
				if !strings.Contains(parts["text/html"], w) {
					t.Errorf("html part lacks %q", w)
				}
			}
		})
	}
}

func TestEmailRefusals(t *testing.T) {
	t0 := time.Now()
	t.Run("no STARTTLS offered", func(t *testing.T) {
		s := startSMTP(t, []string{sasl.Plain}, false)
		err := emailNotifier(t, s, "zh", "pässword").Notify(context.Background(), testMessage(t0))
		if err == nil || Retryable(err) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("err = %v, want a permanent refusal to send without TLS", err)
		}
		if len(s.received()) != 0 {
			t.Error("mail sent without TLS")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		s := startSMTP(t, []string{sasl.Plain}, true)
		err := emailNotifier(t, s, "zh", "wrong").Notify(context.Background(), testMessage(t0))
		if err == nil || !strings.Contains(err.Error(), "auth") {
			t.Errorf("err = %v, want an auth failure", err)
		}
		if len(s.received()) != 0 {
			t.Error("mail accepted with a wrong password")
		}
	})
	t.Run("server down", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		err := emailNotifier(t, &smtpServer{addr: addr}, "zh", "x").Notify(context.Background(), testMessage(t0))
		if err == nil || !Retryable(err) {
			t.Errorf("err = %v, want a retryable connection failure", err)
		}
	})
}
