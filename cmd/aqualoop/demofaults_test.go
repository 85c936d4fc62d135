package main

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/collector/sim"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// An edge_offline fault of the simulator sets the edge's retained status to offline on the
// demo's broker while it lasts, and back to online after.
func TestMirrorEdgeFaults(t *testing.T) {
	b, err := startBroker(brokerConfig{Listen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := sim.DefaultConfig()
	cfg.TimeScale = 3600 // one simulated hour per second
	cfg.Faults = []sim.FaultConfig{{Kind: sim.FaultEdgeOffline, After: time.Hour, For: 2 * time.Hour}}
	plant, err := sim.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("watch"))
	if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer c.Disconnect(100)
	c.Subscribe(wire.StatusTopic("demo", "edge-1"), 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }).WaitTimeout(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mirrorEdgeFaults(ctx, plant, b.URL(), "demo", "edge-1", testLogger(t)) }()
	for _, want := range []string{wire.StatusOffline, wire.StatusOnline} {
		select {
		case s := <-got:
			if s != want {
				t.Errorf("status %q, want %q", s, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s status", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
