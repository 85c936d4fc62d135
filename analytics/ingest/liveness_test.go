package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// The edge's retained status reaches OnStatus through a real Mosquitto, including the status
// retained before the platform connected, and stored readings reach OnReadings.
func TestStatusAndReadingsCallbacks(t *testing.T) {
	broker := testenv.Mosquitto(t)
	st := newSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("edge-status-test"))
	if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer c.Disconnect(100)
	// Retained before the platform starts: it must still learn it.
	if tk := c.Publish(wire.StatusTopic("demo", "edge-1"), 1, true, wire.StatusOffline); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	// Clear the retained status when done (an empty retained message deletes it).
	defer func() { c.Publish(wire.StatusTopic("demo", "edge-1"), 1, true, []byte{}).WaitTimeout(time.Second) }()

	type status struct {
		site, edge string
		online     bool
	}
	var mu sync.Mutex
	var got []status
	var heard []collector.Reading
	cfg := Config{MQTT: publish.Broker{Servers: []string{broker.URL()}, ClientID: "platform-status-test"}}
	cfg.Default()
	in := New(cfg, st, newLedger(st), Options{
		Known: known,
		OnStatus: func(site, edge string, online bool, _ time.Time) {
			mu.Lock()
			got = append(got, status{site, edge, online})
			mu.Unlock()
		},
		OnReadings: func(rs []collector.Reading) { mu.Lock(); heard = append(heard, rs...); mu.Unlock() },
	})
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitFor(t, 10*time.Second, "retained offline status", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	pub(t, c, wire.StatusTopic("demo", "edge-1"), []byte(wire.StatusOnline))
	pub(t, c, wire.StatusTopic("demo", "edge-1"), []byte("maybe")) // refused, counted
	waitFor(t, 10*time.Second, "online status", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2
	})
	mu.Lock()
	if got[0] != (status{"demo", "edge-1", false}) || got[1] != (status{"demo", "edge-1", true}) {
		t.Errorf("statuses = %+v, want offline then online for demo/edge-1", got)
	}
	mu.Unlock()
	waitFor(t, 10*time.Second, "readings callback", func() bool {
		pub(t, c, wire.ReadingTopic("demo", "M01"), payload(t, reading("M01", 1, 0, 10)))
		mu.Lock()
		defer mu.Unlock()
		return len(heard) > 0
	})
	mu.Lock()
	if heard[0].Meter != "M01" || heard[0].Site != "demo" {
		t.Errorf("heard %+v", heard[0])
	}
	mu.Unlock()
	cancel()
	<-done
	if n := in.opts.Metrics.Rejected(KindTopic); n < 1 {
		t.Errorf("a bad status payload should be counted as rejected, got %v", n)
	}
}
