package modbus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mbserver "github.com/simonvetter/modbus"
	"go.yaml.in/yaml/v3"
)

// registerImage is a registers.yaml: what each unit id serves. Values are given as runs
// starting at an address; an address outside every run answers "illegal data address", as a
// real device does for a register it does not have.
type registerImage struct {
	Units map[byte]*unitImage `yaml:"units"`
}

type unitImage struct {
	Holding  map[uint16][]uint16 `yaml:"holding"`
	Input    map[uint16][]uint16 `yaml:"input"`
	Coil     map[uint16][]bool   `yaml:"coil"`
	Discrete map[uint16][]bool   `yaml:"discrete"`
	// Exceptions answer any read that touches Address in Register with exception Code.
	Exceptions []injectedException `yaml:"exceptions"`
}

type injectedException struct {
	Register string `yaml:"register"`
	Address  uint16 `yaml:"address"`
	Code     byte   `yaml:"code"`
}

func loadImage(t testing.TB, path string) *registerImage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var img registerImage
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&img); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &img
}

// flat returns a unit's table as address → value.
func flatWords(runs map[uint16][]uint16) map[uint16]uint16 {
	out := map[uint16]uint16{}
	for start, vs := range runs {
		for i, v := range vs {
			out[start+uint16(i)] = v
		}
	}
	return out
}

func flatBits(runs map[uint16][]bool) map[uint16]bool {
	out := map[uint16]bool{}
	for start, vs := range runs {
		for i, v := range vs {
			out[start+uint16(i)] = v
		}
	}
	return out
}

// testServer is a real Modbus TCP server (github.com/simonvetter/modbus) on 127.0.0.1 serving a
// register image per unit id. Tests can make it stall once (to provoke a client timeout), stop
// and start it on the same port, and count what it served.
type testServer struct {
	t    testing.TB
	addr string

	mu        sync.Mutex
	srv       *mbserver.ModbusServer
	holding   map[byte]map[uint16]uint16
	input     map[byte]map[uint16]uint16
	coil      map[byte]map[uint16]bool
	discrete  map[byte]map[uint16]bool
	exc       map[byte][]injectedException
	stallOnce map[byte]time.Duration
	reads     int
	clients   map[string]bool
}

func startServer(t testing.TB, img *registerImage) *testServer {
	t.Helper()
	s := &testServer{
		t:       t,
		holding: map[byte]map[uint16]uint16{}, input: map[byte]map[uint16]uint16{},
		coil: map[byte]map[uint16]bool{}, discrete: map[byte]map[uint16]bool{},
		exc: map[byte][]injectedException{}, stallOnce: map[byte]time.Duration{}, clients: map[string]bool{},
	}
	for unit, u := range img.Units {
		s.holding[unit] = flatWords(u.Holding)
		s.input[unit] = flatWords(u.Input)
		s.coil[unit] = flatBits(u.Coil)
		s.discrete[unit] = flatBits(u.Discrete)
		s.exc[unit] = u.Exceptions
	}
	// simonvetter/modbus cannot report the port it bound, so take a free one and hand it over.
	var err error
	for range 5 {
		s.addr = freePort(t)
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start modbus server: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (s *testServer) start() error {
	srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{
		URL: "tcp://" + s.addr, Timeout: time.Minute, MaxClients: 100,
		Logger: log.New(io.Discard, "", 0),
	}, s)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return nil
}

// stop closes the listener and every client connection.
func (s *testServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// restart starts the server again on the same port after stop.
func (s *testServer) restart() {
	s.t.Helper()
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("restart modbus server on %s: %v", s.addr, err)
}

func (s *testServer) controller() string { return "tcp://" + s.addr }

// stall makes the next read for unit wait d before answering.
func (s *testServer) stall(unit byte, d time.Duration) {
	s.mu.Lock()
	s.stallOnce[unit] = d
	s.mu.Unlock()
}

// served is the number of read requests answered (or refused) so far.
func (s *testServer) served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// connections is the number of distinct client connections seen.
func (s *testServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

var exceptionErrors = map[byte]error{
	1: mbserver.ErrIllegalFunction, 2: mbserver.ErrIllegalDataAddress, 3: mbserver.ErrIllegalDataValue,
	4: mbserver.ErrServerDeviceFailure, 5: mbserver.ErrAcknowledge, 6: mbserver.ErrServerDeviceBusy,
	8: mbserver.ErrMemoryParityError, 10: mbserver.ErrGWPathUnavailable, 11: mbserver.ErrGWTargetFailedToRespond,
}

// begin does what every read has in common: count it, stall if asked, and decide on exceptions.
// A unit the image does not have answers as a gateway does for a silent slave.
func (s *testServer) begin(client string, unit byte, register string, addr, qty uint16) error {
	s.mu.Lock()
	s.reads++
	s.clients[client] = true
	stall := s.stallOnce[unit]
	delete(s.stallOnce, unit)
	_, known := s.holding[unit]
	excs := s.exc[unit]
	s.mu.Unlock()
	if stall > 0 {
		time.Sleep(stall)
	}
	if !known {
		return mbserver.ErrGWTargetFailedToRespond
	}
	for _, e := range excs {
		if e.Register == register && e.Address >= addr && int(e.Address) < int(addr)+int(qty) {
			if err, ok := exceptionErrors[e.Code]; ok {
				return err
			}
			return fmt.Errorf("exception code %d cannot be sent by this server", e.Code)
		}
	}
	return nil
}

func (s *testServer) words(table map[byte]map[uint16]uint16, unit byte, addr, qty uint16) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint16, qty)
	for i := range out {
		v, ok := table[unit][addr+uint16(i)]
		if !ok {
			return nil, mbserver.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

func (s *testServer) bits(table map[byte]map[uint16]bool, unit byte, addr, qty uint16) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, qty)
	for i := range out {
		v, ok := table[unit][addr+uint16(i)]
		if !ok {
			return nil, mbserver.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

func (s *testServer) HandleCoils(req *mbserver.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, mbserver.ErrIllegalFunction
	}
	if err := s.begin(req.ClientAddr, req.UnitId, RegisterCoil, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	return s.bits(s.coil, req.UnitId, req.Addr, req.Quantity)
}

func (s *testServer) HandleDiscreteInputs(req *mbserver.DiscreteInputsRequest) ([]bool, error) {
	if err := s.begin(req.ClientAddr, req.UnitId, RegisterDiscrete, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	return s.bits(s.discrete, req.UnitId, req.Addr, req.Quantity)
}

func (s *testServer) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, mbserver.ErrIllegalFunction
	}
	if err := s.begin(req.ClientAddr, req.UnitId, RegisterHolding, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	return s.words(s.holding, req.UnitId, req.Addr, req.Quantity)
}

func (s *testServer) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	if err := s.begin(req.ClientAddr, req.UnitId, RegisterInput, req.Addr, req.Quantity); err != nil {
		return nil, err
	}
	return s.words(s.input, req.UnitId, req.Addr, req.Quantity)
}

// garbler is a TCP relay in front of a server that can corrupt the next Modbus TCP answer: it
// changes the answer's unit id and follows it with stray bytes, as a confused gateway or a
// half-dead line does. No real server misbehaves on request, hence the relay.
type garbler struct {
	ln      net.Listener
	backend string
	armed   atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func startGarbler(t testing.TB, backend string) *garbler {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &garbler{ln: ln, backend: backend}
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		for _, c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *garbler) controller() string { return "tcp://" + g.ln.Addr().String() }

// garbleNext corrupts the next answer that passes through.
func (g *garbler) garbleNext() { g.armed.Store(true) }

func (g *garbler) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", g.backend)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, b)
		g.mu.Unlock()
		g.wg.Add(2)
		go func() { defer g.wg.Done(); io.Copy(b, c); b.Close() }()
		go func() { defer g.wg.Done(); g.answers(c, b); c.Close() }()
	}
}

// answers relays MBAP frames from the server to the client, corrupting one when armed.
func (g *garbler) answers(client, server net.Conn) {
	hdr := make([]byte, 7)
	for {
		if _, err := io.ReadFull(server, hdr); err != nil {
			return
		}
		body := make([]byte, int(binary.BigEndian.Uint16(hdr[4:]))-1)
		if _, err := io.ReadFull(server, body); err != nil {
			return
		}
		frame := append(hdr[:7:7], body...)
		if g.armed.CompareAndSwap(true, false) {
			frame[6] ^= 0x5A
			frame = append(frame, 0xDE, 0xAD, 0xBE, 0xEF, 0x00)
		}
		if _, err := client.Write(frame); err != nil {
			return
		}
	}
}
