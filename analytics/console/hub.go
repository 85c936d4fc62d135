package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics/engine"
)

// Figures are the compact figures of one period that an event carries: enough for the header
// and the overview tiles to move without fetching anything.
type Figures struct {
	ReuseRate *float64 `json:"r"`
	Vi        float64  `json:"vi"`
	Vr        float64  `json:"vr"`
	Vd        float64  `json:"vd"`
	Vl        float64  `json:"vl"`
	Coverage  float64  `json:"coverage"`
}

// Event says that the snapshot of a site or park changed. It is a few hundred bytes where the
// snapshot itself is over 100 kB: the page fetches what it shows, when it shows it.
type Event struct {
	Site     string    `json:"site"`
	Boundary string    `json:"boundary"`
	At       time.Time `json:"at"`
	// Seq counts the hub's events; it restarts with the process (see Hello).
	Seq   uint64  `json:"seq"`
	Hour  Figures `json:"hour"`
	Day   Figures `json:"day"`
	Month Figures `json:"month"`
}

func figures(f engine.Figures) Figures {
	ind := f.Indicators
	r := ind.ReuseRate
	if ind.Declared == "reuse_rate_with_vu" {
		r = ind.ReuseRateWithVu
	}
	return Figures{ReuseRate: r, Vi: ind.Volumes.Vi, Vr: ind.Volumes.Vr, Vd: ind.Volumes.Vd, Vl: ind.Volumes.Vl, Coverage: ind.Coverage}
}

// HubOptions configure a Hub. Zero values take the defaults.
type HubOptions struct {
	// MaxClients bounds the open event streams (default 256); one more is answered 503.
	MaxClients int
	// Heartbeat is the interval of the comment lines that keep proxies from closing an idle
	// stream (default 20 s).
	Heartbeat time.Duration
	Logger    *slog.Logger
	Metrics   *Metrics
}

// Metrics count the hub's streams and events: platform health.
type Metrics struct {
	clients prometheus.Gauge
	events  prometheus.Counter
	dropped prometheus.Counter
}

// NewMetrics registers the console's metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aqualoop_console_streams", Help: "Open server-sent event streams of the console."}),
		events:  prometheus.NewCounter(prometheus.CounterOpts{Name: "aqualoop_console_events_total", Help: "Snapshot events published to the console's streams."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "aqualoop_console_events_dropped_total", Help: "Events not sent to a stream whose client was too slow; the next event carries the same figures."}),
	}
	if reg != nil {
		reg.MustRegister(m.clients, m.events, m.dropped)
	}
	return m
}

// Hub fans the evaluator's snapshots out to the console's browsers as server-sent events. Its
// Sink never blocks the evaluator: a client that cannot keep up misses events, which is
// harmless since every event carries the whole compact state of its site.
type Hub struct {
	o        HubOptions
	instance string // changes with every process, so a page knows the server restarted

	mu      sync.Mutex
	seq     uint64
	last    map[string][]byte // latest event by site or park
	clients map[*client]struct{}
	closed  bool
	done    chan struct{}
}

type client struct {
	site string // "" for every site
	ch   chan []byte
}

// NewHub returns a hub; Run closes its streams when the platform stops.
func NewHub(o HubOptions) *Hub {
	if o.MaxClients <= 0 {
		o.MaxClients = 256
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return &Hub{o: o, instance: strconv.FormatInt(time.Now().UnixNano(), 36), last: map[string][]byte{},
		clients: map[*client]struct{}{}, done: make(chan struct{})}
}

// Run waits for ctx to end, then ends every open stream, so that the HTTP server's graceful
// shutdown is not held up by browsers that would keep listening forever.
func (h *Hub) Run(ctx context.Context) error {
	<-ctx.Done()
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	return nil
}

// Sink returns the engine sink that publishes every snapshot.
func (h *Hub) Sink() engine.Sink {
	return func(_ context.Context, s engine.Snapshot) { h.Publish(s) }
}

// Publish sends the compact form of a snapshot to the streams that follow its site.
func (h *Hub) Publish(s engine.Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev := Event{Site: s.Site, Boundary: s.Boundary, At: s.At, Seq: h.seq, Hour: figures(s.Hour), Day: figures(s.Day), Month: figures(s.Month)}
	b, err := json.Marshal(ev)
	if err != nil { // cannot happen: every field is a plain value
		h.o.Logger.Error("encode console event", "site", s.Site, "err", err)
		return
	}
	msg := fmt.Appendf(nil, "event: snapshot\nid: %d\ndata: %s\n\n", ev.Seq, b)
	h.last[s.Site] = msg
	h.o.Metrics.events.Inc()
	for c := range h.clients {
		if c.site != "" && c.site != s.Site {
			continue
		}
		select {
		case c.ch <- msg:
		default:
			h.o.Metrics.dropped.Inc()
		}
	}
}

// ServeHTTP streams events: GET /api/v1/events?site=<site or park id> (all when absent). The
// stream opens with a hello event naming the server instance and then the latest event of each
// followed site, so a page that reconnects after a restart is current at once.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "this connection cannot stream")
		return
	}
	c := &client{site: r.URL.Query().Get("site"), ch: make(chan []byte, 16)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "the platform is stopping")
		return
	}
	if len(h.clients) >= h.o.MaxClients {
		h.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d event streams are open, the most this platform serves; close a console tab", h.o.MaxClients))
		return
	}
	h.clients[c] = struct{}{}
	var backlog [][]byte
	for site, msg := range h.last {
		if c.site == "" || c.site == site {
			backlog = append(backlog, msg)
		}
	}
	h.mu.Unlock()
	h.o.Metrics.clients.Inc()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		h.o.Metrics.clients.Dec()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	// retry tells EventSource how soon to reconnect after the server went away.
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: {\"instance\":%q}\n\n", h.instance)
	for _, msg := range backlog {
		w.Write(msg)
	}
	fl.Flush()

	beat := time.NewTicker(h.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case msg := <-c.ch:
			if _, err := w.Write(msg); err != nil {
				return
			}
			fl.Flush()
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
