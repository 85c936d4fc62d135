package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
)

var base = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

// reading is the i-th test reading of meter: its time is base+i seconds and its total is i, so a
// reading read back can be checked against the one written.
func reading(meter string, i int) collector.Reading {
	return collector.Reading{
		Site: "demo", Meter: meter, Edge: "edge-1",
		Time:       base.Add(time.Duration(i) * time.Second),
		TimeSource: collector.TimeSourceCollector,
		Points: []collector.Point{
			{Name: collector.PointTotal, Value: float64(i), Unit: "m3", Quality: collector.Good},
			{Name: collector.PointFlow, Value: 1.5, Unit: "m3/h", Quality: collector.Good},
		},
	}
}

// logBuffer collects JSON log lines; safe for the queue's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the logged records with the given message.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustOpen opens a queue that the test closes at its end (a second Close is harmless).
func mustOpen(t testing.TB, cfg Config, log *slog.Logger, m *Metrics) *Queue {
	t.Helper()
	q, err := Open(cfg, log, m)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func mustAppend(t testing.TB, q *Queue, r collector.Reading) collector.Reading {
	t.Helper()
	out, err := q.Append(r)
	if err != nil {
		t.Fatalf("append %s: %v", r.Meter, err)
	}
	return out
}

// peekAll returns every unacknowledged reading without acknowledging them.
func peekAll(t testing.TB, q *Queue) []Entry {
	t.Helper()
	n := q.Len()
	if n == 0 {
		return nil
	}
	es, err := q.Peek(context.Background(), n)
	if err != nil {
		t.Fatalf("peek: %v", err)
	}
	if len(es) != n {
		t.Fatalf("peek %d returned %d", n, len(es))
	}
	return es
}

// crashImage copies the spool directory as a crash of the process would leave it: every file as
// the kernel has it, without the lock. The running queue is left alone.
func crashImage(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// segmentFiles lists the segment files of dir in ID order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fsyncCount is the number of fsyncs the metrics observed.
func fsyncCount(t testing.TB, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "aqualoop_spool_fsync_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no fsync histogram")
	return 0
}
