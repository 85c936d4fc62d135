package edge

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/modbus"
	"github.com/aqualoop/aqualoop/collector/opcua"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

func TestDemoConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../../configs/demo/edge.yaml")
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Site != "demo" || len(cfg.Modbus) == 0 || len(cfg.OPCUA) == 0 || cfg.Spool.Dir == "" {
		t.Errorf("demo edge config: %+v", cfg)
	}
	if cfg.MQTT.CleanSession || cfg.MQTT.QoS != 1 {
		t.Errorf("demo edge publishes with clean_session %v, QoS %d; want a persistent session and QoS 1", cfg.MQTT.CleanSession, cfg.MQTT.QoS)
	}
}

// TestHealthAndMetrics runs an edge against the simulated plant and a real Mosquitto, with one
// Modbus meter that is not there, and reads /healthz and /metrics with the broker up and down.
func TestHealthAndMetrics(t *testing.T) {
	plant := testenv.Plant(t, nil)
	broker := testenv.Mosquitto(t)
	cfg := plantConfig(plant, broker.URL(), filepath.Join(t.TempDir(), "spool"), 200*time.Millisecond)
	cfg.HTTP.Listen = "127.0.0.1:0"
	// Nothing answers behind unit 99: the simulated gateway replies with exception 0x0B.
	cfg.Modbus[0].Meters = append(cfg.Modbus[0].Meters, modbus.Meter{
		Meter: "M99", SlaveID: 99,
		Points: []modbus.Point{{Name: collector.PointTotal, Address: 2, Type: "UINT32", Unit: "m3"}},
	})
	cfg.Modbus[0].Default()
	modbusSlaves := len(cfg.Modbus[0].Meters)
	addr, _ := runEdge(t, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())

	eventually(t, 30*time.Second, "connected, every bus read and something published", func() bool {
		h := getHealth(t, addr)
		m := getMetrics(t, addr)
		return h.BrokerConnected && m[`aqualoop_modbus_poll_duration_seconds_count{bus="gateway-1"}`] >= 2 &&
			m[`aqualoop_opcua_connected{server="scada"}`] == 1 && m["aqualoop_edge_publish_seconds_count"] > 0
	})
	h := getHealth(t, addr)
	if h.Status != http.StatusOK || h.Site != "plant-a" || h.Edge != "edge-1" || h.BrokerError != "" {
		t.Errorf("healthz while connected: %+v", h)
	}
	for _, key := range []string{"readings", "bytes", "oldest_age_seconds"} {
		if _, ok := h.Spool[key]; !ok {
			t.Errorf("healthz spool has no %q: %v", key, h.Spool)
		}
	}
	var bus modbus.BusState
	if err := json.Unmarshal(h.Buses["gateway-1"], &bus); err != nil {
		t.Fatalf("healthz gateway-1: %v in %s", err, h.Buses["gateway-1"])
	}
	if !bus.Connected || bus.LastPoll.IsZero() || bus.Bus != "gateway-1" {
		t.Errorf("gateway-1 state %+v", bus)
	}
	var server opcua.ServerState
	if err := json.Unmarshal(h.Buses["scada"], &server); err != nil {
		t.Fatalf("healthz scada: %v in %s", err, h.Buses["scada"])
	}
	if !server.Connected || !server.Session || server.SubscriptionID == 0 {
		t.Errorf("scada state %+v", server)
	}

	m := getMetrics(t, addr)
	// Every meter's registers are contiguous, so one read per slave: the planner coalesced the
	// flow rate and totalizer of each meter into one request.
	if got := m[`aqualoop_modbus_requests_per_poll{bus="gateway-1"}`]; got != float64(modbusSlaves) {
		t.Errorf("requests per poll = %v, want %d (one per slave)", got, modbusSlaves)
	}
	if got := m[`aqualoop_modbus_request_errors_total{bus="gateway-1",kind="exception"}`]; got < 1 {
		t.Errorf("exception errors = %v, want the absent unit 99 counted", got)
	}
	for _, series := range []string{
		`aqualoop_modbus_poll_duration_seconds_bucket{bus="gateway-1",le="+Inf"}`,
		`aqualoop_modbus_request_errors_total{bus="gateway-1",kind="timeout"}`,
		`aqualoop_modbus_request_errors_total{bus="gateway-1",kind="io"}`,
		`aqualoop_modbus_request_errors_total{bus="gateway-1",kind="decode"}`,
		"aqualoop_spool_readings",
		"aqualoop_spool_bytes",
		"aqualoop_spool_oldest_age_seconds",
		`aqualoop_spool_dropped_total{reason="full"}`,
		`aqualoop_edge_publish_seconds_bucket{le="+Inf"}`,
		`aqualoop_edge_broker_connect_failures_total{kind="refused"}`,
	} {
		if _, ok := m[series]; !ok {
			t.Errorf("/metrics has no %s", series)
		}
	}
	if m["aqualoop_edge_broker_connected"] != 1 || m["aqualoop_spool_bytes"] <= 0 {
		t.Errorf("broker_connected %v, spool bytes %v while connected", m["aqualoop_edge_broker_connected"], m["aqualoop_spool_bytes"])
	}

	// Broker down: the edge keeps polling into the spool and says it is unhealthy.
	broker.Stop()
	eventually(t, 30*time.Second, "a backlog reported while the broker is down", func() bool {
		h := getHealth(t, addr)
		m := getMetrics(t, addr)
		return !h.BrokerConnected && h.Spool["readings"] > 20 && h.Spool["oldest_age_seconds"] > 0.5 &&
			m["aqualoop_spool_readings"] > 20 && m["aqualoop_spool_oldest_age_seconds"] > 0.5
	})
	h = getHealth(t, addr)
	if h.Status != http.StatusServiceUnavailable || h.BrokerError == "" {
		t.Errorf("healthz with the broker down: status %d, broker_error %q; want 503 and the reason", h.Status, h.BrokerError)
	}
	if m := getMetrics(t, addr); m["aqualoop_edge_broker_connected"] != 0 || m[`aqualoop_edge_broker_connect_failures_total{kind="network"}`] < 1 {
		t.Errorf("with the broker down: connected %v, network connect failures %v",
			m["aqualoop_edge_broker_connected"], m[`aqualoop_edge_broker_connect_failures_total{kind="network"}`])
	}

	// Back up: the backlog drains.
	broker.Start()
	eventually(t, 30*time.Second, "the backlog drained", func() bool {
		h := getHealth(t, addr)
		return h.BrokerConnected && h.Spool["readings"] < 20
	})
	if h := getHealth(t, addr); h.Status != http.StatusOK || h.BrokerError != "" {
		t.Errorf("healthz after the broker came back: %+v", h)
	}
}

// TestSpoolBound lets a long outage fill a tiny spool: the oldest readings are dropped, counted
// and logged at error level, the disk use stays bounded, and the newest readings are delivered
// once the broker is back.
func TestSpoolBound(t *testing.T) {
	plant := testenv.Plant(t, nil)
	broker := testenv.Mosquitto(t)
	rec := newRecorder(t, broker.URL(), "plant-a")
	broker.Stop()

	const maxBytes = 8 << 10
	cfg := plantConfig(plant, broker.URL(), filepath.Join(t.TempDir(), "spool"), 100*time.Millisecond)
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Spool.SegmentBytes, cfg.Spool.MaxBytes = 4<<10, maxBytes
	var logs logBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	addr, stop := runEdge(t, cfg, logger, reg)

	const full = `aqualoop_spool_dropped_total{reason="full"}`
	eventually(t, 30*time.Second, "the spool dropping its oldest readings", func() bool {
		return getMetrics(t, addr)[full] >= 50
	})
	m := getMetrics(t, addr)
	if m["aqualoop_spool_bytes"] > maxBytes {
		t.Errorf("spool uses %v bytes, above max_bytes %d", m["aqualoop_spool_bytes"], maxBytes)
	}
	recs := logs.records(t, "spool full, oldest readings dropped")
	if len(recs) == 0 {
		t.Fatal("no log record says the spool dropped readings")
	}
	for _, r := range recs {
		if r["level"] != "ERROR" || r["dropped"].(float64) < 1 || r["max_bytes"].(float64) != maxBytes {
			t.Errorf("drop record %v: want level ERROR, dropped ≥ 1, max_bytes %d", r, maxBytes)
		}
	}

	// Once the broker is back nothing more is dropped. Waiting for a reading of every meter
	// taken after that moment makes each meter's newest reading one that cannot have been
	// dropped: on a loaded machine a meter's last reading before it could otherwise sit in the
	// oldest segment and be dropped, and the check below would wait for it forever.
	broker.Start()
	back := time.Now()
	meters := meterIDs(cfg)
	eventually(t, 30*time.Second, "the backlog delivered and a fresh reading of every meter", func() bool {
		return getHealth(t, addr).BrokerConnected && getMetrics(t, addr)["aqualoop_spool_readings"] < 15 &&
			len(rec.readSince(meters, back)) == 0
	})
	stop()
	dropped := droppedFull(t, reg)
	last := lastSeqs(t, cfg.Spool, cfg.Site, meters)
	var waiting []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting = waiting[:0]
		rec.mu.Lock()
		for meter, n := range last {
			if rec.seqs[meter][n] == 0 {
				waiting = append(waiting, fmt.Sprintf("%s seq %d", meter, n))
			}
		}
		rec.mu.Unlock()
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the newest reading of these meters has not arrived: %s", strings.Join(waiting, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	lost := 0
	for _, seqs := range rec.missing(last) {
		lost += len(seqs)
	}
	t.Logf("dropped %v readings as full, %d never arrived, %d duplicates", dropped, lost, rec.dups)
	if lost == 0 {
		t.Errorf("every reading arrived although the spool dropped %v", dropped)
	}
	// A reading peeked for publishing just before its segment went may still arrive, so fewer
	// can be missing than were counted, never more.
	if float64(lost) > dropped {
		t.Errorf("%d readings never arrived but only %v were counted as dropped", lost, dropped)
	}
	if len(rec.bad) > 0 {
		t.Errorf("undecodable messages: %s", strings.Join(rec.bad, "; "))
	}
}

// droppedFull reads aqualoop_spool_dropped_total{reason="full"} from the registry, which outlives
// the edge's HTTP endpoint.
func droppedFull(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "aqualoop_spool_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "full" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no aqualoop_spool_dropped_total{reason=\"full\"} registered")
	return 0
}
