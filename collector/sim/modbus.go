package sim

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/simonvetter/modbus"
)

// gateway answers Modbus requests as a TCP gateway in front of one device per unit id. Values are
// computed at request time, so every read shows the plant at that simulated instant.
type gateway struct{ p *Plant }

var _ modbus.RequestHandler = (*gateway)(nil)

func (g *gateway) HandleCoils(*modbus.CoilsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

func (g *gateway) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}

// HandleHoldingRegisters serves the register image; the meters are read-only.
func (g *gateway) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, modbus.ErrIllegalFunction
	}
	return g.read(req.UnitId, req.Addr, req.Quantity)
}

// HandleInputRegisters serves the same image as the holding registers.
func (g *gateway) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	return g.read(req.UnitId, req.Addr, req.Quantity)
}

func (g *gateway) read(unit uint8, addr, qty uint16) ([]uint16, error) {
	m, ok := g.p.units[unit]
	if !ok {
		// What a real gateway answers when nothing sits behind the unit id.
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	if g.p.silent(m.ID, g.p.Now()) {
		// An injected silent fault: the gateway gets no answer from the meter.
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	img := g.p.registers(m)
	out := make([]uint16, qty)
	for i := range out {
		v, ok := img.at(int(addr) + i)
		if !ok {
			return nil, modbus.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

// image is one meter's four registers at one instant.
type image struct {
	flowReg, totalReg int
	flow, total       [2]uint16
}

func (im image) at(addr int) (uint16, bool) {
	switch {
	case addr == im.flowReg || addr == im.flowReg+1:
		return im.flow[addr-im.flowReg], true
	case addr == im.totalReg || addr == im.totalReg+1:
		return im.total[addr-im.totalReg], true
	}
	return 0, false
}

// registers computes a meter's register image now: the flow rate as FLOAT32 in CDAB word order
// (low word first, as many flow computers send it) and the totalizer as UINT32 ABCD in 0.01 m³.
func (p *Plant) registers(m *meter) image {
	t := p.Now()
	f := math.Float32bits(float32(p.servedRate(m, t)))
	c := p.totalCounts(m, t)
	return image{
		flowReg:  *m.FlowRegister,
		totalReg: *m.TotalRegister,
		flow:     [2]uint16{uint16(f), uint16(f >> 16)},
		total:    [2]uint16{uint16(c >> 16), uint16(c)},
	}
}

// startModbus starts the gateway on the configured address and returns the bound host:port.
func (p *Plant) startModbus() (*modbus.ModbusServer, string, error) {
	addr, err := freeAddr(p.cfg.Modbus.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("reserve modbus address %s: %w", p.cfg.Modbus.Listen, err)
	}
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL:        "tcp://" + addr,
		MaxClients: 32,
		Logger:     slog.NewLogLogger(p.log.With("bus", "modbus").Handler(), slog.LevelDebug),
	}, &gateway{p: p})
	if err != nil {
		return nil, "", fmt.Errorf("configure modbus server on %s: %w", addr, err)
	}
	if err := srv.Start(); err != nil {
		return nil, "", fmt.Errorf("start modbus server on %s: %w", addr, err)
	}
	return srv, addr, nil
}
