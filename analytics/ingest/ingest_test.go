package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

var t0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func reading(meter string, seq uint64, at time.Duration, total float64) collector.Reading {
	return collector.Reading{
		Site: "demo", Meter: meter, Edge: "edge-1", Seq: seq, Time: t0.Add(at), TimeSource: collector.TimeSourceCollector,
		Points: []collector.Point{{Name: collector.PointTotal, Value: total, Unit: "m3"}},
	}
}

func payload(t *testing.T, r collector.Reading) []byte {
	t.Helper()
	b, err := wire.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newSQLite(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "ingest.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newLedger(st ledger.History) *ledger.Ledger {
	specs := []ledger.MeterSpec{
		{Site: "demo", Meter: "M01", RegisterMax: 100000, Q4: 1000, Interval: time.Minute},
		{Site: "demo", Meter: "M02", RegisterMax: 100000, Q4: 1000, Interval: time.Minute},
	}
	return ledger.New(specs, st, slog.New(slog.DiscardHandler))
}

func known(site, meter string) bool { return site == "demo" && (meter == "M01" || meter == "M02") }

// TestIngestThroughMosquitto sends good and malformed messages through a real Mosquitto: the good
// ones are stored and booked, every malformed one is counted and dead-lettered, and ingest goes on.
func TestIngestThroughMosquitto(t *testing.T) {
	broker := testenv.Mosquitto(t)
	st := newSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var changed []ledger.Bucket
	cfg := Config{MQTT: publish.Broker{Servers: []string{broker.URL()}, ClientID: "platform-test"}}
	cfg.Default()
	metrics := NewMetrics(nil)
	in := New(cfg, st, newLedger(st), Options{
		Metrics: metrics, Known: known,
		OnBuckets: func(bs []ledger.Bucket) { mu.Lock(); changed = append(changed, bs...); mu.Unlock() },
	})
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()

	// A separate client plays the edge and listens to the dead-letter topic.
	o := mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("edge-test")
	c := mqtt.NewClient(o)
	if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer c.Disconnect(100)
	dead := make(chan deadLetter, 10)
	if tk := c.Subscribe(wire.DeadLetterTopic("demo"), 1, func(_ mqtt.Client, m mqtt.Message) {
		var d deadLetter
		if err := json.Unmarshal(m.Payload(), &d); err == nil {
			dead <- d
		}
	}); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe: %v", tk.Error())
	}
	// Wait until the platform has subscribed, probing with distinct M02 readings (so none of
	// them counts as a duplicate); messages published before that are not for its session.
	probe := uint64(0)
	waitFor(t, 10*time.Second, "platform subscription", func() bool {
		probe++
		pub(t, c, wire.ReadingTopic("demo", "M02"), payload(t, reading("M02", probe, time.Duration(probe)*time.Minute, float64(probe))))
		n, _ := st.Readings(ctx, "demo", "M02", t0, t0.Add(24*time.Hour))
		return len(n) > 0
	})
	pub(t, c, wire.ReadingTopic("demo", "M01"), payload(t, reading("M01", 1, 0, 100)))

	msgs := []struct{ topic, body string }{
		{wire.ReadingTopic("demo", "M01"), string(payload(t, reading("M01", 2, time.Minute, 101.5)))},
		{wire.ReadingTopic("demo", "M01"), `{"v":1,"site":"demo"`},                                      // decode
		{wire.ReadingTopic("demo", "M01"), string(payload(t, reading("M02", 1, time.Minute, 5)))},       // mismatch
		{wire.ReadingTopic("demo", "M99"), string(payload(t, reading("M99", 1, time.Minute, 5)))},       // unknown meter
		{wire.ReadingTopic("demo", "M01"), string(payload(t, reading("M01", 2, time.Minute, 101.5)))},   // duplicate
		{wire.ReadingTopic("demo", "M01"), string(payload(t, reading("M01", 3, 2*time.Minute, 103.5)))}, // still ingested
	}
	for _, m := range msgs {
		pub(t, c, m.topic, []byte(m.body))
	}
	waitFor(t, 10*time.Second, "three M01 readings stored", func() bool {
		rs, _ := st.Readings(ctx, "demo", "M01", t0, t0.Add(time.Hour))
		return len(rs) == 3
	})
	kinds := map[string]int{}
	for len(kinds) < 3 {
		select {
		case d := <-dead:
			kinds[d.Kind]++
			if d.Topic == "" || d.Error == "" || d.Payload == "" {
				t.Errorf("dead letter lacks its evidence: %+v", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("dead letters received: %v, want decode, topic_mismatch and unknown_meter", kinds)
		}
	}
	for _, k := range []string{KindDecode, KindMismatch, KindUnknownMeter} {
		if kinds[k] != 1 || metrics.Rejected(k) != 1 {
			t.Errorf("kind %s: %d dead letters, counter %v; want 1 and 1", k, kinds[k], metrics.Rejected(k))
		}
	}
	waitFor(t, 5*time.Second, "duplicate counted", func() bool { return value(metrics.duplicates) == 1 })
	// 1.5 m³ in the first minute and 2.0 in the second, from the totalizer differences (the
	// minute of the last reading is still open).
	// A batch stores its readings before its buckets: wait for the buckets too.
	var bs []ledger.Bucket
	waitFor(t, 10*time.Second, "M01 buckets stored", func() bool {
		all, err := st.Buckets(ctx, "demo", t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		bs = bs[:0]
		for _, b := range all {
			if b.Meter == "M01" && b.Start.Before(t0.Add(2*time.Minute)) {
				bs = append(bs, b)
			}
		}
		return len(bs) == 2 && bs[1].Volume == 2.0
	})
	if len(bs) != 2 || bs[0].Volume != 1.5 || bs[1].Volume != 2.0 {
		t.Errorf("buckets = %+v, want 1.5 and 2.0 m³", bs)
	}
	mu.Lock()
	if len(changed) == 0 {
		t.Error("OnBuckets never called")
	}
	mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// flakyStore fails the first writes and refuses readings of one meter outright: faults a real
// SQLite file will not produce on demand.
type flakyStore struct {
	*store.SQLite
	mu       sync.Mutex
	failures int
	refuse   string
}

func (f *flakyStore) WriteReadings(ctx context.Context, rs []collector.Reading) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return errors.New("database is locked")
	}
	for _, r := range rs {
		if r.Meter == f.refuse {
			return fmt.Errorf("%w: value out of range", store.ErrRejected)
		}
	}
	return f.SQLite.WriteReadings(ctx, rs)
}

func TestHandleBatchRetriesAndDeadLettersRejected(t *testing.T) {
	st := &flakyStore{SQLite: newSQLite(t), failures: 2, refuse: "M02"}
	metrics := NewMetrics(nil)
	in := New(Config{}, st, newLedger(st.SQLite), Options{Metrics: metrics, Known: known})
	ctx := context.Background()
	batch := []Message{
		{Topic: wire.ReadingTopic("demo", "M01"), Payload: payload(t, reading("M01", 1, 0, 10))},
		{Topic: wire.ReadingTopic("demo", "M02"), Payload: payload(t, reading("M02", 1, 0, 10))},
		{Topic: wire.ReadingTopic("demo", "M01"), Payload: payload(t, reading("M01", 2, time.Minute, 11))},
		{Topic: wire.ReadingTopic("demo", "M01"), Payload: payload(t, reading("M01", 2, time.Minute, 11))},
	}
	if err := in.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	rs, _ := st.Readings(ctx, "demo", "M01", t0, t0.Add(time.Hour))
	if len(rs) != 2 {
		t.Errorf("M01 has %d stored readings, want 2", len(rs))
	}
	if rs, _ := st.Readings(ctx, "demo", "M02", t0, t0.Add(time.Hour)); len(rs) != 0 {
		t.Errorf("refused M02 reading stored: %+v", rs)
	}
	if got := metrics.Rejected(KindRejected); got != 1 {
		t.Errorf("store_rejected = %v, want 1", got)
	}
	if got := value(metrics.storeErrs); got != 2 {
		t.Errorf("store errors = %v, want the 2 injected", got)
	}
	if got := value(metrics.duplicates); got != 1 {
		t.Errorf("duplicates = %v, want 1 (the repeat inside the batch)", got)
	}
	// A canceled context before the store recovers: the batch is not reported handled.
	st.failures = 1000
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := in.HandleBatch(cctx, []Message{{Topic: wire.ReadingTopic("demo", "M01"), Payload: payload(t, reading("M01", 3, 2*time.Minute, 12))}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("HandleBatch with a store down and ctx ending = %v, want the context error (so nothing is acknowledged)", err)
	}
}

func pub(t *testing.T, c mqtt.Client, topic string, body []byte) {
	t.Helper()
	if tk := c.Publish(topic, 1, false, body); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tk.Error())
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
