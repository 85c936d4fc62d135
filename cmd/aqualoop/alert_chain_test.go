package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/sim"
)

// TestChainLeakAlert runs the whole chain (simulator → edge → embedded broker → serve) at 240×,
// injects a 15 m³/h leak on the municipal main through the simulator, and waits for the demo's
// burst rule to fire in the alerting API and to resolve after the leak ends: readings, ledger,
// evaluator, alerting and API together.
func TestChainLeakAlert(t *testing.T) {
	b, err := startBroker(brokerConfig{Listen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startChain(t, ctx, 240, b.URL(), nil)
	leakFrom := c.plant.Now().Add(20 * time.Minute)
	if _, err := c.plant.AddFault(sim.FaultConfig{Kind: sim.FaultLeak, Node: "dist", Rate: 15}, leakFrom, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	type alertsJSON struct {
		Alerts []struct {
			ID, Rule, State string
			StartsAt        *time.Time `json:"starts_at"`
			EndsAt          *time.Time `json:"ends_at"`
		}
	}
	find := func(state string) (string, *time.Time, *time.Time) {
		var a alertsJSON
		getJSON(t, c.baseURL+"/api/v1/alerts?"+url.Values{"site": {"demo"}, "state": {state}}.Encode(), &a)
		for _, x := range a.Alerts {
			if x.Rule == "leak_burst_municipal" {
				return x.ID, x.StartsAt, x.EndsAt
			}
		}
		return "", nil, nil
	}
	deadline := time.Now().Add(60 * time.Second)
	var id string
	var firedSim time.Time
	for id == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no burst alert by simulated %s (leak from %s)", c.plant.Now().Format(time.TimeOnly), leakFrom.Format(time.TimeOnly))
		}
		time.Sleep(200 * time.Millisecond)
		var starts *time.Time
		if id, starts, _ = find("firing"); id != "" {
			firedSim = c.plant.Now()
			if starts == nil || starts.Before(leakFrom.Add(-time.Minute)) {
				t.Errorf("starts_at %v, leak from %s", starts, leakFrom)
			}
		}
	}
	if d := firedSim.Sub(leakFrom); d < 0 || d > 35*time.Minute {
		t.Errorf("burst alert seen %s (simulated) after the leak began, want within 35 min", d)
	}
	t.Logf("burst alert in the API %s (simulated) after the leak began", firedSim.Sub(leakFrom).Round(time.Second))
	leakTo := leakFrom.Add(30 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("burst alert %s not resolved by simulated %s (leak ended %s)", id, c.plant.Now().Format(time.TimeOnly), leakTo.Format(time.TimeOnly))
		}
		time.Sleep(200 * time.Millisecond)
		if rid, _, ends := find("resolved"); rid == id {
			if ends == nil || ends.Before(leakTo) {
				t.Errorf("ends_at %v before the leak ended %s", ends, leakTo)
			}
			t.Logf("resolved %s (simulated) after the leak ended", c.plant.Now().Sub(leakTo).Round(time.Second))
			break
		}
	}
}
