package sim

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// wallClock is a wall clock the test moves by hand, so a Modbus read (which has no timestamp)
// happens at a known simulated instant.
type wallClock struct {
	mu sync.Mutex
	t  time.Time
}

func (w *wallClock) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t
}

func (w *wallClock) advance(d time.Duration) {
	w.mu.Lock()
	w.t = w.t.Add(d)
	w.mu.Unlock()
}

// testConfig is the demo plant on free local ports, starting at a fixed Monday midnight.
func testConfig(t *testing.T) *Config {
	t.Helper()
	c := DefaultConfig()
	c.Modbus.Listen = "127.0.0.1:0"
	c.OPCUA.Listen = "127.0.0.1:0"
	c.Start = "2025-01-06T00:00:00+08:00"
	c.TimeScale = 3600
	c.UpdateInterval = 20 * time.Millisecond
	return c
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newPlant builds a plant; with a wallClock, its simulated time moves only when the test says.
func newPlant(t *testing.T, c *Config, wall *wallClock) *Plant {
	t.Helper()
	p, err := New(c, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if wall != nil {
		p.wall = wall.now
		p.wallStart = wall.now()
	}
	return p
}

// runPlant serves p until the test ends.
func runPlant(t *testing.T, p *Plant) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-errc:
		t.Fatalf("Run before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("plant not ready after 20s")
	}
}
