package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault kinds the simulator can inject.
const (
	// FaultLeak loses Rate m³/h at Node: the flows on the path from the node's intake carry it,
	// so the intake meters see it and the balance shows it as a residual.
	FaultLeak = "leak"
	// FaultOveruse is Rate m³/h more use at Node, metered like a leak upstream but booked to the
	// node's consumption (into product), so the balance still closes.
	FaultOveruse = "overuse"
	// FaultStuck freezes Meter's totalizer while its flow rate keeps showing the true flow.
	FaultStuck = "stuck"
	// FaultSilent makes Meter stop answering (a Modbus gateway timeout, an OPC UA bad status).
	FaultSilent = "silent"
	// FaultEdgeOffline takes the edge that reads the plant offline; the simulator only reports
	// it (the demo stops its edge while it lasts).
	FaultEdgeOffline = "edge_offline"
)

// FaultConfig is one fault: on a schedule in plant.yaml's faults list (After the simulated
// start, for For; For 0 lasts to the end), or posted to /api/v1/sim/faults.
type FaultConfig struct {
	Kind  string        `yaml:"kind" json:"kind"`
	Node  string        `yaml:"node" json:"node,omitempty"`
	Meter string        `yaml:"meter" json:"meter,omitempty"`
	Rate  float64       `yaml:"rate" json:"rate,omitempty"` // m³/h, leak and overuse
	After time.Duration `yaml:"after" json:"-"`
	For   time.Duration `yaml:"for" json:"-"`
}

// Fault is an injected fault with its simulated interval [From, To); To is zero while open.
type Fault struct {
	ID int `json:"id"`
	FaultConfig
	From   time.Time  `json:"from"`
	To     *time.Time `json:"to"`
	Active bool       `json:"active"` // at the simulated now
	// Flows are the flows that carry a leak or overuse.
	Flows []string `json:"flows,omitempty"`
	path  []int
	cons  int // consumption flow index of an overuse, -1 otherwise
}

func (f *Fault) end() time.Time {
	if f.To == nil {
		return time.Time{}
	}
	return *f.To
}

// overlapHours is the length of [a, b) ∩ [f.From, f.To) in hours.
func (f *Fault) overlapHours(a, b time.Time) float64 {
	lo := a
	if f.From.After(lo) {
		lo = f.From
	}
	hi := b
	if e := f.end(); !e.IsZero() && e.Before(hi) {
		hi = e
	}
	if !hi.After(lo) {
		return 0
	}
	return hi.Sub(lo).Hours()
}

func (f *Fault) activeAt(t time.Time) bool {
	return !t.Before(f.From) && (f.To == nil || t.Before(*f.To))
}

// checkFault reports what is wrong with a fault against the network.
func checkFault(c FaultConfig, flows []flow, meters []string) error {
	switch c.Kind {
	case FaultLeak, FaultOveruse:
		if !(c.Rate > 0) {
			return fmt.Errorf("rate must be a positive flow in m³/h")
		}
		if _, _, err := faultPath(c.Kind, c.Node, flows); err != nil {
			return err
		}
	case FaultStuck, FaultSilent:
		if !slices.Contains(meters, c.Meter) {
			return fmt.Errorf("meter %q is not a meter of the plant (%s)", c.Meter, strings.Join(meters, ", "))
		}
	case FaultEdgeOffline:
	default:
		return fmt.Errorf("kind %q is not one of leak, overuse, stuck, silent, edge_offline", c.Kind)
	}
	if c.After < 0 || c.For < 0 {
		return errors.New("after and for must not be negative")
	}
	return nil
}

// faultPath finds the flows that carry extra use at node: from the node up its first intake or
// internal inflow to a source. An overuse also names the node's consumption flow.
func faultPath(kind, node string, flows []flow) (path []int, cons int, err error) {
	types := nodeTypes()
	if types[node] != nodeUnit {
		return nil, -1, fmt.Errorf("node %q is not a unit of the plant", node)
	}
	cons = -1
	if kind == FaultOveruse {
		cons = slices.IndexFunc(flows, func(f flow) bool { return f.From == node && f.Kind == "consumption" })
		if cons < 0 {
			return nil, -1, fmt.Errorf("node %q has no consumption flow to book an overuse to", node)
		}
	}
	at := node
	for range len(flows) {
		i := slices.IndexFunc(flows, func(f flow) bool {
			return f.To == at && f.From != at && (f.Kind == "intake" || f.Kind == "internal")
		})
		if i < 0 {
			return nil, -1, fmt.Errorf("node %q has no intake path", node)
		}
		path = append(path, i)
		at = flows[i].From
		if types[at] == nodeSource {
			return path, cons, nil
		}
	}
	return nil, -1, fmt.Errorf("node %q: intake path loops", node)
}

func (p *Plant) meterIDs() []string {
	ids := make([]string, len(p.meters))
	for i, m := range p.meters {
		ids[i] = m.ID
	}
	return ids
}

// AddFault injects a fault from the simulated instant from (zero: now) for d (0: open-ended).
func (p *Plant) AddFault(c FaultConfig, from time.Time, d time.Duration) (Fault, error) {
	if err := checkFault(c, p.flows, p.meterIDs()); err != nil {
		return Fault{}, fmt.Errorf("add fault: %w", err)
	}
	if from.IsZero() {
		from = p.Now()
	}
	f := &Fault{FaultConfig: c, From: from, cons: -1}
	if d > 0 {
		to := from.Add(d)
		f.To = &to
	}
	if c.Kind == FaultLeak || c.Kind == FaultOveruse {
		f.path, f.cons, _ = faultPath(c.Kind, c.Node, p.flows)
		for _, i := range f.path {
			f.Flows = append(f.Flows, p.flows[i].ID)
		}
		if f.cons >= 0 {
			f.Flows = append(f.Flows, p.flows[f.cons].ID)
		}
	}
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	f.ID = len(p.faults) + 1
	p.faults = append(p.faults, f)
	return p.faultView(f, p.Now()), nil
}

// EndFault ends a fault at the simulated now.
func (p *Plant) EndFault(id int) (Fault, error) {
	now := p.Now()
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	if id < 1 || id > len(p.faults) {
		return Fault{}, fmt.Errorf("end fault: no fault %d", id)
	}
	f := p.faults[id-1]
	if f.To == nil || f.To.After(now) {
		end := now
		if end.Before(f.From) {
			end = f.From
		}
		f.To = &end
	}
	return p.faultView(f, now), nil
}

// Faults lists every fault injected so far, saying which are active at the simulated now.
func (p *Plant) Faults() []Fault {
	now := p.Now()
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	out := make([]Fault, len(p.faults))
	for i, f := range p.faults {
		out[i] = p.faultView(f, now)
	}
	return out
}

// EdgeOffline reports whether an edge_offline fault is active at t.
func (p *Plant) EdgeOffline(t time.Time) bool {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	for _, f := range p.faults {
		if f.Kind == FaultEdgeOffline && f.activeAt(t) {
			return true
		}
	}
	return false
}

func (p *Plant) faultView(f *Fault, now time.Time) Fault {
	v := *f
	v.Active = f.activeAt(now)
	return v
}

// extraRate is the fault flow through flow index i at t, m³/h; faultMu is not held.
func (p *Plant) extraRate(i int, t time.Time) float64 {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	r := 0.0
	for _, f := range p.faults {
		if f.activeAt(t) && (slices.Contains(f.path, i) || f.cons == i) {
			r += f.Rate
		}
	}
	return r
}

// extraVolume is the fault volume through flow index i over [a, b), m³.
func (p *Plant) extraVolume(i int, a, b time.Time) float64 {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	v := 0.0
	for _, f := range p.faults {
		if slices.Contains(f.path, i) || f.cons == i {
			v += f.Rate * f.overlapHours(a, b)
		}
	}
	return v
}

// stuckAt returns the instants [from, to) during which a meter's totalizer is frozen.
func (p *Plant) stuckSpans(id string) [][2]time.Time {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	var out [][2]time.Time
	for _, f := range p.faults {
		if f.Kind == FaultStuck && f.Meter == id {
			out = append(out, [2]time.Time{f.From, f.end()})
		}
	}
	return out
}

// silent reports whether a silent fault holds the meter at t.
func (p *Plant) silent(id string, t time.Time) bool {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	for _, f := range p.faults {
		if f.Kind == FaultSilent && f.Meter == id && f.activeAt(t) {
			return true
		}
	}
	return false
}

// truthFaults adds the fault volumes over [from, to) to a truth: the carrying flows and their
// meters, intake, and the leak; open faults overlapping the window are listed.
func (p *Plant) truthFaults(tr *Truth, from, to time.Time) {
	p.faultMu.Lock()
	fs := make([]*Fault, len(p.faults))
	copy(fs, p.faults)
	p.faultMu.Unlock()
	now := p.Now()
	tr.Faults = []Fault{}
	for _, f := range fs {
		x := f.Rate * f.overlapHours(from, to)
		if f.overlapHours(from, to) > 0 || f.activeAt(now) {
			tr.Faults = append(tr.Faults, p.faultView(f, now))
		}
		if x == 0 {
			continue
		}
		idx := slices.Clone(f.path)
		if f.cons >= 0 {
			idx = append(idx, f.cons)
		}
		for _, i := range idx {
			fl := p.flows[i]
			tr.Flows[fl.ID] += x
			if fl.Meter != "" {
				tr.Meters[fl.Meter] += x
			}
			if fl.Kind == "intake" {
				tr.VI += x
			}
		}
		if f.Kind == FaultLeak {
			tr.VL += x
			tr.Flows["fault_leak_"+strconv.Itoa(f.ID)] += x
		}
	}
}

// faultsProblems validates plant.yaml's faults.
func (c *Config) faultsProblems(l *problemList) {
	if len(c.Faults) == 0 {
		return
	}
	flows := buildNetwork(c)
	var ids []string
	for _, m := range c.meterSpecs() {
		ids = append(ids, m.ID)
	}
	for i, f := range c.Faults {
		if err := checkFault(f, flows, ids); err != nil {
			l.addf(fmt.Sprintf("faults[%d]", i), "%v", err)
		}
	}
}

// faultRequest is the body of POST /api/v1/sim/faults.
type faultRequest struct {
	Kind  string  `json:"kind"`
	Node  string  `json:"node"`
	Meter string  `json:"meter"`
	Rate  float64 `json:"rate"`
	// From is an RFC3339 simulated instant (default now); For a duration such as "2h" (default
	// open-ended).
	From string `json:"from"`
	For  string `json:"for"`
}

func (p *Plant) serveFaults(w http.ResponseWriter, _ *http.Request) {
	writeSimJSON(w, http.StatusOK, map[string]any{"faults": p.Faults()})
}

func (p *Plant) servePostFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeSimError(w, http.StatusBadRequest, "read the JSON body: "+err.Error())
		return
	}
	var from time.Time
	var d time.Duration
	var err error
	if req.From != "" {
		if from, err = parseQueryTime(req.From, "from"); err != nil {
			writeSimError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if req.For != "" {
		if d, err = time.ParseDuration(req.For); err != nil || d <= 0 {
			writeSimError(w, http.StatusBadRequest, fmt.Sprintf("for %q is not a positive duration such as \"2h\"", req.For))
			return
		}
	}
	f, err := p.AddFault(FaultConfig{Kind: req.Kind, Node: req.Node, Meter: req.Meter, Rate: req.Rate}, from, d)
	if err != nil {
		writeSimError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeSimJSON(w, http.StatusCreated, f)
}

func (p *Plant) serveDeleteFault(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeSimError(w, http.StatusNotFound, "no fault "+r.PathValue("id"))
		return
	}
	f, err := p.EndFault(id)
	if err != nil {
		writeSimError(w, http.StatusNotFound, err.Error())
		return
	}
	writeSimJSON(w, http.StatusOK, f)
}

func writeSimJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeSimError(w http.ResponseWriter, code int, msg string) {
	writeSimJSON(w, code, map[string]any{"error": map[string]string{"code": http.StatusText(code), "message": msg}})
}
