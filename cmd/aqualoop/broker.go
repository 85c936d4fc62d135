package main

import (
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// embeddedBroker is the in-process MQTT broker of the demo and of small sites.
type embeddedBroker struct {
	srv  *mqtt.Server
	addr string
}

// startBroker starts mochi-mqtt on addr ("127.0.0.1:0" picks a free port). It accepts anonymous
// clients, which is why it listens on loopback in every shipped config.
func startBroker(addr string, logger *slog.Logger) (*embeddedBroker, error) {
	srv := mqtt.New(&mqtt.Options{Logger: logger, InlineClient: false})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded broker auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("embedded broker listen %s: %w", addr, err)
	}
	go srv.Serve() // returns at once; listeners run on their own goroutines until Close
	return &embeddedBroker{srv: srv, addr: tcp.Address()}, nil
}

func (b *embeddedBroker) Addr() string { return b.addr }
func (b *embeddedBroker) URL() string  { return "tcp://" + b.addr }
func (b *embeddedBroker) Close() error { return b.srv.Close() }
