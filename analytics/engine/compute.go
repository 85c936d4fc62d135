package engine

import (
	"math"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/kpi"
)

// Boundaries the engine sums over.
const (
	// BoundarySite is the whole site: intake in, consumption, discharge and supply to others
	// out; internal flows cancel.
	BoundarySite = "site"
	// BoundaryUnit is one unit node with its own in- and outflows. Written "unit:<node id>".
	BoundaryUnit = "unit"
	// BoundaryPark is the sum over the sites of a park.
	BoundaryPark = "park"
)

// UnitBoundary is the boundary name of one unit node.
func UnitBoundary(node string) string { return BoundaryUnit + ":" + node }

// CondensateDensity is the ρ of Rb = Vb · ρ / D, in t/m³. The site model has no density knob:
// condensate volumes are metered as water, so 1 t/m³.
const CondensateDensity = 1.0

// Data is what the engine reads for one site and period: the ledger summed per meter and the
// production inputs summed pro rata.
type Data struct {
	Totals     []MeterTotal
	Production Production
}

// FlowVolume is one flow's share of a period.
type FlowVolume struct {
	ID   string             `json:"id"`
	Site string             `json:"site,omitempty"` // set at the park boundary
	From string             `json:"from"`
	To   string             `json:"to"`
	Kind analytics.FlowKind `json:"kind"`
	// Meter is the meter that measures the flow; empty for a derived flow.
	Meter string `json:"meter,omitempty"`
	// Level is the metering level the flow counts at: its meter's, or for a derived flow the
	// finest level among the meters it is derived from.
	Level   int  `json:"level,omitempty"`
	Derived bool `json:"derived,omitempty"`
	// Volume is the flow's volume in m³; a derived flow can come out negative when its meters
	// disagree.
	Volume float64 `json:"volume"`
	// Coverage is the fraction of the period's minutes with good data: the meter's, or for a
	// derived flow the smallest of its terms'.
	Coverage float64 `json:"coverage"`
	Flags    string  `json:"flags,omitempty"`
}

// Volumes are the GB/T 7119 quantities of one boundary over one period, in m³.
type Volumes struct {
	Vi        float64 `json:"vi"`         // intake, conventional sources
	Vu        float64 `json:"vu"`         // non-conventional water
	Vr        float64 `json:"vr"`         // reused = Vcy + Vs (Vw and Vb are part of it)
	Vcy       float64 `json:"vcy"`        // circulating
	Vs        float64 `json:"vs"`         // cascade
	Vw        float64 `json:"vw"`         // treated wastewater reused
	Vb        float64 `json:"vb"`         // condensate reused
	Vd        float64 `json:"vd"`         // discharged
	Vco       float64 `json:"vco"`        // consumed
	VSupplied float64 `json:"v_supplied"` // supplied to others
	Vt        float64 `json:"vt"`         // total use, Vi + Vr (the standards' definition)
	// Vl is the balance residual: leakage and unaccounted water. Site and park:
	// Vi + Vu − Vco − Vd − V外供. Unit: every inflow − every outflow.
	Vl float64 `json:"vl"`
	// VOut is, at the unit boundary, the water the unit passes on to other units (cascade,
	// condensate, treated wastewater, transfers); 0 at the site boundary, where it cancels.
	VOut float64 `json:"v_out"`
	// Vcr and Vcf are the circulating flow and make-up of indirect cooling loops; Vdr and Vdf
	// those of direct cooling loops. Make-up is every inflow of the loop's node but circulation.
	Vcr float64 `json:"vcr"`
	Vcf float64 `json:"vcf"`
	Vdr float64 `json:"vdr"`
	Vdf float64 `json:"vdf"`
}

// Indicator is one indicator with the quantities behind it.
type Indicator struct {
	// Value is nil when the indicator is undefined (a zero denominator, a missing production
	// figure): JSON null, never NaN.
	Value   *float64 `json:"value"`
	Formula string   `json:"formula"`
	// Unit is "ratio" for rates (0.9 is 90 %), else the unit of the value.
	Unit string `json:"unit"`
	// Terms are the quantities in the formula (m³, or t and 10⁴ CNY for production figures).
	Terms map[string]float64 `json:"terms"`
	// Coverage is the smallest data coverage among the flows and production figures behind the
	// value: the indicator is no better than its weakest input. 0 when nothing is behind it.
	Coverage float64 `json:"coverage"`
	// Declared marks the reuse-rate variant the site declares.
	Declared bool `json:"declared,omitempty"`
}

// Rates are the indicators of GB/T 7119 for one boundary and period.
type Rates struct {
	ReuseRate           Indicator `json:"reuse_rate"`            // R = Vr / (Vr + Vi)
	ReuseRateWithVu     Indicator `json:"reuse_rate_with_vu"`    // Vr / (Vr + Vi + Vu)
	IndirectCoolingRate Indicator `json:"indirect_cooling_rate"` // Rc = Vcr / (Vcr + Vcf)
	DirectCoolingRate   Indicator `json:"direct_cooling_rate"`   // Rd = Vdr / (Vdr + Vdf)
	CondensateRate      Indicator `json:"condensate_rate"`       // Rb = Vb · ρ / D
	WastewaterReuseRate Indicator `json:"wastewater_reuse_rate"` // Kw = Vw / (Vw + Vd)
	LeakageRate         Indicator `json:"leakage_rate"`          // Kl = Vl / Vi
	DischargeRate       Indicator `json:"discharge_rate"`        // Kd = Vd / Vi
	ConsumptionRate     Indicator `json:"consumption_rate"`      // Vco / Vi
	NonConventionalRate Indicator `json:"non_conventional_rate"` // Ru = Vu / (Vi + Vu) or Vu / Vi
	IntakePerProduct    Indicator `json:"intake_per_product"`    // Vi / Q
	IntakePer10kCNY     Indicator `json:"intake_per_10k_cny"`    // Vi / Z
}

// LevelMetering is the metering of one GB/T 24789 level: how much of the level's water passes
// through meters (水计量率) and how many of the required meters are installed (配备率).
//
// A flow counts at the level of its meter; a derived flow at the finest level among the meters it
// is derived from (an office supply derived from a level-1 intake minus level-2 workshop supplies
// is level-2 water that no meter measures). Consumption flows (evaporation, water into product)
// are left out: no meter can measure them.
type LevelMetering struct {
	Level int `json:"level"`
	// MeteredVolume is the volume of the level's metered flows; TotalVolume adds the level's
	// derived (unmetered) flows. Rate is their ratio.
	MeteredVolume float64  `json:"metered_volume"`
	TotalVolume   float64  `json:"total_volume"`
	Rate          *float64 `json:"rate"`
	RateTarget    *float64 `json:"rate_target,omitempty"`
	// Coverage is the smallest data coverage of the level's meters over the period.
	Coverage float64 `json:"coverage"`
	// Installed is the meters of the level in the register; Required the site's requirement.
	// EquippingRate is their ratio, null at the unit boundary where no requirement applies.
	Installed       int      `json:"installed"`
	Required        int      `json:"required"`
	EquippingRate   *float64 `json:"equipping_rate"`
	EquippingTarget *float64 `json:"equipping_target,omitempty"`
}

// Indicators is the answer for one boundary and period.
type Indicators struct {
	// Site is the site id, or the park id at the park boundary.
	Site string `json:"site"`
	// Boundary is "site", "unit:<node id>" or "park".
	Boundary string `json:"boundary"`
	// Sites are the sites summed at the park boundary.
	Sites   []string  `json:"sites,omitempty"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Volumes Volumes   `json:"volumes"`
	// ReuseRate is R = Vr / (Vr + Vi); nil when undefined. ReuseRateWithVu is Vr / (Vr + Vi + Vu).
	// Declared names the one the site declares: "reuse_rate" or "reuse_rate_with_vu".
	ReuseRate       *float64 `json:"reuse_rate"`
	ReuseRateWithVu *float64 `json:"reuse_rate_with_vu"`
	Declared        string   `json:"declared"`
	// Coverage is the mean of the metered flows' coverage.
	Coverage float64         `json:"coverage"`
	Rates    Rates           `json:"indicators"`
	Metering []LevelMetering `json:"metering"`
	// Production is the production inputs of the period; absent at the unit boundary, where
	// the site's product, output value and steam do not apply.
	Production *Production  `json:"production,omitempty"`
	Flows      []FlowVolume `json:"flows"`
}

// ResolveFlows gives every flow of the model its volume and coverage over a period of the given
// minutes, in the model's order: a metered flow from its meter's total, a derived flow from its
// terms.
func ResolveFlows(s *analytics.Site, totals []MeterTotal, minutes float64) []FlowVolume {
	perMeter := make(map[string]*MeterTotal, len(totals))
	for i := range totals {
		perMeter[totals[i].Meter] = &totals[i]
	}
	index := make(map[string]int, len(s.Flows))
	for i, f := range s.Flows {
		index[f.ID] = i
	}
	levels := make(map[string]int, len(s.Meters))
	for _, m := range s.Meters {
		levels[m.ID] = m.Level
	}
	out := make([]FlowVolume, len(s.Flows))
	done := make([]bool, len(s.Flows))
	var resolve func(i, depth int) FlowVolume
	resolve = func(i, depth int) FlowVolume {
		if done[i] {
			return out[i]
		}
		f := s.Flows[i]
		fv := FlowVolume{ID: f.ID, From: f.From, To: f.To, Kind: f.Kind, Meter: f.Meter, Derived: f.Derived != nil}
		switch {
		case f.Meter != "":
			fv.Level = levels[f.Meter]
			if t := perMeter[f.Meter]; t != nil {
				fv.Volume = t.Volume
				if minutes > 0 {
					fv.Coverage = min(1, t.Coverage/minutes)
				}
				fv.Flags = t.Flags.String()
			}
		case f.Derived != nil && depth < len(s.Flows): // a validated model has no cycle; the bound guards one that was not
			fv.Coverage = 1
			terms := 0
			for sign, ids := range [][]string{f.Derived.Add, f.Derived.Sub} {
				for _, id := range ids {
					j, ok := index[id]
					if !ok {
						fv.Coverage = 0
						continue
					}
					t := resolve(j, depth+1)
					if sign == 0 {
						fv.Volume += t.Volume
					} else {
						fv.Volume -= t.Volume
					}
					fv.Coverage = min(fv.Coverage, t.Coverage)
					fv.Level = max(fv.Level, t.Level)
					terms++
				}
			}
			if terms == 0 {
				fv.Coverage = 0
			}
		}
		out[i], done[i] = fv, true
		return fv
	}
	for i := range s.Flows {
		resolve(i, 0)
	}
	return out
}

// terms accumulates the volumes of a boundary by term name (vi, vu, vcy...) with the smallest
// coverage of the flows behind each. A term without any flow has no coverage entry.
type terms struct {
	vol  map[string]float64
	cov  map[string]float64
	unit bool // seen from one unit node: Vl is every inflow minus every outflow
}

func newTerms() *terms { return &terms{vol: map[string]float64{}, cov: map[string]float64{}} }

func (t *terms) add(name string, volume, coverage float64) {
	t.vol[name] += volume
	if c, ok := t.cov[name]; !ok || coverage < c {
		t.cov[name] = coverage
	}
}

// merge adds another boundary's terms (a park's sites).
func (t *terms) merge(o *terms) {
	for k, v := range o.vol {
		t.vol[k] += v
	}
	for k, c := range o.cov {
		if old, ok := t.cov[k]; !ok || c < old {
			t.cov[k] = c
		}
	}
}

// coverage is the smallest coverage among the named terms that have flows, 0 if none has.
func (t *terms) coverage(names ...string) float64 {
	c, any := 1.0, false
	for _, n := range names {
		if v, ok := t.cov[n]; ok {
			c, any = min(c, v), true
		}
	}
	if !any {
		return 0
	}
	return c
}

// Term names. vr, vt and vl are computed from the others.
var (
	reusedTerms   = []string{"vcy", "vs", "vw", "vb"}
	siteLeakTerms = []string{"vi", "vu", "vco", "vd", "v_supplied"}
	unitLeakTerms = []string{"vi", "vu", "vs", "vw", "vb", "vco", "vd", "v_supplied", "v_out"}
)

// kindTerm is the term a flow of each kind adds to at the site boundary.
var kindTerm = map[analytics.FlowKind]string{
	analytics.Intake:          "vi",
	analytics.NonConventional: "vu",
	analytics.Circulating:     "vcy",
	analytics.Cascade:         "vs",
	analytics.WastewaterReuse: "vw",
	analytics.Condensate:      "vb",
	analytics.Discharge:       "vd",
	analytics.Consumption:     "vco",
	analytics.Supplied:        "v_supplied",
}

// siteTerms classifies the flows of a site by kind, and the cooling loops' circulation and
// make-up by the kind of their node.
func siteTerms(s *analytics.Site, flows []FlowVolume) *terms {
	t := newTerms()
	for _, f := range flows {
		if name, ok := kindTerm[f.Kind]; ok {
			t.add(name, f.Volume, f.Coverage)
		}
	}
	t.vol["vl"] = kpi.LeakageBalance(t.vol["vi"], t.vol["vu"], t.vol["vco"], t.vol["vd"], t.vol["v_supplied"])
	t.cov["vl"] = t.coverage(siteLeakTerms...)
	coolingTerms(s, flows, t, nil)
	return t
}

// drainKinds are the unit kinds whose inflow is wastewater leaving the unit it comes from.
var drainKinds = []string{"outfall", "treatment", "reuse_plant"}

// unitTerms classifies the flows of one unit node as seen from the node: fresh water in (intake
// and internal supply count as its Vi), non-conventional water in, reused water in (cascade,
// treated wastewater, condensate), its circulation, and out: consumption, discharge (to sinks and
// to outfall, treatment or reuse units), supply to others and water passed on to other units.
func unitTerms(s *analytics.Site, flows []FlowVolume, node string) *terms {
	t := newTerms()
	t.unit = true
	kinds := make(map[string]analytics.Node, len(s.Nodes))
	for _, n := range s.Nodes {
		kinds[n.ID] = n
	}
	for _, f := range flows {
		switch {
		case f.From == node && f.To == node:
			if f.Kind == analytics.Circulating {
				t.add("vcy", f.Volume, f.Coverage)
			}
		case f.To == node:
			switch f.Kind {
			case analytics.Intake, analytics.Internal:
				t.add("vi", f.Volume, f.Coverage)
			case analytics.NonConventional, analytics.Cascade, analytics.WastewaterReuse, analytics.Condensate:
				t.add(kindTerm[f.Kind], f.Volume, f.Coverage)
			}
		case f.From == node:
			to := kinds[f.To]
			switch {
			case f.Kind == analytics.Consumption || f.Kind == analytics.Discharge || f.Kind == analytics.Supplied:
				t.add(kindTerm[f.Kind], f.Volume, f.Coverage)
			case f.Kind == analytics.Internal && slices.Contains(drainKinds, to.Kind):
				t.add("vd", f.Volume, f.Coverage)
			default:
				t.add("v_out", f.Volume, f.Coverage)
			}
		}
	}
	v := t.vol
	v["vl"] = v["vi"] + v["vu"] + v["vs"] + v["vw"] + v["vb"] - v["vco"] - v["vd"] - v["v_supplied"] - v["v_out"]
	t.cov["vl"] = t.coverage(unitLeakTerms...)
	coolingTerms(s, flows, t, func(n string) bool { return n == node })
	return t
}

// coolingTerms adds the circulation (vcr, vdr) and make-up (vcf, vdf) of the cooling loops
// inside the boundary: nodes of kind cooling_indirect and cooling_direct, restricted to those
// inside when inside is not nil.
func coolingTerms(s *analytics.Site, flows []FlowVolume, t *terms, inside func(string) bool) {
	loop := map[string][2]string{} // node → circulation and make-up terms
	for _, n := range s.Nodes {
		if inside != nil && !inside(n.ID) {
			continue
		}
		switch n.Kind {
		case "cooling_indirect":
			loop[n.ID] = [2]string{"vcr", "vcf"}
		case "cooling_direct":
			loop[n.ID] = [2]string{"vdr", "vdf"}
		}
	}
	for _, f := range flows {
		l, ok := loop[f.To]
		if !ok {
			continue
		}
		if f.From == f.To {
			if f.Kind == analytics.Circulating {
				t.add(l[0], f.Volume, f.Coverage)
			}
			continue
		}
		t.add(l[1], f.Volume, f.Coverage)
	}
}

// volumes turns terms into the reported quantities.
func (t *terms) volumes() Volumes {
	v := t.vol
	out := Volumes{
		Vi: v["vi"], Vu: v["vu"], Vcy: v["vcy"], Vs: v["vs"], Vw: v["vw"], Vb: v["vb"],
		Vd: v["vd"], Vco: v["vco"], VSupplied: v["v_supplied"], Vl: v["vl"], VOut: v["v_out"],
		Vcr: v["vcr"], Vcf: v["vcf"], Vdr: v["vdr"], Vdf: v["vdf"],
	}
	out.Vr = out.Vcy + out.Vs + out.Vw + out.Vb
	out.Vt = out.Vi + out.Vr
	return out
}

// indicatorOptions are the site knobs that change indicators.
type indicatorOptions struct {
	declaredWithVu bool
	base           kpi.NonConventionalBase
}

func optionsOf(s *analytics.Site) indicatorOptions {
	o := indicatorOptions{declaredWithVu: s.Indicators.DeclaredReuseRate == analytics.ReuseRateWithVu}
	if s.Indicators.NonConventionalBase == analytics.BaseIntakeOnly {
		o.base = kpi.IntakeOnly
	} else {
		o.base = kpi.IntakeAndNonConventional
	}
	return o
}

// value returns v when it is defined (ok) and a number, nil otherwise: JSON null, never NaN.
func value(v float64, ok bool) *float64 {
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// rates computes every indicator from the terms and, when known, the production inputs.
func (t *terms) rates(o indicatorOptions, prod *Production) Rates {
	vol := t.volumes()
	ind := func(formula, unit string, v float64, ok bool, cov float64, ts map[string]float64) Indicator {
		return Indicator{Value: value(v, ok), Formula: formula, Unit: unit, Terms: ts, Coverage: cov}
	}
	vrCov := append(slices.Clone(reusedTerms), "vi")
	var r Rates
	v, ok := kpi.ReuseRate(vol.Vr, vol.Vi)
	r.ReuseRate = ind("Vr / (Vr + Vi)", "ratio", v, ok, t.coverage(vrCov...), map[string]float64{"vr": vol.Vr, "vi": vol.Vi})
	v, ok = kpi.ReuseRateWithVu(vol.Vr, vol.Vi, vol.Vu)
	r.ReuseRateWithVu = ind("Vr / (Vr + Vi + Vu)", "ratio", v, ok, t.coverage(append(vrCov, "vu")...), map[string]float64{"vr": vol.Vr, "vi": vol.Vi, "vu": vol.Vu})
	r.ReuseRate.Declared, r.ReuseRateWithVu.Declared = !o.declaredWithVu, o.declaredWithVu
	v, ok = kpi.IndirectCoolingRate(vol.Vcr, vol.Vcf)
	r.IndirectCoolingRate = ind("Vcr / (Vcr + Vcf)", "ratio", v, ok, t.coverage("vcr", "vcf"), map[string]float64{"vcr": vol.Vcr, "vcf": vol.Vcf})
	v, ok = kpi.DirectCoolingRate(vol.Vdr, vol.Vdf)
	r.DirectCoolingRate = ind("Vdr / (Vdr + Vdf)", "ratio", v, ok, t.coverage("vdr", "vdf"), map[string]float64{"vdr": vol.Vdr, "vdf": vol.Vdf})
	v, ok = kpi.WastewaterReuseRate(vol.Vw, vol.Vd)
	r.WastewaterReuseRate = ind("Vw / (Vw + Vd)", "ratio", v, ok, t.coverage("vw", "vd"), map[string]float64{"vw": vol.Vw, "vd": vol.Vd})
	v, ok = kpi.LeakageRate(vol.Vl, vol.Vi)
	r.LeakageRate = ind(leakFormula(t), "ratio", v, ok, min(t.coverage("vl"), t.coverage("vi")), map[string]float64{"vl": vol.Vl, "vi": vol.Vi})
	v, ok = kpi.DischargeRate(vol.Vd, vol.Vi)
	r.DischargeRate = ind("Vd / Vi", "ratio", v, ok, t.coverage("vd", "vi"), map[string]float64{"vd": vol.Vd, "vi": vol.Vi})
	v, ok = kpi.ConsumptionRate(vol.Vco, vol.Vi)
	r.ConsumptionRate = ind("Vco / Vi", "ratio", v, ok, t.coverage("vco", "vi"), map[string]float64{"vco": vol.Vco, "vi": vol.Vi})
	v, ok = kpi.NonConventionalRate(vol.Vu, vol.Vi, o.base)
	ruFormula := "Vu / (Vi + Vu)"
	if o.base == kpi.IntakeOnly {
		ruFormula = "Vu / Vi"
	}
	r.NonConventionalRate = ind(ruFormula, "ratio", v, ok, t.coverage("vu", "vi"), map[string]float64{"vu": vol.Vu, "vi": vol.Vi})

	// Production-based indicators: undefined without the figure.
	var q, z, d Figure
	unit := ""
	if prod != nil {
		q, z, d, unit = prod.Product, prod.OutputValue, prod.Steam, prod.ProductUnit
	}
	withFigure := func(f Figure, name string, ts map[string]float64, waterCov float64, compute func(x float64) (float64, bool)) (*float64, float64) {
		if f.Value == nil {
			return nil, 0
		}
		ts[name] = *f.Value
		return value(compute(*f.Value)), min(waterCov, f.Coverage)
	}
	r.CondensateRate = Indicator{Formula: "Vb · ρ / D", Unit: "ratio", Terms: map[string]float64{"vb": vol.Vb, "rho": CondensateDensity}}
	r.CondensateRate.Value, r.CondensateRate.Coverage = withFigure(d, "d", r.CondensateRate.Terms, t.coverage("vb"),
		func(x float64) (float64, bool) { return kpi.CondensateRate(vol.Vb, CondensateDensity, x) })
	pu := "m³/unit"
	if unit != "" {
		pu = "m³/" + unit
	}
	r.IntakePerProduct = Indicator{Formula: "Vi / Q", Unit: pu, Terms: map[string]float64{"vi": vol.Vi}}
	r.IntakePerProduct.Value, r.IntakePerProduct.Coverage = withFigure(q, "q", r.IntakePerProduct.Terms, t.coverage("vi"),
		func(x float64) (float64, bool) { return kpi.IntakePerProduct(vol.Vi, x) })
	r.IntakePer10kCNY = Indicator{Formula: "Vi / Z", Unit: "m³/10⁴ CNY", Terms: map[string]float64{"vi": vol.Vi}}
	r.IntakePer10kCNY.Value, r.IntakePer10kCNY.Coverage = withFigure(z, "z", r.IntakePer10kCNY.Terms, t.coverage("vi"),
		func(x float64) (float64, bool) { return kpi.IntakePer10kCNY(vol.Vi, x) })
	return r
}

func leakFormula(t *terms) string {
	if t.unit {
		return "Vl / Vi, Vl = inflows − outflows"
	}
	return "Vl / Vi, Vl = Vi + Vu − Vco − Vd − V外供"
}

// meteringOf computes the metering of each level over the flows of a boundary. meters are the
// register entries inside the boundary; required and the targets are the site's, nil at a unit.
func meteringOf(flows []FlowVolume, meters []analytics.Meter, cfg *analytics.MeteringConfig) []LevelMetering {
	out := make([]LevelMetering, 0, 3)
	for level := 1; level <= 3; level++ {
		lm := LevelMetering{Level: level}
		cov, any := 1.0, false
		for _, f := range flows {
			// Consumption (evaporation, water into product) is not water a meter can measure.
			if f.Level != level || f.Kind == analytics.Consumption {
				continue
			}
			vol := max(f.Volume, 0)
			lm.TotalVolume += vol
			if f.Meter != "" {
				lm.MeteredVolume += vol
				cov, any = min(cov, f.Coverage), true
			}
		}
		if any {
			lm.Coverage = cov
		}
		lm.Rate = value(kpi.MeteringRate(lm.MeteredVolume, lm.TotalVolume))
		for _, m := range meters {
			if m.Level == level {
				lm.Installed++
			}
		}
		if cfg != nil {
			lm.Required = cfg.Required[level]
			lm.EquippingRate = value(kpi.EquippingRate(lm.Installed, lm.Required))
			if v, ok := cfg.Coverage[level]; ok {
				lm.RateTarget = &v
			}
			if v, ok := cfg.Equipping[level]; ok {
				lm.EquippingTarget = &v
			}
		}
		out = append(out, lm)
	}
	return out
}

// meanCoverage is the mean coverage of the metered flows.
func meanCoverage(flows []FlowVolume) float64 {
	var sum float64
	n := 0
	for _, f := range flows {
		if f.Meter != "" {
			sum += f.Coverage
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func periodMinutes(from, to time.Time) float64 { return to.Sub(from).Minutes() }

// Compute is the pure core of the site boundary: the site model, the period's data and the
// period in, indicators out.
func Compute(s *analytics.Site, d Data, from, to time.Time) Indicators {
	flows := ResolveFlows(s, d.Totals, periodMinutes(from, to))
	t := siteTerms(s, flows)
	prod := d.Production
	return finish(Indicators{Site: s.ID, Boundary: BoundarySite, From: from, To: to, Production: &prod, Flows: flows},
		t, optionsOf(s), meteringOf(flows, s.Meters, &s.Metering))
}

// ComputeUnit is the pure core of a unit boundary: one unit node and its own flows. ok is false
// when the site has no unit node of that id.
func ComputeUnit(s *analytics.Site, node string, d Data, from, to time.Time) (Indicators, bool) {
	n, found := s.Node(node)
	if !found || n.Type != analytics.Unit {
		return Indicators{}, false
	}
	all := ResolveFlows(s, d.Totals, periodMinutes(from, to))
	var flows []FlowVolume
	var meters []analytics.Meter
	for _, f := range all {
		if f.From == node || f.To == node {
			flows = append(flows, f)
			if m, ok := s.Meter(f.Meter); ok {
				meters = append(meters, m)
			}
		}
	}
	t := unitTerms(s, flows, node)
	return finish(Indicators{Site: s.ID, Boundary: UnitBoundary(node), From: from, To: to, Flows: flows},
		t, optionsOf(s), meteringOf(flows, meters, nil)), true
}

// ComputePark is the pure core of the park boundary: the sum over the park's sites, each with
// its own data. Volumes add up; coverage is the smallest of the sites'; the declared reuse rate
// and the non-conventional base are those of the first site.
func ComputePark(park string, sites []*analytics.Site, ds []Data, from, to time.Time) Indicators {
	out := Indicators{Site: park, Boundary: BoundaryPark, From: from, To: to, Flows: []FlowVolume{}}
	t := newTerms()
	var prods []Production
	var metering []LevelMetering
	for i, s := range sites {
		flows := ResolveFlows(s, ds[i].Totals, periodMinutes(from, to))
		t.merge(siteTerms(s, flows))
		prods = append(prods, ds[i].Production)
		for j := range flows {
			flows[j].Site = s.ID
		}
		out.Flows = append(out.Flows, flows...)
		out.Sites = append(out.Sites, s.ID)
		lm := meteringOf(flows, s.Meters, &s.Metering)
		if metering == nil {
			metering = lm
			continue
		}
		for j := range lm {
			m := &metering[j]
			m.MeteredVolume += lm[j].MeteredVolume
			m.TotalVolume += lm[j].TotalVolume
			m.Installed += lm[j].Installed
			m.Required += lm[j].Required
			if lm[j].TotalVolume > 0 || lm[j].Installed > 0 {
				m.Coverage = min(m.Coverage, lm[j].Coverage)
			}
		}
	}
	for j := range metering {
		m := &metering[j]
		m.Rate = value(kpi.MeteringRate(m.MeteredVolume, m.TotalVolume))
		m.EquippingRate = value(kpi.EquippingRate(m.Installed, m.Required))
		m.RateTarget, m.EquippingTarget = nil, nil // sites may have different targets
	}
	prod := addProduction(prods)
	out.Production = &prod
	opts := indicatorOptions{base: kpi.IntakeAndNonConventional}
	if len(sites) > 0 {
		opts = optionsOf(sites[0])
	}
	return finish(out, t, opts, metering)
}

// finish fills in what every boundary computes the same way.
func finish(out Indicators, t *terms, o indicatorOptions, metering []LevelMetering) Indicators {
	out.Volumes = t.volumes()
	out.Rates = t.rates(o, out.Production)
	out.ReuseRate = out.Rates.ReuseRate.Value
	out.ReuseRateWithVu = out.Rates.ReuseRateWithVu.Value
	out.Declared = "reuse_rate"
	if o.declaredWithVu {
		out.Declared = "reuse_rate_with_vu"
	}
	out.Coverage = meanCoverage(out.Flows)
	out.Metering = metering
	if out.Flows == nil {
		out.Flows = []FlowVolume{}
	}
	return out
}
