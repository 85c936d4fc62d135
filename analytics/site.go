// Package analytics holds the water network model of a site: its nodes (intake sources, units,
// sinks), the flows between them, and the meters that measure those flows. Every indicator and
// balance is computed on this model, so the classification of a flow (intake, reuse, discharge...)
// is declared once here, in the site's YAML, and never guessed in code.
package analytics

import (
	"fmt"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// NodeType is the role of a node in the network.
type NodeType string

const (
	// Source is where water enters the site (an intake).
	Source NodeType = "source"
	// Unit is a process, workshop, loop, boiler, treatment plant or tank inside the site.
	Unit NodeType = "unit"
	// Sink is where water leaves: discharge, consumption/evaporation, supply to others.
	Sink NodeType = "sink"
)

// Source kinds. The conventional ones count as intake Vi, the non-conventional ones as Vu.
var (
	conventionalSources    = []string{"municipal", "well", "surface", "purchased_steam", "purchased_hot_water"}
	nonConventionalSources = []string{"reclaimed", "rain", "seawater", "brackish", "mine"}
	unitKinds              = []string{"cooling_indirect", "cooling_direct", "boiler", "workshop", "treatment", "reuse_plant", "tank", "distribution", "domestic", "outfall"}
	sinkKinds              = []string{"discharge", "consumption", "supplied"}
)

// FlowKind classifies a flow for the indicators of GB/T 7119.
type FlowKind string

// Flow kinds. Internal flows (distribution inside the site) are counted by balances only.
const (
	Intake          FlowKind = "intake"           // Vi: from a conventional source
	NonConventional FlowKind = "non_conventional" // Vu: from a non-conventional source
	Circulating     FlowKind = "circulating"      // Vcy: a cooling loop's circulating flow (loop node to itself)
	Cascade         FlowKind = "cascade"          // Vs: one unit's effluent used by another
	WastewaterReuse FlowKind = "wastewater_reuse" // Vw: treated in-house and reused (part of Vr)
	Condensate      FlowKind = "condensate"       // Vb: condensate returned (part of Vr)
	Discharge       FlowKind = "discharge"        // Vd: leaves the boundary as wastewater
	Consumption     FlowKind = "consumption"      // Vco: into product, evaporation, drift, drinking
	Supplied        FlowKind = "supplied"         // V外供: supplied to third parties
	Internal        FlowKind = "internal"         // distribution inside the boundary
)

var flowKinds = []FlowKind{Intake, NonConventional, Circulating, Cascade, WastewaterReuse, Condensate, Discharge, Consumption, Supplied, Internal}

// Reused reports whether a flow of this kind counts in Vr = Vcy + Vs (with Vw and Vb part of it).
func (k FlowKind) Reused() bool {
	return k == Circulating || k == Cascade || k == WastewaterReuse || k == Condensate
}

// Site is one plant's water network, decoded from YAML.
type Site struct {
	ID       string  `yaml:"id"`
	Name     string  `yaml:"name"`
	Park     string  `yaml:"park"`
	Timezone string  `yaml:"timezone"`
	Nodes    []Node  `yaml:"nodes"`
	Meters   []Meter `yaml:"meters"`
	Flows    []Flow  `yaml:"flows"`

	loc *time.Location
}

// Node is a source, unit or sink.
type Node struct {
	ID   string   `yaml:"id"`
	Name string   `yaml:"name"`
	Type NodeType `yaml:"type"`
	Kind string   `yaml:"kind"`
	// Tier is the water-quality tier of a unit for cascade use (1 = highest quality).
	Tier int `yaml:"tier"`
}

// Meter is one entry of the meter register (GB/T 24789).
type Meter struct {
	ID     string `yaml:"id"`
	Name   string `yaml:"name"`
	Level  int    `yaml:"level"`  // 1 site boundary, 2 workshop, 3 equipment
	Parent string `yaml:"parent"` // the meter upstream at the level above
	DN     int    `yaml:"dn"`
	Class  int    `yaml:"class"` // accuracy class
	// RegisterMax is the value at which the totalizer wraps to zero, in m³.
	RegisterMax float64 `yaml:"register_max"`
	// Q4 is the overload flow rate in m³/h; a volume step above Q4 × Δt is a spike.
	Q4 float64 `yaml:"q4"`
	// FlowOnly meters have no totalizer: their flow rate is integrated and flagged as derived.
	FlowOnly bool `yaml:"flow_only"`
	// Interval is the expected reporting interval, for staleness.
	Interval        time.Duration `yaml:"interval"`
	VerifiedOn      string        `yaml:"verified_on"` // YYYY-MM-DD
	VerificationDue string        `yaml:"verification_due"`
	Certificate     string        `yaml:"certificate"`
	Location        string        `yaml:"location"`
}

// Flow is water moving from one node to another, measured by a meter or derived from other flows.
type Flow struct {
	ID      string   `yaml:"id"`
	From    string   `yaml:"from"`
	To      string   `yaml:"to"`
	Kind    FlowKind `yaml:"kind"`
	Meter   string   `yaml:"meter"`
	Derived *Derived `yaml:"derived"`
}

// Derived defines an unmetered flow from others: the sum of Add minus the sum of Sub.
type Derived struct {
	Add []string `yaml:"add"`
	Sub []string `yaml:"sub"`
}

// Default fills in what a site file may leave out.
func (s *Site) Default() {
	if s.Timezone == "" {
		s.Timezone = "Asia/Shanghai"
	}
}

// Location is the site's time zone, which decides where its days and months begin.
func (s *Site) Location() *time.Location {
	if s.loc == nil {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			loc = time.UTC
		}
		s.loc = loc
	}
	return s.loc
}

// Node returns the node with id.
func (s *Site) Node(id string) (Node, bool) {
	i := slices.IndexFunc(s.Nodes, func(n Node) bool { return n.ID == id })
	if i < 0 {
		return Node{}, false
	}
	return s.Nodes[i], true
}

// Meter returns the meter with id.
func (s *Site) Meter(id string) (Meter, bool) {
	i := slices.IndexFunc(s.Meters, func(m Meter) bool { return m.ID == id })
	if i < 0 {
		return Meter{}, false
	}
	return s.Meters[i], true
}

// Validate reports every inconsistency of the model.
func (s *Site) Validate(p *config.Problems) {
	if !wire.ValidID(s.ID) {
		p.Addf("id", "%q is not a valid site id (letters, digits, '-', '_', '.')", s.ID)
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil {
		p.Addf("timezone", "%q is not a known time zone", s.Timezone)
	}
	nodes := map[string]Node{}
	for i, n := range s.Nodes {
		path := fmt.Sprintf("nodes[%d]", i)
		if n.ID == "" {
			p.Addf(path+".id", "is required")
		} else if _, dup := nodes[n.ID]; dup {
			p.Addf(path+".id", "node %q is defined twice", n.ID)
		}
		nodes[n.ID] = n
		var kinds []string
		switch n.Type {
		case Source:
			kinds = append(slices.Clone(conventionalSources), nonConventionalSources...)
		case Unit:
			kinds = unitKinds
		case Sink:
			kinds = sinkKinds
		default:
			p.Addf(path+".type", "%q is not one of source, unit, sink", n.Type)
			continue
		}
		if !slices.Contains(kinds, n.Kind) {
			p.Addf(path+".kind", "%q is not a %s kind (one of %v)", n.Kind, n.Type, kinds)
		}
	}
	meters := map[string]Meter{}
	for i, m := range s.Meters {
		path := fmt.Sprintf("meters[%d]", i)
		if !wire.ValidID(m.ID) {
			p.Addf(path+".id", "%q is not a valid meter id", m.ID)
		} else if _, dup := meters[m.ID]; dup {
			p.Addf(path+".id", "meter %q is defined twice", m.ID)
		}
		meters[m.ID] = m
		if m.Level < 1 || m.Level > 3 {
			p.Addf(path+".level", "%d is not a metering level (1, 2 or 3)", m.Level)
		}
		if m.RegisterMax < 0 || m.Q4 < 0 {
			p.Addf(path, "register_max and q4 must not be negative")
		}
	}
	for i, m := range s.Meters {
		if m.Parent == "" {
			continue
		}
		par, ok := meters[m.Parent]
		switch {
		case !ok:
			p.Addf(fmt.Sprintf("meters[%d].parent", i), "unknown meter %q", m.Parent)
		case par.Level >= m.Level:
			p.Addf(fmt.Sprintf("meters[%d].parent", i), "parent %q is at level %d, not above level %d", m.Parent, par.Level, m.Level)
		}
	}
	flows := map[string]int{}
	meterUse := map[string]string{}
	for i, f := range s.Flows {
		path := fmt.Sprintf("flows[%d]", i)
		if f.ID == "" {
			p.Addf(path+".id", "is required")
		} else if _, dup := flows[f.ID]; dup {
			p.Addf(path+".id", "flow %q is defined twice", f.ID)
		}
		flows[f.ID] = i
		from, okFrom := nodes[f.From]
		if !okFrom {
			p.Addf(path+".from", "unknown node %q", f.From)
		}
		to, okTo := nodes[f.To]
		if !okTo {
			p.Addf(path+".to", "unknown node %q", f.To)
		}
		if !slices.Contains(flowKinds, f.Kind) {
			p.Addf(path+".kind", "%q is not one of %v", f.Kind, flowKinds)
		}
		if okFrom && okTo {
			s.checkFlowEnds(p, path, f, from, to)
		}
		switch {
		case f.Meter != "" && f.Derived != nil:
			p.Addf(path, "has both meter and derived; a flow is either measured or derived")
		case f.Meter == "" && f.Derived == nil:
			p.Addf(path, "has neither meter nor derived")
		case f.Meter != "":
			if _, ok := meters[f.Meter]; !ok {
				p.Addf(path+".meter", "unknown meter %q", f.Meter)
			} else if other, used := meterUse[f.Meter]; used {
				p.Addf(path+".meter", "meter %q already measures flow %q", f.Meter, other)
			}
			meterUse[f.Meter] = f.ID
		}
	}
	for i, f := range s.Flows {
		if f.Derived == nil {
			continue
		}
		for j, ref := range append(slices.Clone(f.Derived.Add), f.Derived.Sub...) {
			if _, ok := flows[ref]; !ok {
				p.Addf(fmt.Sprintf("flows[%d].derived", i), "term %d: unknown flow %q", j, ref)
			}
		}
		if cycle := s.derivedCycle(f.ID, flows); cycle != nil {
			p.Addf(fmt.Sprintf("flows[%d].derived", i), "circular definition: %v", cycle)
		}
	}
	s.checkBoundaryMetered(p, meters)
}

func (s *Site) checkFlowEnds(p *config.Problems, path string, f Flow, from, to Node) {
	switch f.Kind {
	case Intake:
		if from.Type != Source || !slices.Contains(conventionalSources, from.Kind) {
			p.Addf(path+".from", "an intake flow must start at a conventional source (%v), not %q", conventionalSources, f.From)
		}
	case NonConventional:
		if from.Type != Source || !slices.Contains(nonConventionalSources, from.Kind) {
			p.Addf(path+".from", "a non_conventional flow must start at a non-conventional source (%v), not %q", nonConventionalSources, f.From)
		}
	case Circulating:
		if f.From != f.To || from.Type != Unit {
			p.Addf(path, "a circulating flow goes from a unit back to itself")
		}
	case Discharge, Consumption, Supplied:
		if to.Type != Sink || to.Kind != string(f.Kind) {
			p.Addf(path+".to", "a %s flow must end at a %s sink, not %q", f.Kind, f.Kind, f.To)
		}
	case Cascade, WastewaterReuse, Condensate, Internal:
		if from.Type != Unit || to.Type != Unit {
			p.Addf(path, "a flow of kind %s goes between two units", f.Kind)
		}
	}
	if from.Type == Sink {
		p.Addf(path+".from", "flow starts at sink %q", f.From)
	}
	if to.Type == Source {
		p.Addf(path+".to", "flow ends at source %q", f.To)
	}
}

// derivedCycle returns the chain of flow ids that leads from id back to itself through derived
// definitions, or nil.
func (s *Site) derivedCycle(id string, index map[string]int) []string {
	var walk func(cur string, chain []string) []string
	walk = func(cur string, chain []string) []string {
		i, ok := index[cur]
		if !ok || s.Flows[i].Derived == nil {
			return nil
		}
		for _, ref := range append(slices.Clone(s.Flows[i].Derived.Add), s.Flows[i].Derived.Sub...) {
			if ref == id {
				return append(chain, ref)
			}
			if slices.Contains(chain, ref) {
				continue
			}
			if c := walk(ref, append(chain, ref)); c != nil {
				return c
			}
		}
		return nil
	}
	return walk(id, []string{id})
}

// checkBoundaryMetered enforces GB/T 24789 level 1: every intake source is metered at level 1.
func (s *Site) checkBoundaryMetered(p *config.Problems, meters map[string]Meter) {
	for i, n := range s.Nodes {
		if n.Type != Source {
			continue
		}
		metered := false
		for _, f := range s.Flows {
			if f.From == n.ID && f.Meter != "" && meters[f.Meter].Level == 1 {
				metered = true
			}
		}
		if !metered {
			p.Addf(fmt.Sprintf("nodes[%d]", i), "intake source %q has no level-1 meter on its outflow (GB/T 24789 requires 100 %% at the boundary)", n.ID)
		}
	}
}

// FlowOfMeter returns the flow a meter measures.
func (s *Site) FlowOfMeter(meter string) (Flow, bool) {
	i := slices.IndexFunc(s.Flows, func(f Flow) bool { return f.Meter == meter })
	if i < 0 {
		return Flow{}, false
	}
	return s.Flows[i], true
}

// LoadSite reads and validates a site file.
func LoadSite(path string) (*Site, error) {
	var s Site
	if err := config.Load(path, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
