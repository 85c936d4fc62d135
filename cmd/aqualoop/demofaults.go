package main

import (
	"context"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/collector/sim"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// mirrorEdgeFaults plays the simulator's edge_offline faults on the demo's broker: while one is
// active it holds the edge's retained status at offline, as the broker's will message would when
// the edge's link drops, and sets it back to online when the fault ends. The simulator owns the
// meters, not the edge, so the demo does this for it.
func mirrorEdgeFaults(ctx context.Context, plant *sim.Plant, brokerURL, site, edge string, logger *slog.Logger) error {
	o := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("aqualoop-demo-faults").SetAutoReconnect(true)
	c := mqtt.NewClient(o)
	if t := c.Connect(); t.WaitTimeout(10*time.Second) && t.Error() != nil {
		logger.Warn("demo fault mirror not connected; edge_offline faults are not played", "err", t.Error())
		return nil
	}
	defer c.Disconnect(100)
	offline := false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := plant.EdgeOffline(plant.Now())
		if now == offline {
			continue
		}
		status := wire.StatusOnline
		if now {
			status = wire.StatusOffline
		}
		t := c.Publish(wire.StatusTopic(site, edge), 1, true, status)
		if t.WaitTimeout(5*time.Second) && t.Error() == nil {
			offline = now
			logger.Info("demo fault: edge status set", "site", site, "edge", edge, "status", status)
		}
	}
}
