package auth

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Certificate serves a certificate from files and re-reads them when either changes on disk,
// so a renewed certificate (certbot, cert-manager, an operator's copy) takes effect at the next
// handshake without a restart. A pair that fails to load keeps the previous one in service and
// is logged.
type Certificate struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
	every   time.Duration // how often the files are looked at
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// LoadCertificate loads the pair once; it fails if it cannot.
func LoadCertificate(certFile, keyFile string, logger *slog.Logger) (*Certificate, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, logger: logger, every: time.Second}
	st, err := c.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	c.cert, c.stamp = &cert, st
	return c, nil
}

func (c *Certificate) stamps() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, fmt.Errorf("stat tls file: %w", err)
		}
		st[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return st, nil
}

// GetCertificate is for tls.Config.GetCertificate. It looks at the files at most once a second.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < c.every {
		return c.cert, nil
	}
	c.checked = time.Now()
	st, err := c.stamps()
	if err != nil || st == c.stamp {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// Mid-copy a new certificate may not match the old key yet: keep serving the old pair
		// and try again at the next handshake after a second.
		c.logger.Error("tls certificate changed on disk but does not load; still serving the previous one", "file", c.certFile, "err", err)
		return c.cert, nil
	}
	c.cert, c.stamp = &cert, st
	c.logger.Info("tls certificate reloaded", "file", c.certFile)
	return c.cert, nil
}

// ServerConfig is a TLS 1.2+ server configuration that serves this certificate.
func (c *Certificate) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
