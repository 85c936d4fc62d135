package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/modbus"
	"github.com/aqualoop/aqualoop/collector/opcua"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/sim"
	"github.com/aqualoop/aqualoop/collector/spool"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// edgeBinary is the aqualoop-edge binary that TestMain builds from this package.
var edgeBinary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "aqualoop-edge-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		edgeBinary = filepath.Join(dir, "aqualoop-edge")
		out, err := exec.Command("go", "build", "-o", edgeBinary, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build aqualoop-edge: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// writeConfig writes an edge file that reads every meter of the plant (Modbus meters on bus
// "gateway-1", OPC UA meters subscribed on server "scada") every interval, publishes to broker
// and spools in spoolDir, changed by edit if given, and returns its path and the config.
func writeConfig(t *testing.T, p *sim.Plant, broker, spoolDir string, interval time.Duration, edit ...func(*edge.Config)) (string, edge.Config) {
	t.Helper()
	cfg := edge.Config{
		Site: "plant-a", Edge: "edge-1",
		MQTT:  publish.Broker{Servers: []string{broker}, MaxReconnectInterval: time.Second},
		HTTP:  edge.HTTP{Listen: "127.0.0.1:0"},
		Spool: spool.Config{Dir: spoolDir, Fsync: spool.FsyncInterval, FsyncInterval: 200 * time.Millisecond},
		Modbus: []modbus.Config{{
			Name: "gateway-1", Controller: "tcp://" + p.ModbusAddr(), Interval: interval, Timeout: time.Second,
		}},
		OPCUA: []opcua.Config{{
			Name: "scada", Endpoint: p.OPCUAEndpoint(), Interval: interval, Timeout: 5 * time.Second,
			ConnectBackoffMax: time.Second,
		}},
	}
	for _, m := range p.Meters() {
		if m.Protocol == sim.ProtocolModbus {
			cfg.Modbus[0].Meters = append(cfg.Modbus[0].Meters, modbus.Meter{
				Meter: m.ID, SlaveID: byte(m.SlaveID),
				Points: []modbus.Point{
					{Name: collector.PointFlow, Address: uint16(m.FlowRegister), Type: m.FlowType, ByteOrder: m.FlowByteOrder, Unit: "m3/h"},
					{Name: collector.PointTotal, Address: uint16(m.TotalRegister), Type: m.TotalType, ByteOrder: m.TotalByteOrder, Scale: m.TotalScale, Unit: "m3"},
				},
			})
			continue
		}
		cfg.OPCUA[0].Meters = append(cfg.OPCUA[0].Meters, opcua.Meter{
			Meter: m.ID,
			Nodes: []opcua.Node{
				{Name: collector.PointFlow, NodeID: m.FlowNode, Unit: "m3/h"},
				{Name: collector.PointTotal, NodeID: m.TotalNode, Unit: "m3"},
			},
		})
	}
	for _, f := range edit {
		f(&cfg)
	}
	data, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := edge.LoadConfig(path)
	if err != nil {
		t.Fatalf("the generated config does not load: %v\n%s", err, data)
	}
	return path, *loaded
}

// meterIDs lists the meters cfg reads.
func meterIDs(cfg edge.Config) []string {
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

// edgeProc is one run of the aqualoop-edge binary, its log in a file of the test.
type edgeProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // exit status, valid after done
	addr    string
}

var listening = regexp.MustCompile(`msg="edge listening" url=http://([^/ ]+)/healthz`)

// startEdge runs `aqualoop-edge collect --config cfgPath` and waits until it serves HTTP. Its
// log goes to logPath, appended, so consecutive runs share one file.
func startEdge(t *testing.T, cfgPath, logPath string) *edgeProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(edgeBinary, "collect", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start aqualoop-edge: %v", err)
	}
	p := &edgeProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if i := strings.LastIndex(string(data), "=== start"); i >= 0 {
			if m := listening.FindStringSubmatch(string(data[i:])); m != nil {
				p.addr = m[1]
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("aqualoop-edge exited before listening: %v\n%s", p.err, data)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("aqualoop-edge not listening after 30s:\n%s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL, as a power cut or the OOM killer would, and waits for the exit.
func (p *edgeProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 aqualoop-edge: %v", err)
	}
	<-p.done
}

// stop sends SIGTERM and checks the edge exits cleanly.
func (p *edgeProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM aqualoop-edge: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("aqualoop-edge did not exit within 30s of SIGTERM")
	}
	if p.err != nil {
		t.Errorf("aqualoop-edge exited with %v after SIGTERM; log:\n%s", p.err, p.log())
	}
}

func (p *edgeProc) log() string {
	data, _ := os.ReadFile(p.logPath)
	return string(data)
}

// health is the part of /healthz the tests read.
type health struct {
	BrokerConnected bool               `json:"broker_connected"`
	Spool           map[string]float64 `json:"spool"`
}

func (p *edgeProc) health(t *testing.T) health {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("decode /healthz: %v", err)
	}
	return h
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

// client connects a test MQTT client; persistent clients keep their session and reconnect.
func client(t *testing.T, broker, id string, persistent bool, handle mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(!persistent).
		SetAutoReconnect(persistent).SetConnectRetry(persistent).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetConnectTimeout(5 * time.Second).SetDefaultPublishHandler(handle)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func subscribe(t *testing.T, c mqtt.Client, filter string, handle mqtt.MessageHandler) {
	t.Helper()
	if tok := c.Subscribe(filter, 1, handle); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

// recorder records every (meter, seq) it receives, how often, and the reading time first seen
// with it: the same seq with another time would mean a number was used twice.
type recorder struct {
	mu        sync.Mutex
	times     map[string]map[uint64]time.Time
	count     map[string]map[uint64]int
	received  int
	dups      int
	conflicts []string
	bad       []string
}

func newRecorder() *recorder {
	return &recorder{times: map[string]map[uint64]time.Time{}, count: map[string]map[uint64]int{}}
}

func (r *recorder) handle(_ mqtt.Client, m mqtt.Message) {
	rd, err := wire.Decode(m.Payload())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		return
	}
	r.received++
	if r.count[rd.Meter] == nil {
		r.count[rd.Meter] = map[uint64]int{}
		r.times[rd.Meter] = map[uint64]time.Time{}
	}
	r.count[rd.Meter][rd.Seq]++
	if r.count[rd.Meter][rd.Seq] == 1 {
		r.times[rd.Meter][rd.Seq] = rd.Time
		return
	}
	r.dups++
	if first := r.times[rd.Meter][rd.Seq]; !first.Equal(rd.Time) {
		r.conflicts = append(r.conflicts, fmt.Sprintf("%s seq %d at %s and at %s", rd.Meter, rd.Seq, first.Format(time.RFC3339Nano), rd.Time.Format(time.RFC3339Nano)))
	}
}

// meters is how many meters have sent something.
func (r *recorder) meters() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// gaps lists, per meter, the seqs of 1..last that never arrived and those above last that did.
func (r *recorder) gaps(last map[string]uint64) (missing, beyond map[string][]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing, beyond = map[string][]uint64{}, map[string][]uint64{}
	for m, n := range last {
		for s := uint64(1); s <= n; s++ {
			if r.count[m][s] == 0 {
				missing[m] = append(missing[m], s)
			}
		}
		for s := range r.count[m] {
			if s > n || s == 0 {
				beyond[m] = append(beyond[m], s)
			}
		}
	}
	return missing, beyond
}

// lastSeqs reopens the spool the edge left and reports the last sequence number it stamped for
// each meter, and how many readings it still holds undelivered.
func lastSeqs(t *testing.T, cfg spool.Config, meters []string) (map[string]uint64, int) {
	t.Helper()
	q, err := spool.Open(cfg, nil, nil)
	if err != nil {
		t.Fatalf("reopen spool: %v", err)
	}
	defer q.Close()
	out := map[string]uint64{}
	for _, m := range meters {
		out[m] = q.LastSeq(m)
	}
	return out, q.Len()
}

// logLines counts the lines of log that contain s.
func logLines(log, s string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}
