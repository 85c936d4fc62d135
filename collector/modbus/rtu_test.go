package modbus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// The RTU tests run our Source against Debian's pymodbus RTU slave (testdata/rtu_slave.py) over a
// real pseudo-terminal pair made by socat, and over TCP through a socat bridge to that slave's
// line, which is what a serial device server does. Without socat or python3-pymodbus they skip,
// except under CI, where skipping would hide them.

const python = "/usr/bin/python3"

func requireRTUTools(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("socat"); err != nil {
		missing = append(missing, "socat")
	}
	if err := exec.Command(python, "-c", "import pymodbus, serial_asyncio").Run(); err != nil {
		missing = append(missing, "python3-pymodbus ("+err.Error()+")")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and %s missing: install them (apt-get install socat python3-pymodbus)", strings.Join(missing, ", "))
	}
	t.Skipf("%s missing", strings.Join(missing, ", "))
}

// startProcess runs a helper process until the test ends; its stderr goes to the test log on
// failure.
func startProcess(t *testing.T, name string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func runUntilCleanup(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(cmd.Path), stderr.String())
		}
	})
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startRTUSlave serves img as a pymodbus RTU slave on the serial device dev.
func startRTUSlave(t *testing.T, img *registerImage, dev string) {
	t.Helper()
	units := map[string]map[string]map[string]int{}
	for unit, u := range img.Units {
		tables := map[string]map[string]int{}
		put := func(name string, vals map[uint16]int) {
			m := map[string]int{}
			for a, v := range vals {
				m[strconv.Itoa(int(a))] = v
			}
			tables[name] = m
		}
		put(RegisterHolding, intWords(flatWords(u.Holding)))
		put(RegisterInput, intWords(flatWords(u.Input)))
		put(RegisterCoil, intBits(flatBits(u.Coil)))
		put(RegisterDiscrete, intBits(flatBits(u.Discrete)))
		if len(u.Exceptions) > 0 {
			t.Fatalf("unit %d: the RTU slave cannot inject exceptions", unit)
		}
		units[strconv.Itoa(int(unit))] = tables
	}
	data, err := json.Marshal(units)
	if err != nil {
		t.Fatal(err)
	}
	imgPath := filepath.Join(t.TempDir(), "image.json")
	if err := os.WriteFile(imgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := startProcess(t, python, "testdata/rtu_slave.py", dev, imgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, cmd, stderr)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("rtu_slave.py ended before it was ready:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("rtu_slave.py not ready after 30 s:\n%s", stderr.String())
	}
}

func intWords(m map[uint16]uint16) map[uint16]int {
	out := make(map[uint16]int, len(m))
	for a, v := range m {
		out[a] = int(v)
	}
	return out
}

func intBits(m map[uint16]bool) map[uint16]int {
	out := make(map[uint16]int, len(m))
	for a, v := range m {
		if v {
			out[a] = 1
		} else {
			out[a] = 0
		}
	}
	return out
}

// serialLine starts a pseudo-terminal pair, the two ends of one serial line, and returns their
// paths: the slave goes on one, our Source on the other.
func serialLine(t *testing.T) (slaveEnd, masterEnd string) {
	t.Helper()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd, stderr := startProcess(t, "socat", "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	runUntilCleanup(t, cmd, stderr)
	waitForFile(t, a)
	waitForFile(t, b)
	return a, b
}

// serialServer starts a TCP-to-serial bridge (one connection, as many serial device servers
// allow) and returns the pseudo-terminal the slave must use and the TCP controller to dial.
func serialServer(t *testing.T) (slaveEnd, controller string) {
	t.Helper()
	a := filepath.Join(t.TempDir(), "a")
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	cmd, stderr := startProcess(t, "socat", "-d", "-d", "pty,raw,echo=0,link="+a,
		"tcp-listen:"+port+",reuseaddr,bind=127.0.0.1")
	runUntilCleanup(t, cmd, stderr)
	waitForFile(t, a) // socat opens the pty first, then waits for the one TCP client
	return a, "tcp://" + addr
}

// rtuCases can be served by the pymodbus slave: their exceptions come from missing addresses.
var rtuCases = []string{"types_byte_orders", "scale_offset", "address_base_1", "coils_discrete", "max_registers_split"}

func TestRTUSerialLine(t *testing.T) {
	requireRTUTools(t)
	for _, name := range rtuCases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			slaveEnd, ours := serialLine(t)
			startRTUSlave(t, loadImage(t, filepath.Join(dir, "registers.yaml")), slaveEnd)
			cfg := loadCaseConfig(t, dir)
			cfg.Transport, cfg.Controller, cfg.BaudRate, cfg.Parity = TransportRTU, ours, 9600, "N"
			rs, src := pollCase(t, cfg)
			checkCase(t, dir, rs, src)
		})
	}
}

func TestRTUOverTCP(t *testing.T) {
	requireRTUTools(t)
	for _, name := range []string{"types_byte_orders", "address_base_1"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			slaveEnd, controller := serialServer(t)
			startRTUSlave(t, loadImage(t, filepath.Join(dir, "registers.yaml")), slaveEnd)
			cfg := loadCaseConfig(t, dir)
			cfg.Transport, cfg.Controller = TransportRTUOverTCP, controller
			rs, src := pollCase(t, cfg)
			checkCase(t, dir, rs, src)
			// The bridge takes one client: a second poll must reuse the connection. (An exception
			// must not have closed it.)
			rs, _ = src.Poll(t.Context())
			checkCase(t, dir, rs, src)
		})
	}
}

// TestRTUSilentSlave: a slave that never answers times out, the port is reopened before the
// next read (a late answer must never be taken for the next one), and the other slave on the
// line is read in every poll.
func TestRTUSilentSlave(t *testing.T) {
	requireRTUTools(t)
	slaveEnd, ours := serialLine(t)
	startRTUSlave(t, &registerImage{Units: map[byte]*unitImage{
		1: {Holding: map[uint16][]uint16{0: {0, 1234}}},
	}}, slaveEnd)
	cfg := Config{
		Name: "line-1", Transport: TransportRTU, Controller: ours, Timeout: 300 * time.Millisecond, Interval: time.Hour,
		Meters: []Meter{
			{Meter: "silent", SlaveID: 9, Points: []Point{{Name: "total", Address: 0, Type: "UINT32"}}},
			{Meter: "alive", SlaveID: 1, Points: []Point{{Name: "total", Address: 0, Type: "UINT32"}}},
		},
	}
	src, err := New(cfg, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for poll := 1; poll <= 2; poll++ {
		rs, _ := src.Poll(t.Context())
		silent, alive := pointOf(t, rs, "silent", "total"), pointOf(t, rs, "alive", "total")
		if silent.Quality != collector.Bad || !strings.Contains(silent.Error, "read slave 9 holding address 0..1") {
			t.Errorf("poll %d: silent slave: %+v", poll, silent)
		}
		if alive.Quality != collector.Good || alive.Value != 1234 {
			t.Errorf("poll %d: slave 1 after slave 9 timed out: %+v", poll, alive)
		}
		// Slave 9 is read last: its timeout closes the port, and the next poll reopens it.
		if st := src.State(); st.Reconnects != uint64(poll-1) || st.Connected {
			t.Errorf("poll %d: state %+v, want the port closed and %d reconnects", poll, st, poll-1)
		}
	}

	// Probe speaks RTU on the same line.
	var out bytes.Buffer
	if err := Probe(t.Context(), ProbeConfig{Controller: ours, SlaveID: 1, Count: 2, Timeout: time.Second}, &out); err != nil {
		t.Fatalf("probe over RTU: %v", err)
	}
	if got := probeTable(t, out.String())["0"]["UINT32"]; len(got) != 4 || got[0] != "1234" {
		t.Errorf("probe over RTU, UINT32 at 0: %v\n%s", got, out.String())
	}
}
