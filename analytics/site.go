// Package analytics holds the water network model of a site: its nodes (intake sources, units,
// sinks), the flows between them, and the meters that measure those flows. Every indicator and
// balance is computed on this model, so the classification of a flow (intake, reuse, discharge...)
// is declared once here, in the site's YAML, and never guessed in code.
package analytics

import (
	"fmt"
	"maps"
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
	// Plans are the approved withdrawal plans (取水计划), annual and monthly.
	Plans      []Plan          `yaml:"plans"`
	Balance    BalanceConfig   `yaml:"balance"`
	Indicators IndicatorConfig `yaml:"indicators"`
	Metering   MeteringConfig  `yaml:"metering"`

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
	// Type is the measuring principle (mechanical, electromagnetic, ultrasonic...); it decides
	// the verification interval when verification_due is not given.
	Type string `yaml:"type"`
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
	// Resolve the zone now, so a loaded site is only read afterwards, by any number of goroutines.
	if loc, err := time.LoadLocation(s.Timezone); err == nil {
		s.loc = loc
	}
	s.Balance.Default()
	s.Indicators.Default()
	s.Metering.Default(s.Meters)
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
	if s.Park != "" && !wire.ValidID(s.Park) {
		p.Addf("park", "%q is not a valid park id", s.Park)
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
		checkRegister(p, path, m)
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
	s.checkPlans(p, nodes)
	s.Balance.Validate(p, "balance")
	s.Indicators.Validate(p, "indicators")
	s.Metering.Validate(p, "metering")
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

// Plan periods.
const (
	PeriodYear  = "year"
	PeriodMonth = "month"
)

// Plan is one approved withdrawal plan (取水计划): the volume a source, or the whole site, may take
// over one calendar year or month. Applicants for the pilot must show no withdrawal above plan in
// the last three years, so plans are data kept with the site, not alert thresholds.
type Plan struct {
	Period string `yaml:"period"` // "year" or "month"
	Year   int    `yaml:"year"`
	Month  int    `yaml:"month"` // 1..12 for monthly plans, 0 for annual ones
	// Source is the id of an intake or non-conventional source node, or "" for the whole site's
	// intake Vi.
	Source   string  `yaml:"source"`
	Volume   float64 `yaml:"volume"`   // m³ approved
	Approval string  `yaml:"approval"` // approval document number, shown in reports
}

// Span is the plan's period in the site's time zone: from the first instant of the year or month
// (inclusive) to the first instant of the next one (exclusive).
func (p Plan) Span(loc *time.Location) (from, to time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	if p.Period == PeriodMonth {
		from = time.Date(p.Year, time.Month(p.Month), 1, 0, 0, 0, 0, loc)
		return from, from.AddDate(0, 1, 0)
	}
	from = time.Date(p.Year, time.January, 1, 0, 0, 0, 0, loc)
	return from, from.AddDate(1, 0, 0)
}

// String names the plan the way reports do: "municipal 2026-03" or "site 2026".
func (p Plan) String() string {
	src := p.Source
	if src == "" {
		src = "site"
	}
	if p.Period == PeriodMonth {
		return fmt.Sprintf("%s %04d-%02d", src, p.Year, p.Month)
	}
	return fmt.Sprintf("%s %04d", src, p.Year)
}

// PlansAt returns the plans whose period contains t, in the order of the site file.
func (s *Site) PlansAt(t time.Time) []Plan {
	var out []Plan
	for _, p := range s.Plans {
		from, to := p.Span(s.Location())
		if !t.Before(from) && t.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

func (s *Site) checkPlans(p *config.Problems, nodes map[string]Node) {
	type key struct {
		period      string
		year, month int
		source      string
	}
	seen := map[key]int{}
	for i, pl := range s.Plans {
		path := fmt.Sprintf("plans[%d]", i)
		switch pl.Period {
		case PeriodYear:
			if pl.Month != 0 {
				p.Addf(path+".month", "an annual plan has no month, got %d", pl.Month)
			}
		case PeriodMonth:
			if pl.Month < 1 || pl.Month > 12 {
				p.Addf(path+".month", "%d is not a month (1..12)", pl.Month)
			}
		default:
			p.Addf(path+".period", "%q is not one of %s, %s", pl.Period, PeriodYear, PeriodMonth)
		}
		if pl.Year < 2000 || pl.Year > 2100 {
			p.Addf(path+".year", "%d is not a plan year (2000..2100)", pl.Year)
		}
		if pl.Source != "" {
			n, ok := nodes[pl.Source]
			switch {
			case !ok:
				p.Addf(path+".source", "unknown node %q", pl.Source)
			case n.Type != Source:
				p.Addf(path+".source", "%q is a %s, not an intake or non-conventional source", pl.Source, n.Type)
			}
		}
		if !(pl.Volume > 0) {
			p.Addf(path+".volume", "%g m³ is not a positive volume", pl.Volume)
		}
		k := key{pl.Period, pl.Year, pl.Month, pl.Source}
		if j, dup := seen[k]; dup {
			p.Addf(path, "plan %s is defined twice (plans[%d])", pl, j)
		} else {
			seen[k] = i
		}
	}
}

// BalanceConfig holds the thresholds of the water balances.
type BalanceConfig struct {
	// ClosureThreshold is the largest relative gap between the sum of measured unit intakes and
	// the measured total intake for a balance test to close: 0.10 in GB/T 12452, 0.05 under some
	// local rules.
	ClosureThreshold float64 `yaml:"closure_threshold"`
	// ImbalanceWarn and ImbalanceAlarm bound ε = (Q_parent − Σ Q_children) / Q_parent. Class-2
	// meters make 2–4 % noise, hence 0.05 and 0.10.
	ImbalanceWarn  float64 `yaml:"imbalance_warn"`
	ImbalanceAlarm float64 `yaml:"imbalance_alarm"`
}

// Default fills in the GB/T 12452 closure threshold and the usual imbalance limits.
func (c *BalanceConfig) Default() {
	if c.ClosureThreshold == 0 {
		c.ClosureThreshold = 0.10
	}
	if c.ImbalanceWarn == 0 {
		c.ImbalanceWarn = 0.05
	}
	if c.ImbalanceAlarm == 0 {
		c.ImbalanceAlarm = 0.10
	}
}

// Validate checks that the thresholds are fractions and that warn comes before alarm.
func (c *BalanceConfig) Validate(p *config.Problems, path string) {
	if !(c.ClosureThreshold > 0 && c.ClosureThreshold < 1) {
		p.Addf(path+".closure_threshold", "%g is not a fraction between 0 and 1 (0.10 is 10 %%)", c.ClosureThreshold)
	}
	if !(c.ImbalanceWarn > 0 && c.ImbalanceWarn < 1) {
		p.Addf(path+".imbalance_warn", "%g is not a fraction between 0 and 1 (0.05 is 5 %%)", c.ImbalanceWarn)
	}
	if !(c.ImbalanceAlarm > 0 && c.ImbalanceAlarm < 1) {
		p.Addf(path+".imbalance_alarm", "%g is not a fraction between 0 and 1 (0.10 is 10 %%)", c.ImbalanceAlarm)
	} else if c.ImbalanceAlarm <= c.ImbalanceWarn {
		p.Addf(path+".imbalance_alarm", "%g must be above imbalance_warn %g", c.ImbalanceAlarm, c.ImbalanceWarn)
	}
}

// Declared reuse rate variants (DOMAIN.md: report both, mark which one is declared).
const (
	ReuseRateWithoutVu = "without_vu" // Vr / (Vr + Vi)
	ReuseRateWithVu    = "with_vu"    // Vr / (Vr + Vi + Vu)
)

// Bases of the non-conventional water substitution rate, which differ between regions.
const (
	BaseIntakeAndNonConventional = "intake_and_non_conventional" // Vu / (Vi + Vu)
	BaseIntakeOnly               = "intake_only"                 // Vu / Vi
)

// IndicatorConfig says which variant of an indicator the site declares, and what it is compared
// against.
type IndicatorConfig struct {
	DeclaredReuseRate   string     `yaml:"declared_reuse_rate"`
	NonConventionalBase string     `yaml:"non_conventional_base"`
	Benchmark           *Benchmark `yaml:"benchmark"`
}

// Benchmark is the sector reuse rate the site must beat. No official table of sector averages
// exists, so it is data with its source, never a constant in code.
type Benchmark struct {
	Sector    string  `yaml:"sector"`
	Year      int     `yaml:"year"`
	ReuseRate float64 `yaml:"reuse_rate"` // fraction: 0.929 is 92.9 %
	Source    string  `yaml:"source"`     // where the figure comes from
}

// Default declares the reuse rate without Vu and the Vi + Vu base.
func (c *IndicatorConfig) Default() {
	if c.DeclaredReuseRate == "" {
		c.DeclaredReuseRate = ReuseRateWithoutVu
	}
	if c.NonConventionalBase == "" {
		c.NonConventionalBase = BaseIntakeAndNonConventional
	}
}

// Validate checks the variants and the benchmark.
func (c *IndicatorConfig) Validate(p *config.Problems, path string) {
	if c.DeclaredReuseRate != ReuseRateWithoutVu && c.DeclaredReuseRate != ReuseRateWithVu {
		p.Addf(path+".declared_reuse_rate", "%q is not one of %s, %s", c.DeclaredReuseRate, ReuseRateWithoutVu, ReuseRateWithVu)
	}
	if c.NonConventionalBase != BaseIntakeAndNonConventional && c.NonConventionalBase != BaseIntakeOnly {
		p.Addf(path+".non_conventional_base", "%q is not one of %s, %s", c.NonConventionalBase, BaseIntakeAndNonConventional, BaseIntakeOnly)
	}
	if b := c.Benchmark; b != nil {
		bp := path + ".benchmark"
		if b.Sector == "" {
			p.Addf(bp+".sector", "is required")
		}
		if b.Source == "" {
			p.Addf(bp+".source", "is required: say where the figure comes from")
		}
		if b.Year < 1990 || b.Year > 2100 {
			p.Addf(bp+".year", "%d is not a plausible year", b.Year)
		}
		if !(b.ReuseRate > 0 && b.ReuseRate <= 1) {
			p.Addf(bp+".reuse_rate", "%g is not a fraction between 0 and 1 (0.929 is 92.9 %%)", b.ReuseRate)
		}
	}
}

// Metering levels of GB/T 24789.
var meteringLevels = []int{1, 2, 3}

// MeteringConfig holds the GB/T 24789 requirements the metering indicators are checked against.
type MeteringConfig struct {
	// Required is the number of meters required per level, for the equipping rate (配备率). A
	// level left out defaults to the number of meters the model has at that level.
	Required map[int]int `yaml:"required"`
	// Equipping and Coverage are the least equipping rate and metering coverage (计量率) per
	// level, as fractions: 1.00/0.95/0.80 and 1.00/0.95/0.85 by default (DOMAIN.md: verify).
	Equipping map[int]float64 `yaml:"equipping"`
	Coverage  map[int]float64 `yaml:"coverage"`
	// Verification holds the intervals used when a meter has no verification_due.
	Verification VerificationIntervals `yaml:"verification"`
}

// Default fills in every level left out. meters is the register, which gives the default Required.
func (c *MeteringConfig) Default(meters []Meter) {
	if c.Required == nil {
		c.Required = map[int]int{}
	}
	if c.Equipping == nil {
		c.Equipping = map[int]float64{}
	}
	if c.Coverage == nil {
		c.Coverage = map[int]float64{}
	}
	equip := map[int]float64{1: 1.00, 2: 0.95, 3: 0.80}
	cover := map[int]float64{1: 1.00, 2: 0.95, 3: 0.85}
	for _, l := range meteringLevels {
		if _, ok := c.Required[l]; !ok {
			n := 0
			for _, m := range meters {
				if m.Level == l {
					n++
				}
			}
			c.Required[l] = n
		}
		if _, ok := c.Equipping[l]; !ok {
			c.Equipping[l] = equip[l]
		}
		if _, ok := c.Coverage[l]; !ok {
			c.Coverage[l] = cover[l]
		}
	}
	c.Verification.Default()
}

// Validate checks levels, counts and fractions, in level order.
func (c *MeteringConfig) Validate(p *config.Problems, path string) {
	for _, l := range slices.Sorted(maps.Keys(c.Required)) {
		if !slices.Contains(meteringLevels, l) {
			p.Addf(fmt.Sprintf("%s.required.%d", path, l), "%d is not a metering level (1, 2 or 3)", l)
		} else if c.Required[l] < 0 {
			p.Addf(fmt.Sprintf("%s.required.%d", path, l), "%d meters is not a count", c.Required[l])
		}
	}
	checkFractions(p, path+".equipping", c.Equipping)
	checkFractions(p, path+".coverage", c.Coverage)
	c.Verification.Validate(p, path+".verification")
}

func checkFractions(p *config.Problems, path string, m map[int]float64) {
	for _, l := range slices.Sorted(maps.Keys(m)) {
		lp := fmt.Sprintf("%s.%d", path, l)
		if !slices.Contains(meteringLevels, l) {
			p.Addf(lp, "%d is not a metering level (1, 2 or 3)", l)
		} else if !(m[l] >= 0 && m[l] <= 1) {
			p.Addf(lp, "%g is not a fraction between 0 and 1 (0.95 is 95 %%)", m[l])
		}
	}
}

// Meter types. Mechanical meters (and meters of no stated type) follow the water-meter rules of
// JJG 162-2019 by nominal diameter; the other principles are flowmeters with their own, shorter,
// calibration intervals.
var meterTypes = []string{"mechanical", "electromagnetic", "ultrasonic", "vortex", "coriolis", "differential_pressure"}

// VerificationIntervals are the verification or replacement intervals, in months, of meters
// whose register gives no verification_due.
type VerificationIntervals struct {
	// JJG 162-2019 for water meters: DN ≤ 25 replace within 6 years, 25 < DN ≤ 50 replace within
	// 4 years, larger verify every 2 years.
	UpToDN25Months  int `yaml:"dn_up_to_25_months"`
	UpToDN50Months  int `yaml:"dn_up_to_50_months"`
	AboveDN50Months int `yaml:"dn_above_50_months"`
	// FlowmeterMonths applies to electromagnetic, ultrasonic and other non-mechanical flowmeters:
	// typically 1–2 years, 1 by default.
	FlowmeterMonths int `yaml:"flowmeter_months"`
}

// Default fills in the JJG 162-2019 intervals and one year for flowmeters.
func (v *VerificationIntervals) Default() {
	if v.UpToDN25Months == 0 {
		v.UpToDN25Months = 72
	}
	if v.UpToDN50Months == 0 {
		v.UpToDN50Months = 48
	}
	if v.AboveDN50Months == 0 {
		v.AboveDN50Months = 24
	}
	if v.FlowmeterMonths == 0 {
		v.FlowmeterMonths = 12
	}
}

// Validate checks that every interval is a positive number of months.
func (v *VerificationIntervals) Validate(p *config.Problems, path string) {
	for _, f := range []struct {
		key string
		val int
	}{
		{"dn_up_to_25_months", v.UpToDN25Months},
		{"dn_up_to_50_months", v.UpToDN50Months},
		{"dn_above_50_months", v.AboveDN50Months},
		{"flowmeter_months", v.FlowmeterMonths},
	} {
		if f.val <= 0 || f.val > 240 {
			p.Addf(path+"."+f.key, "%d is not an interval in months (1..240)", f.val)
		}
	}
}

const dateLayout = "2006-01-02"

// checkRegister validates the register fields of one meter: type and dates.
func checkRegister(p *config.Problems, path string, m Meter) {
	if m.Type != "" && !slices.Contains(meterTypes, m.Type) {
		p.Addf(path+".type", "%q is not one of %v", m.Type, meterTypes)
	}
	on, errOn := parseDate(m.VerifiedOn)
	if errOn != nil {
		p.Addf(path+".verified_on", "%q is not a date (YYYY-MM-DD)", m.VerifiedOn)
	}
	due, errDue := parseDate(m.VerificationDue)
	if errDue != nil {
		p.Addf(path+".verification_due", "%q is not a date (YYYY-MM-DD)", m.VerificationDue)
	}
	if errOn == nil && errDue == nil && !on.IsZero() && !due.IsZero() && !due.After(on) {
		p.Addf(path+".verification_due", "%s is not after verified_on %s", m.VerificationDue, m.VerifiedOn)
	}
}

// parseDate reads a register date; the empty string is the zero time.
func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(dateLayout, s)
}

// flowmeter reports whether the meter is a non-mechanical flowmeter.
func (m Meter) flowmeter() bool { return m.Type != "" && m.Type != "mechanical" }

// Replaced reports whether JJG 162-2019 asks for the meter to be replaced, rather than verified,
// when its interval ends: mechanical water meters up to DN 50.
func (m Meter) Replaced() bool { return !m.flowmeter() && m.DN > 0 && m.DN <= 50 }

// NextVerification is the date the meter's verification or replacement falls due, as midnight UTC
// of that civil date: verification_due when the register gives it, otherwise verified_on plus the
// interval for the meter's type and DN (a mechanical meter of unknown DN gets the shortest
// water-meter interval, that of DN > 50). Intervals left at zero take the JJG 162-2019 defaults. It
// is the zero time when the register has neither date.
func (m Meter) NextVerification(iv VerificationIntervals) time.Time {
	if due, err := parseDate(m.VerificationDue); err == nil && !due.IsZero() {
		return due
	}
	on, err := parseDate(m.VerifiedOn)
	if err != nil || on.IsZero() {
		return time.Time{}
	}
	iv.Default()
	months := iv.AboveDN50Months
	switch {
	case m.flowmeter():
		months = iv.FlowmeterMonths
	case m.DN > 0 && m.DN <= 25:
		months = iv.UpToDN25Months
	case m.DN > 25 && m.DN <= 50:
		months = iv.UpToDN50Months
	}
	return on.AddDate(0, months, 0)
}

// NextVerification is the meter's next verification date at midnight in the site's time zone,
// with the site's intervals; the zero time when the register has no date.
func (s *Site) NextVerification(m Meter) time.Time {
	d := m.NextVerification(s.Metering.Verification)
	if d.IsZero() {
		return d
	}
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, s.Location())
}

// Park is an industrial park: a group of sites managed together.
type Park struct {
	ID    string   `yaml:"id"`
	Name  string   `yaml:"name"`
	Sites []string `yaml:"sites"` // site ids
}

// Validate checks the park's id and its list of sites.
func (pk *Park) Validate(p *config.Problems) {
	if !wire.ValidID(pk.ID) {
		p.Addf("id", "%q is not a valid park id (letters, digits, '-', '_', '.')", pk.ID)
	}
	if len(pk.Sites) == 0 {
		p.Addf("sites", "a park has at least one site")
	}
	seen := map[string]int{}
	for i, id := range pk.Sites {
		path := fmt.Sprintf("sites[%d]", i)
		if !wire.ValidID(id) {
			p.Addf(path, "%q is not a valid site id", id)
		}
		if j, dup := seen[id]; dup {
			p.Addf(path, "site %q is listed twice (sites[%d])", id, j)
		} else {
			seen[id] = i
		}
	}
}

// Members returns the park's sites, in the park's order, from the sites loaded; it names every
// site of the park that is not among them.
func (pk *Park) Members(sites []*Site) ([]*Site, error) {
	byID := make(map[string]*Site, len(sites))
	for _, s := range sites {
		byID[s.ID] = s
	}
	var out []*Site
	var missing []string
	for _, id := range pk.Sites {
		if s, ok := byID[id]; ok {
			out = append(out, s)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("resolve park %s: sites %v are not loaded", pk.ID, missing)
	}
	return out, nil
}

// LoadPark reads and validates a park file.
func LoadPark(path string) (*Park, error) {
	var pk Park
	if err := config.Load(path, &pk); err != nil {
		return nil, err
	}
	return &pk, nil
}

// Parks groups sites by the park their file names, keeping the order of sites; sites with no
// park are left out.
func Parks(sites []*Site) map[string][]*Site {
	out := map[string][]*Site{}
	for _, s := range sites {
		if s.Park != "" {
			out[s.Park] = append(out[s.Park], s)
		}
	}
	return out
}
