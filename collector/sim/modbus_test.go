package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	mb "github.com/grid-x/modbus"
)

// modbusReading is one meter's four registers decoded the way an edge must: FLOAT32 with the low
// word first (CDAB) and UINT32 big-endian (ABCD).
type modbusReading struct {
	flow   float32
	counts uint32
}

func decodeMeter(t *testing.T, b []byte) modbusReading {
	t.Helper()
	if len(b) != 8 {
		t.Fatalf("got %d bytes, want 8", len(b))
	}
	lo, hi := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	return modbusReading{
		flow:   math.Float32frombits(uint32(hi)<<16 | uint32(lo)),
		counts: binary.BigEndian.Uint32(b[4:8]),
	}
}

type modbusClient struct {
	h *mb.TCPClientHandler
	c mb.Client
}

func dialModbus(t *testing.T, addr string) *modbusClient {
	t.Helper()
	h := mb.NewTCPClientHandler(addr)
	h.Timeout = 5 * time.Second
	if err := h.Connect(context.Background()); err != nil {
		t.Fatalf("connect modbus %s: %v", addr, err)
	}
	t.Cleanup(func() { h.Close() })
	return &modbusClient{h: h, c: mb.NewClient(h)}
}

func (m *modbusClient) read(t *testing.T, unit int, input bool) modbusReading {
	t.Helper()
	m.h.SetSlave(byte(unit))
	var b []byte
	var err error
	if input {
		b, err = m.c.ReadInputRegisters(context.Background(), 0, 4)
	} else {
		b, err = m.c.ReadHoldingRegisters(context.Background(), 0, 4)
	}
	if err != nil {
		t.Fatalf("read unit %d: %v", unit, err)
	}
	return decodeMeter(t, b)
}

// Totalizer differences read over Modbus equal the true volume, to the 0.01 m³ count, and the
// flow rate is the true one (noise off).
func TestModbusTotalsMatchTruth(t *testing.T) {
	c := testConfig(t)
	c.Noise = ptr(0.0)
	c.Meters = []MeterConfig{{ID: "M01", InitialTotal: 42949600}, {ID: "M16", InitialTotal: 1234.56}}
	wall := &wallClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newPlant(t, c, wall)
	runPlant(t, p)
	cl := dialModbus(t, p.ModbusAddr())

	var meters []MeterInfo
	for _, m := range p.Meters() {
		if m.Protocol == ProtocolModbus {
			meters = append(meters, m)
		}
	}
	if len(meters) != 9 {
		t.Fatalf("%d modbus meters, want 9", len(meters))
	}
	if got := cl.read(t, 1, false).counts; got != 4294960000 {
		t.Errorf("M01 at start reads %d counts, want the initial 4294960000", got)
	}

	wall.advance(time.Second) // one simulated hour at time scale 3600
	t1 := p.Now()
	first := map[string]modbusReading{}
	for _, m := range meters {
		r := cl.read(t, m.SlaveID, false)
		if in := cl.read(t, m.SlaveID, true); in != r {
			t.Errorf("%s: input registers %+v differ from holding %+v", m.ID, in, r)
		}
		if want := float32(p.Truth(t1, t1.Add(time.Hour)).Meters[m.ID]); math.Abs(float64(r.flow-want)) > 0.02*float64(want)+0.01 {
			t.Errorf("%s: flow %v m³/h, roughly %v expected", m.ID, r.flow, want)
		}
		if want := float32(p.trueRate(p.meters[index(p, m.ID)], t1)); r.flow != want {
			t.Errorf("%s: flow %v m³/h, want %v", m.ID, r.flow, want)
		}
		first[m.ID] = r
	}

	wall.advance(2500 * time.Millisecond)
	t2 := p.Now()
	truth := p.Truth(t1, t2)
	for _, m := range meters {
		r := cl.read(t, m.SlaveID, false)
		delta := float64(r.counts - first[m.ID].counts) // uint32 arithmetic wraps like the register
		got := delta * TotalResolution
		if want := truth.Meters[m.ID]; math.Abs(got-want) >= 0.01+1e-9 {
			t.Errorf("%s: totalizer moved %.2f m³, truth %.4f m³", m.ID, got, want)
		}
	}
}

func index(p *Plant, id string) int {
	for i, m := range p.meters {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// M01 starts 72.96 m³ below the UINT32 limit: a few simulated hours later the register has
// wrapped to a small value, and new − old + 2³² counts is the true volume.
func TestModbusTotalizerRollover(t *testing.T) {
	c := testConfig(t)
	c.Meters = []MeterConfig{{ID: "M01", InitialTotal: 42949600}}
	wall := &wallClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newPlant(t, c, wall)
	runPlant(t, p)
	cl := dialModbus(t, p.ModbusAddr())

	t0 := p.Now()
	before := cl.read(t, 1, false).counts
	wall.advance(4 * time.Second)
	t1 := p.Now()
	after := cl.read(t, 1, false).counts
	if after >= before {
		t.Fatalf("no rollover: %d counts then %d", before, after)
	}
	total := 42949600 + p.Truth(t0, t1).Meters["M01"]
	if want := uint32(math.Floor(total/TotalResolution) - (1 << 32)); after != want {
		t.Errorf("after rollover the register reads %d, want %d (%.2f m³ − 2³² × 0.01)", after, want, total)
	}
	vol := float64(uint64(after)+(1<<32)-uint64(before)) * TotalResolution
	if want := p.Truth(t0, t1).Meters["M01"]; math.Abs(vol-want) >= 0.01 {
		t.Errorf("volume across the rollover %.2f m³, truth %.4f", vol, want)
	}
}

func TestModbusExceptions(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	runPlant(t, p)
	cl := dialModbus(t, p.ModbusAddr())
	ctx := context.Background()
	tests := []struct {
		name string
		unit byte
		call func() error
		want byte
	}{
		{"unknown unit id behind the gateway", 99, func() error { _, err := cl.c.ReadHoldingRegisters(ctx, 0, 4); return err }, mb.ExceptionCodeGatewayTargetDeviceFailedToRespond},
		{"opcua meter has no unit", 12, func() error { _, err := cl.c.ReadHoldingRegisters(ctx, 0, 2); return err }, mb.ExceptionCodeGatewayTargetDeviceFailedToRespond},
		{"register past the image", 1, func() error { _, err := cl.c.ReadHoldingRegisters(ctx, 2, 4); return err }, mb.ExceptionCodeIllegalDataAddress},
		{"write is refused", 1, func() error { _, err := cl.c.WriteSingleRegister(ctx, 0, 1); return err }, mb.ExceptionCodeIllegalFunction},
		{"coils do not exist", 1, func() error { _, err := cl.c.ReadCoils(ctx, 0, 1); return err }, mb.ExceptionCodeIllegalFunction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl.h.SetSlave(tt.unit)
			err := tt.call()
			var me *mb.Error
			if !errors.As(err, &me) || me.ExceptionCode != tt.want {
				t.Fatalf("err = %v, want exception %d", err, tt.want)
			}
		})
	}
	// The connection survives exceptions and still serves a valid read.
	cl.h.SetSlave(4)
	b, err := cl.c.ReadHoldingRegisters(ctx, 2, 2)
	if err != nil || len(b) != 4 {
		t.Fatalf("read after exceptions: %v (%d bytes)", err, len(b))
	}
}
