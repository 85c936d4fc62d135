package spool

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAppend measures Append per fsync policy; -parallel runs 8 pollers at once, where
// fsync always shares one fsync among the appends waiting for it.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []string{FsyncNever, FsyncInterval, FsyncAlways} {
		b.Run(policy, func(b *testing.B) {
			q := mustOpen(b, Config{Dir: b.TempDir(), MaxBytes: 1 << 30, Fsync: policy}, nil, nil)
			r := reading("M01", 1)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := q.Append(r); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
		})
		b.Run(policy+"-parallel", func(b *testing.B) {
			reg := prometheus.NewRegistry()
			q := mustOpen(b, Config{Dir: b.TempDir(), MaxBytes: 1 << 30, Fsync: policy}, nil, NewMetrics(reg))
			start := fsyncCount(b, reg)
			var pollers atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4) // 4 × GOMAXPROCS goroutines
			b.RunParallel(func(pb *testing.PB) {
				r := reading(fmt.Sprintf("M%02d", pollers.Add(1)), 1)
				for pb.Next() {
					if _, err := q.Append(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
			b.ReportMetric(float64(fsyncCount(b, reg)-start)/float64(b.N), "fsyncs/reading")
		})
	}
}

// BenchmarkReplay measures delivering a backlog after a restart: Peek 100, Ack, repeat.
func BenchmarkReplay(b *testing.B) {
	benchReplay(b, func(ctx context.Context, q *Queue) (uint64, int, error) {
		es, err := q.Peek(ctx, 100)
		if err != nil {
			return 0, 0, err
		}
		return es[len(es)-1].ID, len(es), nil
	})
}

// BenchmarkReplayRaw is BenchmarkReplay the way the edge's forwarder replays: PeekRaw hands out
// the stored payloads, which are published as they are, without decoding them.
func BenchmarkReplayRaw(b *testing.B) {
	benchReplay(b, func(ctx context.Context, q *Queue) (uint64, int, error) {
		es, err := q.PeekRaw(ctx, 100)
		if err != nil {
			return 0, 0, err
		}
		return es[len(es)-1].ID, len(es), nil
	})
}

// benchReplay spools b.N readings, reopens the spool as after a restart, and times peek (which
// returns the last ID it handed out and how many) and Ack until the backlog is delivered.
func benchReplay(b *testing.B, peek func(context.Context, *Queue) (last uint64, n int, err error)) {
	cfg := Config{Dir: b.TempDir(), MaxBytes: 1 << 30, Fsync: FsyncNever}
	q, err := Open(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		mustAppend(b, q, reading(kill9Meters[i%len(kill9Meters)], i))
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	q = mustOpen(b, cfg, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		last, got, err := peek(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(last); err != nil {
			b.Fatal(err)
		}
		n += got
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
	if q.Len() != 0 {
		b.Fatalf("Len = %d after replaying everything", q.Len())
	}
}

// BenchmarkOpen measures recovering a spool of 64 MiB, as after a crash (state.json accounts for
// every sealed segment, the last one is decoded).
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	cfg := Config{Dir: dir, MaxBytes: 1 << 30, Fsync: FsyncNever}
	q := mustOpen(b, cfg, nil, nil)
	for i := 0; q.Bytes() < 64<<20; i++ {
		mustAppend(b, q, reading(kill9Meters[i%len(kill9Meters)], i))
	}
	img := crashImage(b, dir)
	readings, size := q.Len(), q.Bytes()
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		q, err := Open(Config{Dir: img, Fsync: FsyncNever}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if q.Len() != readings {
			b.Fatalf("Len = %d after recovery, want %d", q.Len(), readings)
		}
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
