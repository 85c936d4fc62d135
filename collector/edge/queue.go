package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
)

// sequencer hands out per-meter sequence numbers.
type sequencer struct {
	mu   sync.Mutex
	last map[string]uint64
}

func newSequencer() *sequencer { return &sequencer{last: map[string]uint64{}} }

func (s *sequencer) next(meter string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[meter]++
	return s.last[meter]
}

// queue is a bounded FIFO between the sources and the forwarder. When full it drops the oldest
// reading and counts it, so the newest data always gets through.
type queue struct {
	mu      sync.Mutex
	items   []collector.Reading
	max     int
	notify  chan struct{}
	depth   prometheus.Gauge
	dropped prometheus.Counter
}

func newQueue(max int, reg prometheus.Registerer) *queue {
	q := &queue{
		max:    max,
		notify: make(chan struct{}, 1),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aqualoop_edge_queue_readings", Help: "Readings waiting to be acknowledged by the broker.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_edge_queue_dropped_total", Help: "Oldest readings dropped because the queue was full.",
		}),
	}
	if reg != nil {
		reg.MustRegister(q.depth, q.dropped)
	}
	return q
}

// Push appends r and returns how many old readings it had to drop.
func (q *queue) Push(r collector.Reading) int {
	q.mu.Lock()
	dropped := 0
	if len(q.items) >= q.max {
		dropped = len(q.items) - q.max + 1
		q.items = q.items[dropped:]
		q.dropped.Add(float64(dropped))
	}
	q.items = append(q.items, r)
	q.depth.Set(float64(len(q.items)))
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return dropped
}

// Peek waits for the oldest reading without removing it.
func (q *queue) Peek(ctx context.Context) (collector.Reading, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			r := q.items[0]
			q.mu.Unlock()
			return r, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return collector.Reading{}, false
		case <-q.notify:
		}
	}
}

// Pop removes the oldest reading.
func (q *queue) Pop() {
	q.mu.Lock()
	if len(q.items) > 0 {
		q.items[0] = collector.Reading{}
		q.items = q.items[1:]
	}
	q.depth.Set(float64(len(q.items)))
	q.mu.Unlock()
}

// Len is the number of readings waiting.
func (q *queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
