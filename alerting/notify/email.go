package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"time"
)

// Email sends multipart/alternative mail (plain text and HTML, UTF-8) over SMTP with STARTTLS
// (or implicit TLS on port 465) and PLAIN or LOGIN authentication, whichever the server offers.
type Email struct {
	cfg      EmailConfig
	password string
	tls      *tls.Config
	render   renderer
	now      func() time.Time
	timeout  time.Duration
}

var _ Notifier = (*Email)(nil)

// NewEmail builds an e-mail integration.
func NewEmail(c *EmailConfig, r renderer, now func() time.Time, timeout time.Duration) (*Email, error) {
	pw, err := resolveSecret(c.AuthPassword, c.AuthPasswordFile, c.AuthPasswordEnv)
	if err != nil {
		return nil, err
	}
	host, _, err := splitHostPort(c.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("smarthost: %w", err)
	}
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return &Email{cfg: *c, password: pw, tls: tc, render: r, now: now, timeout: timeout}, nil
}

// Notify sends m to every address of the config in one message.
func (e *Email) Notify(ctx context.Context, m *Message) error {
	msg, err := e.compose(m)
	if err != nil {
		return Permanent(err)
	}
	return e.send(ctx, msg)
}

func (e *Email) compose(m *Message) ([]byte, error) {
	from, err := mail.ParseAddress(e.cfg.From)
	if err != nil {
		return nil, fmt.Errorf("parse from: %w", err)
	}
	var to []string
	for _, a := range e.cfg.To {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("parse to: %w", err)
		}
		to = append(to, addr.String())
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	hdr("From", from.String())
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.BEncoding.Encode("UTF-8", e.render.Title(m)))
	hdr("Date", e.now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+randomID()+"@aqualoop>")
	hdr("MIME-Version", "1.0")
	hdr("X-Aqualoop-Group-Key", mime.QEncoding.Encode("UTF-8", m.GroupKey))
	hdr("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	buf.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{
		{"text/plain; charset=UTF-8", e.render.Text(m)},
		{"text/html; charset=UTF-8", e.render.HTML(m)},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose mail: %w", err)
	}
	return buf.Bytes(), nil
}

func (e *Email) send(ctx context.Context, msg []byte) (err error) {
	host, port, _ := splitHostPort(e.cfg.Smarthost)
	dctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var conn net.Conn
	if port == "465" {
		conn, err = (&tls.Dialer{Config: e.tls}).DialContext(dctx, "tcp", e.cfg.Smarthost)
	} else {
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", e.cfg.Smarthost)
	}
	if err != nil {
		return fmt.Errorf("connect to smtp %s: %w", e.cfg.Smarthost, err)
	}
	dl, _ := dctx.Deadline()
	_ = conn.SetDeadline(dl)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpErr("greet", e.cfg.Smarthost, err)
	}
	defer c.Close()
	if err := c.Hello(cmpOr(e.cfg.Hello, "localhost")); err != nil {
		return smtpErr("hello", e.cfg.Smarthost, err)
	}
	if _, isTLS := c.TLSConnectionState(); !isTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(e.tls); err != nil {
				return smtpErr("starttls", e.cfg.Smarthost, err)
			}
		} else if *e.cfg.RequireTLS {
			return Permanent(fmt.Errorf("smtp %s does not offer STARTTLS and require_tls is on", e.cfg.Smarthost))
		}
	}
	if e.cfg.AuthUsername != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return Permanent(fmt.Errorf("smtp %s offers no AUTH and auth_username is set", e.cfg.Smarthost))
		}
		list := strings.Fields(strings.ToUpper(mechs))
		var auth smtp.Auth
		switch {
		case slices.Contains(list, "PLAIN"):
			auth = smtp.PlainAuth("", e.cfg.AuthUsername, e.password, host)
		case slices.Contains(list, "LOGIN"):
			auth = &loginAuth{user: e.cfg.AuthUsername, password: e.password}
		default:
			return Permanent(fmt.Errorf("smtp %s offers AUTH %s, none of PLAIN, LOGIN", e.cfg.Smarthost, mechs))
		}
		if err := c.Auth(auth); err != nil {
			return smtpErr("auth", e.cfg.Smarthost, err)
		}
	}
	from, _ := mail.ParseAddress(e.cfg.From)
	if err := c.Mail(from.Address); err != nil {
		return smtpErr("mail from", e.cfg.Smarthost, err)
	}
	for _, t := range e.cfg.To {
		addr, _ := mail.ParseAddress(t)
		if err := c.Rcpt(addr.Address); err != nil {
			return smtpErr("rcpt to", e.cfg.Smarthost, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("data", e.cfg.Smarthost, err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpErr("data", e.cfg.Smarthost, err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("data", e.cfg.Smarthost, err)
	}
	_ = c.Quit()
	return nil
}

// smtpErr classifies an SMTP failure: a 5xx reply is permanent, a 4xx reply or a broken
// connection is retried.
func smtpErr(step, host string, err error) error {
	err = fmt.Errorf("smtp %s on %s: %w", step, host, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return Permanent(err)
	}
	return err
}

// loginAuth is the LOGIN mechanism, which net/smtp lacks and many relays (Exchange, some
// Chinese enterprise mail services) still ask for. Like PlainAuth it refuses an unencrypted
// connection.
type loginAuth struct{ user, password string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("refusing LOGIN auth over an unencrypted connection")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", fromServer)
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
