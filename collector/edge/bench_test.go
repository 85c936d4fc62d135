package edge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/spool"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// BenchmarkForward measures the edge's own CPU to deliver spooled readings: a backlog of 1 000
// two-point readings of 100 meters is appended to the spool, then the forwarder publishes it
// to a real Mosquitto (a separate process, so its CPU is not counted) with QoS 1 until the spool
// is empty. The figure is the process's user + system CPU time per 1 000 readings (getrusage),
// which covers appending, reading back, publishing and acknowledging.
func BenchmarkForward(b *testing.B) {
	broker := testenv.Mosquitto(b)
	cfg := publish.Broker{Servers: []string{broker.URL()}, MaxReconnectInterval: time.Second}
	cfg.Default()
	logger := slog.New(slog.DiscardHandler)
	pub, err := publish.New(cfg, "bench", "edge-1", logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { pub.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); !pub.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("publisher not connected after 20s")
		}
	}
	q, err := spool.Open(spool.Config{Dir: b.TempDir(), MaxBytes: 1 << 30, Fsync: spool.FsyncNever}, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	e := &Edge{cfg: Config{Site: "bench", Edge: "edge-1"}, opts: Options{Logger: logger, Now: time.Now}, pub: pub}
	fctx, stopForward := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	fwg.Go(func() { e.forward(fctx, q) })
	defer func() { stopForward(); fwg.Wait() }()

	const perOp = 1000
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]collector.Reading, perOp)
	for i := range rs {
		rs[i] = collector.Reading{
			Meter: fmt.Sprintf("FT%03d", i%100), Time: t0.Add(time.Duration(i) * time.Second),
			TimeSource: collector.TimeSourceCollector,
			Points: []collector.Point{
				{Name: collector.PointFlow, Value: 12.5 + float64(i%7), Unit: "m3/h", Quality: collector.Good},
				{Name: collector.PointTotal, Value: 99999.93 + float64(i), Unit: "m3", Quality: collector.Good},
			},
		}
	}
	cpu0 := cpuTime(b)
	for b.Loop() {
		for _, r := range rs {
			e.accept(q, r)
		}
		for q.Len() > 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/1000-readings")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
