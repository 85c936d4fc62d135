package modbus

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkPoll50x20 polls one in-process Modbus TCP gateway with 50 slaves of 20 points each
// (10 FLOAT32 CDAB and 10 UINT16 per slave, 30 registers) and reports the reads per poll, the
// heap allocations and the CPU time (user + system, from getrusage) per 1000 points. The server
// runs in the same process, so its allocations and CPU time are counted too: the figures bound
// ours from above.
func BenchmarkPoll50x20(b *testing.B) {
	const slaves, perSlave = 50, 20
	img := &registerImage{Units: map[byte]*unitImage{}}
	cfg := Config{Name: "bench", Transport: TransportTCP, Timeout: 5 * time.Second, Interval: time.Hour}
	for s := 1; s <= slaves; s++ {
		words := make([]uint16, 30)
		for i := range words {
			words[i] = uint16(s*100 + i)
		}
		img.Units[byte(s)] = &unitImage{Holding: map[uint16][]uint16{0: words}}
		m := Meter{Meter: fmt.Sprintf("m%02d", s), SlaveID: byte(s)}
		for i := range perSlave / 2 {
			m.Points = append(m.Points,
				Point{Name: fmt.Sprintf("f%d", i), Address: uint16(2 * i), Type: "FLOAT32", ByteOrder: "CDAB"},
				Point{Name: fmt.Sprintf("u%d", i), Address: uint16(20 + i), Type: "UINT16"})
		}
		cfg.Meters = append(cfg.Meters, m)
	}
	srv := startServer(b, img)
	cfg.Controller = srv.controller()
	src, err := New(cfg, "s", Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	ctx := b.Context()
	if _, err := src.Poll(ctx); err != nil { // connect outside the measurement
		b.Fatal(err)
	}
	served := srv.served()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpuBefore := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		rs, err := src.Poll(ctx)
		if err != nil || len(rs) != slaves {
			b.Fatalf("poll: %d readings, %v", len(rs), err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpuBefore
	runtime.ReadMemStats(&after)
	polls := float64(b.N)
	points := polls * slaves * perSlave
	b.ReportMetric(float64(srv.served()-served)/polls, "requests/poll")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/points*1000, "allocs/1000points")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/points, "ns/point")
	if cpuBefore >= 0 {
		b.ReportMetric(float64(cpu)/1e3/points*1000, "cpu-us/1000points")
	}
}
