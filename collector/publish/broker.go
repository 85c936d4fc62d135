// Package publish sends an edge's readings to the MQTT broker with paho: QoS 1, a persistent
// session, a retained online/offline status with a last will, TLS and credentials that never
// reach a log. Its Broker config is also how the platform's ingest connects, so both sides read
// the same keys.
package publish

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/collector/config"
)

// Broker is how to reach an MQTT broker.
type Broker struct {
	Servers  []string `yaml:"servers"` // tcp://host:1883, ssl://host:8883, ws://...
	ClientID string   `yaml:"client_id"`
	Username string   `yaml:"username"`
	// Password may be given inline (discouraged), from a file, or from the environment variable
	// named by PasswordEnv; the file and the environment win over the inline value.
	Password     string        `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	PasswordEnv  string        `yaml:"password_env"`
	QoS          byte          `yaml:"qos"`
	KeepAlive    time.Duration `yaml:"keep_alive"`
	Timeout      time.Duration `yaml:"timeout"` // connect and per-publish acknowledgement
	// MaxReconnectInterval caps the exponential reconnect backoff.
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
	// CleanSession false (the default) keeps the session on the broker across reconnects, so QoS 1
	// messages for a platform that was down wait for it.
	CleanSession bool `yaml:"clean_session"`
	TLS          TLS  `yaml:"tls"`
}

// TLS configures an encrypted connection and, with Certificate and Key, client authentication.
type TLS struct {
	CA                 string `yaml:"ca"`
	Certificate        string `yaml:"certificate"`
	Key                string `yaml:"key"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Default fills in the defaults.
func (b *Broker) Default() {
	if b.QoS == 0 {
		b.QoS = 1
	}
	if b.KeepAlive == 0 {
		b.KeepAlive = 30 * time.Second
	}
	if b.Timeout == 0 {
		b.Timeout = 10 * time.Second
	}
	if b.MaxReconnectInterval == 0 {
		b.MaxReconnectInterval = 30 * time.Second
	}
}

// Validate reports every problem under path.
func (b *Broker) Validate(p *config.Problems, path string) {
	if len(b.Servers) == 0 {
		p.Addf(path+".servers", "at least one broker URL is required")
	}
	for i, s := range b.Servers {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			p.Addf(fmt.Sprintf("%s.servers[%d]", path, i), "%q is not a URL like tcp://host:1883", s)
			continue
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			p.Addf(fmt.Sprintf("%s.servers[%d]", path, i), "scheme %q is not one of tcp, ssl, ws, wss", u.Scheme)
		}
	}
	if b.QoS > 2 {
		p.Addf(path+".qos", "%d is not 0, 1 or 2", b.QoS)
	}
	if b.PasswordFile != "" {
		if _, err := os.Stat(b.PasswordFile); err != nil {
			p.Addf(path+".password_file", "cannot be read: %v", err)
		}
	}
	if (b.TLS.Certificate == "") != (b.TLS.Key == "") {
		p.Addf(path+".tls", "certificate and key go together")
	}
	for key, f := range map[string]string{"ca": b.TLS.CA, "certificate": b.TLS.Certificate, "key": b.TLS.Key} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			p.Addf(path+".tls."+key, "cannot be read: %v", err)
		}
	}
}

// password resolves the password from the environment, a file or the inline value.
func (b *Broker) password() (string, error) {
	if b.PasswordEnv != "" {
		if v, ok := os.LookupEnv(b.PasswordEnv); ok {
			return v, nil
		}
	}
	if b.PasswordFile != "" {
		data, err := os.ReadFile(b.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read password_file: %w", err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	return b.Password, nil
}

func (b *Broker) tlsConfig() (*tls.Config, error) {
	t := b.TLS
	if t == (TLS{}) {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("read tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s holds no PEM certificate", t.CA)
		}
		cfg.RootCAs = pool
	}
	if t.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
		if err != nil {
			return nil, fmt.Errorf("load tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ClientOptions builds paho options for this broker: persistent session, automatic reconnect with
// capped backoff, and no in-memory resend queue of paho's own (callers keep unacknowledged
// messages themselves, on disk at the edge).
func (b *Broker) ClientOptions() (*mqtt.ClientOptions, error) {
	o := mqtt.NewClientOptions()
	for _, s := range b.Servers {
		o.AddBroker(s)
	}
	o.SetClientID(b.ClientID)
	o.SetCleanSession(b.CleanSession)
	o.SetKeepAlive(b.KeepAlive)
	o.SetConnectTimeout(b.Timeout)
	o.SetWriteTimeout(b.Timeout)
	o.SetAutoReconnect(true)
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(time.Second)
	o.SetMaxReconnectInterval(b.MaxReconnectInterval)
	o.SetCustomOpenConnectionFn(openConn)
	if b.Username != "" {
		pw, err := b.password()
		if err != nil {
			return nil, err
		}
		o.SetUsername(b.Username)
		o.SetPassword(pw)
	}
	tc, err := b.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	return o, nil
}
