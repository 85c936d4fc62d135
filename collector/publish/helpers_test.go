package publish

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aqualoop/aqualoop/collector"
)

var base = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func reading(meter string, seq uint64) collector.Reading {
	return collector.Reading{
		Site: "plant-a", Meter: meter, Edge: "edge-1", Seq: seq,
		Time:       base.Add(time.Duration(seq) * time.Second),
		TimeSource: collector.TimeSourceCollector,
		Points:     []collector.Point{{Name: collector.PointTotal, Value: float64(seq), Unit: "m3", Quality: collector.Good}},
	}
}

// logBuffer collects JSON log lines from any goroutine (paho calls back on its own).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the logged records whose message starts with prefix.
func (l *logBuffer) records(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, rec)
		}
	}
	return out
}

func newLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runPublisher runs p until the test ends and returns a function that stops it early.
func runPublisher(t *testing.T, p *Publisher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// eventually waits up to 20 s for cond; the deadline only bounds a hung test, it is no assertion
// on speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subscriber is a test MQTT client that collects what arrives on its topic filter.
type subscriber struct {
	mu   sync.Mutex
	msgs []mqtt.Message
	c    mqtt.Client
}

func subscribe(t *testing.T, url string, tc *tls.Config, user, password, filter string) *subscriber {
	t.Helper()
	s := &subscriber{}
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("test-sub-" + strings.ReplaceAll(t.Name(), "/", "-")).
		SetTLSConfig(tc).SetUsername(user).SetPassword(password).SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second)
	s.c = mqtt.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(50) })
	tok := s.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return s
}

func (s *subscriber) messages() []mqtt.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mqtt.Message(nil), s.msgs...)
}

// payloads are the payloads received on topic, in order.
func (s *subscriber) payloads(topic string) []string {
	var out []string
	for _, m := range s.messages() {
		if m.Topic() == topic {
			out = append(out, string(m.Payload()))
		}
	}
	return out
}

// counterValue reads one child of a counter vector from the registry.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, label, value) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
