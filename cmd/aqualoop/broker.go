package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

// embeddedBroker is the in-process MQTT broker of the demo and of small sites.
type embeddedBroker struct {
	srv  *mqtt.Server
	addr string
	tls  bool
	// user and password are the platform's own account, made up for this process, which the
	// in-process ingest logs in with; empty when the broker takes anonymous clients.
	user, password string
}

// startBroker starts mochi-mqtt on cfg.Listen ("127.0.0.1:0" picks a free port). With accounts
// (password_file or users) it authenticates every client and applies the same per-site topic
// ACL as deploy/mosquitto/aqualoop.acl; without, it takes anonymous clients, which config
// validation allows on loopback addresses only.
func startBroker(cfg brokerConfig, logger *slog.Logger) (*embeddedBroker, error) {
	users, err := cfg.accounts()
	if err != nil {
		return nil, err
	}
	b := &embeddedBroker{}
	hook := &brokerAuth{users: users, platform: cfg.PlatformUser, anonymous: len(users) == 0, logger: logger}
	if !hook.anonymous {
		b.user, b.password = cfg.PlatformUser, base64.RawURLEncoding.EncodeToString(randomBytes(24))
		hook.inProcess = b.password
	} else {
		if !auth.Loopback(cfg.Listen) {
			return nil, fmt.Errorf("embedded broker on %s would take anonymous clients from other hosts: set broker.password_file", cfg.Listen)
		}
		logger.Info("embedded broker takes anonymous clients with no topic ACL, on loopback only", "addr", cfg.Listen)
	}
	srv := mqtt.New(&mqtt.Options{Logger: logger, InlineClient: false})
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("embedded broker auth hook: %w", err)
	}
	lc := listeners.Config{ID: "tcp", Address: cfg.Listen}
	if cfg.TLS.Enabled() {
		cert, err := auth.LoadCertificate(cfg.TLS.CertFile, cfg.TLS.KeyFile, logger)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		lc.TLSConfig = cert.ServerConfig()
		b.tls = true
	}
	tcp := listeners.NewTCP(lc)
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("embedded broker listen %s: %w", cfg.Listen, err)
	}
	go srv.Serve() // returns at once; listeners run on their own goroutines until Close
	b.srv, b.addr = srv, tcp.Address()
	return b, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (b *embeddedBroker) Addr() string { return b.addr }
func (b *embeddedBroker) URL() string {
	if b.tls {
		return "ssl://" + b.addr
	}
	return "tcp://" + b.addr
}
func (b *embeddedBroker) Close() error { return b.srv.Close() }
