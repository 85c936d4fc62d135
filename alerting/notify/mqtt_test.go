package notify

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func startMochi(t *testing.T) string {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })
	return "tcp://" + tcp.Address()
}

func connectPaho(t *testing.T, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

type mqttMsg struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
}

// TestMQTTPerSite runs the dispatcher with an MQTT receiver on the in-process mochi broker: one
// group holding alerts of two sites goes out as one retained QoS 1 message per site topic, which
// a SCADA client subscribing later still receives.
func TestMQTTPerSite(t *testing.T) {
	url := startMochi(t)
	pub := connectPaho(t, url, "aqualoop-platform")
	cfg := Config{
		Route:     Route{Receiver: "scada", GroupBy: []string{"alertname"}, GroupWait: dur(0)},
		Receivers: []Receiver{{Name: "scada", MQTTConfigs: []MQTTConfig{{Retain: true}}}},
	}
	db := openDB(t, tempDBPath(t))
	defer db.Close()
	d, err := New(cfg, db, Options{Publish: PahoPublisher(pub), HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	stop := runDispatcher(t, d)
	defer stop()
	t0 := time.Now().UTC().Truncate(time.Second)
	d.Notify(context.Background(), []Alert{
		alert("edge_offline", "park-a", t0, "edge", "e1"),
		alert("edge_offline", "park/b", t0, "edge", "e2"), // a slash must not add a topic level
	})

	// Wait for the notification log to show the delivery, then subscribe: retained messages
	// reach a subscriber that came later, as a SCADA client restarting would.
	deadline := time.Now().Add(20 * time.Second)
	for {
		log, err := d.Log(context.Background(), LogFilter{Result: ResultSent})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery logged within 20s: %+v", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var mu sync.Mutex
	got := map[string]mqttMsg{}
	sub := connectPaho(t, url, "scada")
	done := make(chan struct{})
	tok := sub.Subscribe("aqualoop/v1/+/alerts", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		got[m.Topic()] = mqttMsg{m.Topic(), m.Qos(), m.Retained(), m.Payload()}
		if len(got) == 2 {
			close(done)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("received %d of 2 site messages", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	for topic, site := range map[string]string{"aqualoop/v1/park-a/alerts": "park-a", "aqualoop/v1/park_b/alerts": "park/b"} {
		m, ok := got[topic]
		if !ok {
			t.Errorf("nothing on %s; got topics %v", topic, got)
			continue
		}
		if m.qos != 1 || !m.retained {
			t.Errorf("%s: qos %d retained %v, want 1 and retained", topic, m.qos, m.retained)
		}
		var p struct {
			Version  int    `json:"version"`
			Receiver string `json:"receiver"`
			Status   string `json:"status"`
			GroupKey string `json:"groupKey"`
			Alerts   []struct {
				Fingerprint string            `json:"fingerprint"`
				Status      string            `json:"status"`
				Labels      map[string]string `json:"labels"`
				StartsAt    time.Time         `json:"startsAt"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal(m.payload, &p); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if p.Version != 1 || p.Receiver != "scada" || p.Status != "firing" || len(p.Alerts) != 1 ||
			p.Alerts[0].Labels["site"] != site || !p.Alerts[0].StartsAt.Equal(t0) || p.Alerts[0].Fingerprint == "" {
			t.Errorf("%s payload %s", topic, m.payload)
		}
	}
}

// TestMQTTNeedsPublisher: an mqtt receiver without a client is refused at New.
func TestMQTTNeedsPublisher(t *testing.T) {
	db := openDB(t, tempDBPath(t))
	defer db.Close()
	cfg := Config{Route: Route{Receiver: "s"}, Receivers: []Receiver{{Name: "s", MQTTConfigs: []MQTTConfig{{}}}}}
	if _, err := New(cfg, db, Options{}); err == nil {
		t.Error("mqtt receiver without Options.Publish accepted")
	}
}
