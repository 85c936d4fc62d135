package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// benchMeters is the number of meters the ingest benchmark's readings rotate over.
const benchMeters = 100

// messages makes MQTT messages as edges publish them: meter by meter, each meter's totalizer
// read once a minute, in time order.
type messages struct {
	n  int
	t0 time.Time
}

func (m *messages) next(b *testing.B, k int) []ingest.Message {
	out := make([]ingest.Message, k)
	for i := range out {
		meter, step := m.n%benchMeters, m.n/benchMeters
		r := collector.Reading{
			Site: "bench", Meter: fmt.Sprintf("M%03d", meter), Edge: "edge-1", Seq: uint64(step + 1),
			Time: m.t0.Add(time.Duration(step) * time.Minute), TimeSource: collector.TimeSourceDevice,
			Points: []collector.Point{
				{Name: collector.PointTotal, Value: 1000 + 1.25*float64(step), Unit: "m3"},
				{Name: collector.PointFlow, Value: 75, Unit: "m3/h"},
			},
		}
		payload, err := wire.Encode(r)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = ingest.Message{Topic: wire.ReadingTopic(r.Site, r.Meter), Payload: payload}
		m.n++
	}
	return out
}

type ingestStore interface {
	ingest.Store
	ledger.History
}

// BenchmarkIngest measures readings per second through ingest (decode, validate, de-duplicate),
// the store (readings, then buckets) and the ledger, as the platform runs them: one message at a
// time (Handle) and in the batches of up to 1000 that ingest's consumer forms under load
// (HandleBatch). Encoding the messages is not timed.
func BenchmarkIngest(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) ingestStore
	}{
		{"sqlite", func(b *testing.B) ingestStore {
			s, err := store.OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"influx", func(b *testing.B) ingestStore {
			in := testenv.InfluxDB(b)
			in.CreateDatabase(b, "bench")
			s, err := store.OpenInflux(context.Background(), store.InfluxConfig{URLs: []string{in.URL()}, Bucket: "bench/autogen"}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
	}
	for _, be := range backends {
		for _, batch := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, batch), func(b *testing.B) {
				st := be.open(b)
				specs := make([]ledger.MeterSpec, benchMeters)
				for i := range specs {
					specs[i] = ledger.MeterSpec{Site: "bench", Meter: fmt.Sprintf("M%03d", i), RegisterMax: 1e8, Q4: 250, Interval: time.Minute}
				}
				in := ingest.New(ingest.Config{}, st, ledger.New(specs, st, nil), ingest.Options{})
				ctx := context.Background()
				gen := &messages{t0: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
				// Every meter has a first reading already, so the loop runs the in-order path.
				if err := in.HandleBatch(ctx, gen.next(b, benchMeters)); err != nil {
					b.Fatal(err)
				}
				n := 0
				cpu0 := cpuTime(b)
				for b.Loop() {
					b.StopTimer()
					msgs := gen.next(b, batch)
					b.StartTimer()
					if err := in.HandleBatch(ctx, msgs); err != nil {
						b.Fatal(err)
					}
					n += batch
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
				// CPU of this process only (the benchmark, ingest, the ledger and SQLite; not
				// influxd), which a loaded machine inflates less than wall time.
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(n)*1000, "cpu-ms/1000")
			})
		}
	}
}
