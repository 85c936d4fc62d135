package testenv

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/sim"
)

// Plant serves the simulated plant of c (sim.DefaultConfig() when nil) on free 127.0.0.1 ports
// until the test ends, and returns once its Modbus gateway and OPC UA server listen.
func Plant(t testing.TB, c *sim.Config) *sim.Plant {
	t.Helper()
	if c == nil {
		c = sim.DefaultConfig()
		c.UpdateInterval = 100 * time.Millisecond
	}
	c.Modbus.Listen = "127.0.0.1:0"
	c.OPCUA.Listen = "127.0.0.1:0"
	p, err := sim.New(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new plant: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("plant: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-errc:
		t.Fatalf("plant ended before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("plant not ready after 20 s")
	}
	return p
}
