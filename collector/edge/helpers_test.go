package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/modbus"
	"github.com/aqualoop/aqualoop/collector/opcua"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/sim"
	"github.com/aqualoop/aqualoop/collector/spool"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// plantConfig reads every meter of the plant: the Modbus ones on bus "gateway-1", the OPC UA
// ones from server "scada" (subscribed), all every interval.
func plantConfig(p *sim.Plant, broker, spoolDir string, interval time.Duration) Config {
	cfg := Config{
		Site: "plant-a", Edge: "edge-1",
		MQTT:  publish.Broker{Servers: []string{broker}, MaxReconnectInterval: time.Second},
		Spool: spool.Config{Dir: spoolDir, FsyncInterval: 200 * time.Millisecond},
		Modbus: []modbus.Config{{
			Name: "gateway-1", Controller: "tcp://" + p.ModbusAddr(), Interval: interval, Timeout: time.Second,
		}},
		OPCUA: []opcua.Config{{
			Name: "scada", Endpoint: p.OPCUAEndpoint(), Interval: interval, Timeout: 5 * time.Second,
			ConnectBackoffMax: time.Second,
		}},
	}
	for _, m := range p.Meters() {
		switch m.Protocol {
		case sim.ProtocolModbus:
			cfg.Modbus[0].Meters = append(cfg.Modbus[0].Meters, modbus.Meter{
				Meter: m.ID, SlaveID: byte(m.SlaveID),
				Points: []modbus.Point{
					{Name: collector.PointFlow, Address: uint16(m.FlowRegister), Type: m.FlowType, ByteOrder: m.FlowByteOrder, Unit: "m3/h"},
					{Name: collector.PointTotal, Address: uint16(m.TotalRegister), Type: m.TotalType, ByteOrder: m.TotalByteOrder, Scale: m.TotalScale, Unit: "m3"},
				},
			})
		default:
			cfg.OPCUA[0].Meters = append(cfg.OPCUA[0].Meters, opcua.Meter{
				Meter: m.ID,
				Nodes: []opcua.Node{
					{Name: collector.PointFlow, NodeID: m.FlowNode, Unit: "m3/h"},
					{Name: collector.PointTotal, NodeID: m.TotalNode, Unit: "m3"},
				},
			})
		}
	}
	cfg.Default()
	return cfg
}

// meterIDs lists the meters cfg reads.
func meterIDs(cfg Config) []string {
	var ids []string
	for _, b := range cfg.Modbus {
		for _, m := range b.Meters {
			ids = append(ids, m.Meter)
		}
	}
	for _, s := range cfg.OPCUA {
		for _, m := range s.Meters {
			ids = append(ids, m.Meter)
		}
	}
	return ids
}

// logBuffer collects JSON log lines from any goroutine.
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
	data := l.b.String()
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// runEdge runs an edge until stop is called or the test ends, and returns its HTTP address.
func runEdge(t *testing.T, cfg Config, logger *slog.Logger, reg *prometheus.Registry) (addr string, stop func()) {
	t.Helper()
	ready := make(chan string, 1)
	e, err := New(cfg, Options{Logger: logger, Registry: reg, Ready: func(a string) { ready <- a }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("edge not ready after 20s")
	}
	return addr, stop
}

// eventually waits up to limit for cond. The limit only bounds a hung test; nothing asserts how
// fast cond became true.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// health is /healthz as the edge serves it.
type health struct {
	Status          int                        `json:"-"`
	Site            string                     `json:"site"`
	Edge            string                     `json:"edge"`
	BrokerConnected bool                       `json:"broker_connected"`
	BrokerError     string                     `json:"broker_error"`
	Spool           map[string]float64         `json:"spool"`
	Buses           map[string]json.RawMessage `json:"buses"`
}

func getHealth(t *testing.T, addr string) health {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("decode /healthz: %v", err)
	}
	h.Status = resp.StatusCode
	return h
}

// getMetrics reads /metrics into a map from series ("name{label="v",...}" as exposed) to value.
func getMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// recorder is an MQTT subscriber with a persistent session that records the sequence numbers
// it receives per meter.
type recorder struct {
	mu     sync.Mutex
	seqs   map[string]map[uint64]int // meter → seq → times received
	newest map[string]time.Time      // meter → time of the newest reading received
	dups   int
	bad    []string
	c      mqtt.Client
}

func newRecorder(t *testing.T, broker, site string) *recorder {
	t.Helper()
	r := &recorder{seqs: map[string]map[uint64]int{}, newest: map[string]time.Time{}}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("test-recorder-" + strings.ReplaceAll(t.Name(), "/", "-")).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetConnectTimeout(5 * time.Second)
	filter := wire.ReadingTopic(site, "+")
	opts.SetDefaultPublishHandler(r.handle)
	r.c = mqtt.NewClient(opts)
	if tok := r.c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("recorder connect: %v", tok.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(50) })
	if tok := r.c.Subscribe(filter, 1, r.handle); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return r
}

func (r *recorder) handle(_ mqtt.Client, m mqtt.Message) {
	rd, err := wire.Decode(m.Payload())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		return
	}
	if r.seqs[rd.Meter] == nil {
		r.seqs[rd.Meter] = map[uint64]int{}
	}
	r.seqs[rd.Meter][rd.Seq]++
	if rd.Time.After(r.newest[rd.Meter]) {
		r.newest[rd.Meter] = rd.Time
	}
	if r.seqs[rd.Meter][rd.Seq] > 1 {
		r.dups++
	}
}

// readSince reports the meters of which no reading taken at or after t has arrived yet.
func (r *recorder) readSince(meters []string, t time.Time) (waiting []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range meters {
		if r.newest[m].Before(t) {
			waiting = append(waiting, m)
		}
	}
	return waiting
}

// missing lists, per meter, the seqs of 1..last that never arrived.
func (r *recorder) missing(last map[string]uint64) map[string][]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]uint64{}
	for m, n := range last {
		for s := uint64(1); s <= n; s++ {
			if r.seqs[m][s] == 0 {
				out[m] = append(out[m], s)
			}
		}
	}
	return out
}

// lastSeqs reopens a spool the edge has left and reports the last sequence number it stamped
// for each meter. The spool exports no accessor for them, but Append stamps the next one: the
// probe readings it appends go to a spool nobody reads any more.
func lastSeqs(t *testing.T, cfg spool.Config, site string, meters []string) map[string]uint64 {
	t.Helper()
	q, err := spool.Open(cfg, nil, nil)
	if err != nil {
		t.Fatalf("reopen spool: %v", err)
	}
	defer q.Close()
	out := map[string]uint64{}
	for _, m := range meters {
		r, err := q.Append(collector.Reading{
			Site: site, Meter: m, Time: time.Now(), TimeSource: collector.TimeSourceCollector,
			Points: []collector.Point{{Name: collector.PointTotal, Unit: "m3", Quality: collector.Bad, Error: "probe"}},
		})
		if err != nil {
			t.Fatalf("probe append for %s: %v", m, err)
		}
		out[m] = r.Seq - 1
	}
	return out
}
