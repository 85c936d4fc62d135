// Package sim is the demo plant: fifteen water meters on a physically consistent network
// (municipal and well intakes, two workshops in cascade, a boiler with condensate return, a
// wastewater reuse plant, an indirect cooling loop, an office and a leaking distribution main),
// served over real protocols: a Modbus TCP gateway with one unit id per meter and an OPC UA
// server with one flow and one totalizer variable per meter.
//
// Flows are deterministic functions of simulated time with closed-form integrals, so a totalizer
// read at any instant is exact, and Truth gives the exact volume of every flow over any interval:
// tests and demos compare what the platform computed with what really flowed.
package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// MeterInfo is what an edge configuration needs to read one simulated meter.
type MeterInfo struct {
	ID       string `json:"id"`
	Flow     string `json:"flow"` // the flow id the meter measures
	Kind     string `json:"kind"` // that flow's kind
	Protocol string `json:"protocol"`
	// Modbus: unit id behind the gateway and register addresses (0-based, holding and input).
	SlaveID        int     `json:"slave_id,omitempty"`
	FlowRegister   int     `json:"flow_register"`
	FlowType       string  `json:"flow_type,omitempty"`       // FLOAT32
	FlowByteOrder  string  `json:"flow_byte_order,omitempty"` // CDAB: low word first
	TotalRegister  int     `json:"total_register"`
	TotalType      string  `json:"total_type,omitempty"`       // UINT32
	TotalByteOrder string  `json:"total_byte_order,omitempty"` // ABCD
	TotalScale     float64 `json:"total_scale,omitempty"`      // m³ per count
	// OPC UA: node ids with the namespace URI ("nsu=urn:aqualoop:sim;s=M06.flow").
	FlowNode  string `json:"flow_node,omitempty"`
	TotalNode string `json:"total_node,omitempty"`
	// RegisterMax is where the totalizer wraps to zero, in m³.
	RegisterMax float64 `json:"register_max"`
}

// meter is one served meter.
type meter struct {
	MeterConfig
	flow *flow
	idx  int // index of flow in Plant.flows
	// ua holds the last values pushed to OPC UA; see opcua.go.
	ua uaValues
}

// Plant is the simulated plant. Create it with New, serve it with Run.
type Plant struct {
	cfg    *Config
	log    *slog.Logger
	prof   *profiles
	flows  []flow
	meters []*meter
	units  map[uint8]*meter // Modbus unit id → meter

	start     time.Time
	wallStart time.Time
	scale     float64
	// wall is the wall clock; tests replace it to read the servers at exact simulated instants.
	wall func() time.Time

	rngMu sync.Mutex
	rng   *rand.Rand

	running atomic.Bool
	ready   chan struct{}
	addrMu  sync.Mutex
	mbAddr  string
	uaURL   string

	faultMu sync.Mutex
	faults  []*Fault
}

// New checks cfg (defaults must already be applied: use LoadConfig, or Config.Default before
// changing fields), including that no flow runs backwards at any minute of a simulated day, and
// builds the network.
func New(cfg *Config, logger *slog.Logger) (*Plant, error) {
	if logger == nil {
		return nil, errors.New("new plant: logger is nil")
	}
	if err := cfg.problems().err(); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("load time zone %q: %w", cfg.Timezone, err)
	}
	p := &Plant{
		cfg:   cfg,
		log:   logger,
		prof:  newProfiles(cfg, loc),
		flows: buildNetwork(cfg),
		units: map[uint8]*meter{},
		scale: cfg.TimeScale,
		wall:  time.Now,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		ready: make(chan struct{}),
	}
	p.wallStart = p.wall()
	p.start = cfg.startOrNow(loc, p.wallStart).In(loc)
	for _, spec := range cfg.meterSpecs() {
		m := &meter{MeterConfig: spec}
		for i := range p.flows {
			if p.flows[i].Meter == spec.ID {
				m.flow, m.idx = &p.flows[i], i
			}
		}
		if m.flow == nil {
			return nil, fmt.Errorf("new plant: meter %s measures no flow", spec.ID)
		}
		p.meters = append(p.meters, m)
		if m.Protocol == ProtocolModbus {
			p.units[uint8(m.SlaveID)] = m
		}
	}
	for _, fc := range cfg.Faults {
		var d time.Duration
		if fc.For > 0 {
			d = fc.For
		}
		if _, err := p.AddFault(fc, p.start.Add(fc.After), d); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Now is the simulated clock: start + (wall − wall at New) × time_scale.
func (p *Plant) Now() time.Time {
	elapsed := p.wall().Sub(p.wallStart)
	return p.start.Add(time.Duration(float64(elapsed) * p.scale))
}

// Start is the simulated time at New.
func (p *Plant) Start() time.Time { return p.start }

// Location is the site's time zone.
func (p *Plant) Location() *time.Location { return p.prof.loc }

// NamespaceURI is the OPC UA namespace of the meter variables.
func (p *Plant) NamespaceURI() string { return p.cfg.OPCUA.NamespaceURI }

// Ready is closed once both servers listen. If Run fails before, it never closes: wait for Run's
// result too.
func (p *Plant) Ready() <-chan struct{} { return p.ready }

// ModbusAddr is the host:port the Modbus server listens on, valid after Ready.
func (p *Plant) ModbusAddr() string {
	p.addrMu.Lock()
	defer p.addrMu.Unlock()
	return p.mbAddr
}

// OPCUAEndpoint is the OPC UA endpoint URL, valid after Ready.
func (p *Plant) OPCUAEndpoint() string {
	p.addrMu.Lock()
	defer p.addrMu.Unlock()
	return p.uaURL
}

// Flows describes every flow of the network, metered or not.
func (p *Plant) Flows() []FlowInfo {
	out := make([]FlowInfo, len(p.flows))
	for i, f := range p.flows {
		out[i] = f.FlowInfo
	}
	return out
}

// Meters describes how to read every meter, in meter id order.
func (p *Plant) Meters() []MeterInfo {
	out := make([]MeterInfo, 0, len(p.meters))
	for _, m := range p.meters {
		mi := MeterInfo{
			ID:            m.ID,
			Flow:          m.flow.ID,
			Kind:          m.flow.Kind,
			Protocol:      m.Protocol,
			RegisterMax:   m.RegisterMax,
			FlowRegister:  *m.FlowRegister,
			TotalRegister: *m.TotalRegister,
		}
		if m.Protocol == ProtocolModbus {
			mi.SlaveID = m.SlaveID
			mi.FlowType, mi.FlowByteOrder = "FLOAT32", "CDAB"
			mi.TotalType, mi.TotalByteOrder, mi.TotalScale = "UINT32", "ABCD", TotalResolution
		} else {
			mi.FlowRegister, mi.TotalRegister = 0, 0
			mi.FlowNode = "nsu=" + p.NamespaceURI() + ";s=" + m.ID + ".flow"
			mi.TotalNode = "nsu=" + p.NamespaceURI() + ";s=" + m.ID + ".total"
		}
		out = append(out, mi)
	}
	return out
}

// trueRate is a meter's true flow at t, m³/h.
func (p *Plant) trueRate(m *meter, t time.Time) float64 {
	return max(0, m.flow.rate.dot(p.prof.at(t))+p.extraRate(m.idx, t))
}

// servedRate is the flow rate the meter displays at t: the true flow with relative noise.
func (p *Plant) servedRate(m *meter, t time.Time) float64 {
	r := p.trueRate(m, t)
	sigma := *p.cfg.Noise
	if sigma == 0 || r == 0 {
		return r
	}
	p.rngMu.Lock()
	n := p.rng.NormFloat64()
	p.rngMu.Unlock()
	return max(0, r*(1+sigma*n))
}

// total is the meter's totalizer at t before wrapping: the initial reading plus the true volume
// since start scaled by the meter's bias.
// A stuck fault freezes it: the volume through the meter while stuck is never counted.
func (p *Plant) total(m *meter, t time.Time) float64 {
	raw := func(t time.Time) float64 {
		if !t.After(p.start) {
			return 0
		}
		return (1 + m.Bias) * (m.flow.rate.dot(p.prof.integral(p.start, t)) + p.extraVolume(m.idx, p.start, t))
	}
	v := m.InitialTotal + raw(t)
	for _, sp := range p.stuckSpans(m.ID) {
		if !t.After(sp[0]) {
			continue
		}
		end := t
		if !sp[1].IsZero() && sp[1].Before(end) {
			end = sp[1]
		}
		v -= raw(end) - raw(sp[0])
	}
	return v
}

// wrappedTotal is what the meter's register shows at t, in m³.
func (p *Plant) wrappedTotal(m *meter, t time.Time) float64 {
	v := math.Mod(p.total(m, t), m.RegisterMax)
	if v < 0 {
		v += m.RegisterMax
	}
	return v
}

// totalCounts is a Modbus meter's UINT32 totalizer at t, in counts of 0.01 m³.
func (p *Plant) totalCounts(m *meter, t time.Time) uint32 {
	counts := math.Floor(p.total(m, t) / TotalResolution)
	wrap := math.Round(m.RegisterMax / TotalResolution)
	c := math.Mod(counts, wrap)
	if c < 0 {
		c += wrap
	}
	return uint32(c)
}

// Truth is the exact volume of every flow over [From, To), in m³, with the site indicators
// computed from it.
type Truth struct {
	From   time.Time          `json:"from"`
	To     time.Time          `json:"to"`
	Flows  map[string]float64 `json:"flows"`  // by flow id
	Meters map[string]float64 `json:"meters"` // true volume through each meter, by meter id
	// VI is intake (M01 + M02), VU non-conventional water (M03), VR reused water (circulating
	// M12 + cascade M06 + wastewater reuse M09 + condensate M14), VD discharge (M16), VL leak.
	VI float64 `json:"vi"`
	VU float64 `json:"vu"`
	VR float64 `json:"vr"`
	VD float64 `json:"vd"`
	VL float64 `json:"vl"`
	// ReuseRate is VR / (VR + VI); ReuseRateWithVU is VR / (VR + VI + VU). Both 0 when the
	// denominator is.
	ReuseRate       float64 `json:"reuse_rate"`
	ReuseRateWithVU float64 `json:"reuse_rate_with_vu"`
	// Faults are the injected faults overlapping [From, To) or active now; their volumes are
	// in the figures above.
	Faults []Fault `json:"faults"`
}

// Truth integrates every flow over [from, to) exactly.
func (p *Plant) Truth(from, to time.Time) Truth {
	tr := Truth{From: from, To: to, Flows: map[string]float64{}, Meters: map[string]float64{}}
	var b [basisLen]float64
	if to.After(from) {
		b = p.prof.integral(from, to)
	}
	for _, f := range p.flows {
		v := f.rate.dot(b)
		tr.Flows[f.ID] = v
		if f.Meter != "" {
			tr.Meters[f.Meter] = v
		}
		switch f.Kind {
		case "intake":
			tr.VI += v
		case "non_conventional":
			tr.VU += v
		case "circulating", "cascade", "wastewater_reuse", "condensate":
			tr.VR += v
		case "discharge":
			tr.VD += v
		case KindLeak:
			tr.VL += v
		}
	}
	p.truthFaults(&tr, from, to)
	if d := tr.VR + tr.VI; d > 0 {
		tr.ReuseRate = tr.VR / d
	}
	if d := tr.VR + tr.VI + tr.VU; d > 0 {
		tr.ReuseRateWithVU = tr.VR / d
	}
	return tr
}
