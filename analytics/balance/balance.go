// Package balance computes the water balances of a site's network over one period: the residual
// of every unit node, the imbalance between each parent meter and its children, the cascade use of
// water by quality tier, and the whole-site balance with the GB/T 12452 closure check. It is pure:
// the site model and the period's volumes in, balances out, so the live view and the evidence
// reports compute the same figures.
package balance

import (
	"slices"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/kpi"
)

// FlowVolume is one flow of the model over a period.
type FlowVolume struct {
	ID, From, To string
	Kind         analytics.FlowKind
	Meter        string  // "" for a derived flow
	Volume       float64 // m³
	Coverage     float64 // fraction of the period with good data, 0..1
	Derived      bool    // computed from other flows by the model's derived definition
}

// Resolve turns the volumes of the period's meters into the volume of every flow of the model, in
// the model's order. A metered flow takes its meter's volume (0, with coverage 0, when the meter
// has none); a derived flow is the sum of its Add terms minus the sum of its Sub terms, with the
// smallest coverage of its terms. Meters present in volumes have coverage 1.
func Resolve(s *analytics.Site, meterVolumes map[string]float64) []FlowVolume {
	index := make(map[string]int, len(s.Flows))
	for i, f := range s.Flows {
		index[f.ID] = i
	}
	type res struct{ vol, cov float64 }
	done := make(map[string]res, len(s.Flows))
	var resolve func(id string, depth int) res
	resolve = func(id string, depth int) res {
		if r, ok := done[id]; ok {
			return r
		}
		i, ok := index[id]
		if !ok {
			return res{}
		}
		f := s.Flows[i]
		var r res
		switch {
		case f.Meter != "":
			if v, ok := meterVolumes[f.Meter]; ok {
				r = res{v, 1}
			}
		case f.Derived != nil && depth < len(s.Flows): // a validated model has no cycle; the bound guards one that was not validated
			r.cov = 1
			for _, t := range f.Derived.Add {
				tr := resolve(t, depth+1)
				r.vol += tr.vol
				r.cov = min(r.cov, tr.cov)
			}
			for _, t := range f.Derived.Sub {
				tr := resolve(t, depth+1)
				r.vol -= tr.vol
				r.cov = min(r.cov, tr.cov)
			}
		}
		done[id] = r
		return r
	}
	out := make([]FlowVolume, 0, len(s.Flows))
	for _, f := range s.Flows {
		r := resolve(f.ID, 0)
		out = append(out, FlowVolume{
			ID: f.ID, From: f.From, To: f.To, Kind: f.Kind, Meter: f.Meter,
			Volume: r.vol, Coverage: r.cov, Derived: f.Derived != nil,
		})
	}
	return out
}

// NodeBalance is the balance of one unit node: In − Out − Consumption = Residual. A residual is
// leakage or unmetered use at that node (or a metering error); a negative one means the node
// gives out more than the model says it receives.
type NodeBalance struct {
	Node        string
	Type        analytics.NodeType
	Kind        string
	In          float64 // every inflow
	Out         float64 // every outflow except consumption
	Consumption float64 // outflows of kind consumption (into product, evaporation...)
	Residual    float64
	// Closure is Residual / In, 0 when In is 0.
	Closure float64
	// Inflows and Outflows are the flow ids counted; Outflows includes the consumption flows.
	Inflows, Outflows []string
}

// Nodes balances every unit node of the site, in the model's order. A circulating flow (and any
// flow from a node to itself) leaves and re-enters the same node, so it counts neither in nor out.
func Nodes(s *analytics.Site, flows []FlowVolume) []NodeBalance {
	var out []NodeBalance
	for _, n := range s.Nodes {
		if n.Type != analytics.Unit {
			continue
		}
		nb := NodeBalance{Node: n.ID, Type: n.Type, Kind: n.Kind}
		for _, f := range flows {
			if f.From == f.To || f.Kind == analytics.Circulating {
				continue
			}
			if f.To == n.ID {
				nb.In += f.Volume
				nb.Inflows = append(nb.Inflows, f.ID)
			}
			if f.From == n.ID {
				if f.Kind == analytics.Consumption {
					nb.Consumption += f.Volume
				} else {
					nb.Out += f.Volume
				}
				nb.Outflows = append(nb.Outflows, f.ID)
			}
		}
		nb.Residual = nb.In - nb.Out - nb.Consumption
		if nb.In != 0 {
			nb.Closure = nb.Residual / nb.In
		}
		out = append(out, nb)
	}
	return out
}

// Imbalance statuses.
const (
	StatusOK         = "ok"
	StatusWarn       = "warn"
	StatusAlarm      = "alarm"
	StatusMeterFault = "meter_fault" // the children read more than the parent beyond the noise
	StatusNoData     = "no_data"     // the parent or a child has no volume for the period
)

// Imbalance compares a parent meter with the sum of its child meters:
// ε = (Q_parent − Σ Q_children) / Q_parent.
type Imbalance struct {
	Parent         string
	Level          int // the parent meter's level
	ParentVolume   float64
	ChildrenVolume float64
	// Epsilon is ε; −1 when the children read flow and the parent none (a meter fault whatever
	// the size), 0 when no data or no flow.
	Epsilon  float64
	Status   string
	Children []string
}

// ParentChildren computes ε for every meter that has children in the register, in the register's
// order. ε above alarm is an alarm and above warn a warning (a leak or unmetered use between the
// parent and its children); ε below −warn is a meter fault, since children cannot carry more
// water than their parent; anything in between is the noise of class-2 meters. A parent and
// children that all read zero are ok.
func ParentChildren(s *analytics.Site, meterVolumes map[string]float64, warn, alarm float64) []Imbalance {
	var out []Imbalance
	for _, p := range s.Meters {
		var children []string
		for _, m := range s.Meters {
			if m.Parent == p.ID {
				children = append(children, m.ID)
			}
		}
		if len(children) == 0 {
			continue
		}
		im := Imbalance{Parent: p.ID, Level: p.Level, Children: children}
		qp, ok := meterVolumes[p.ID]
		im.ParentVolume = qp
		for _, c := range children {
			qc, okc := meterVolumes[c]
			ok = ok && okc
			im.ChildrenVolume += qc
		}
		switch {
		case !ok:
			im.Status = StatusNoData
		case qp <= 0 && im.ChildrenVolume <= 0:
			im.Status = StatusOK
		case qp <= 0:
			im.Epsilon = -1
			im.Status = StatusMeterFault
		default:
			im.Epsilon = (qp - im.ChildrenVolume) / qp
			switch {
			case im.Epsilon > alarm:
				im.Status = StatusAlarm
			case im.Epsilon > warn:
				im.Status = StatusWarn
			case im.Epsilon < -warn:
				im.Status = StatusMeterFault
			default:
				im.Status = StatusOK
			}
		}
		out = append(out, im)
	}
	return out
}

// TierBalance is the water of one quality tier (梯级): the units whose tier is Tier, taken
// together, so flows between units of the same tier cancel.
type TierBalance struct {
	Tier  int
	Units []string
	// Supplied is the water entering the tier from sources and distribution nodes: first use.
	Supplied float64
	// CascadeIn is the water entering from any other unit: water already used once (another
	// tier's effluent, treated wastewater, condensate).
	CascadeIn float64
	// CascadeOut is the water passed on to other units for further use or treatment, outfall
	// units excepted.
	CascadeOut float64
	// Consumption goes to consumption sinks; Discharge to discharge sinks or outfall units;
	// ToOthers to third parties (supplied sinks).
	Consumption, Discharge, ToOthers float64
	// Residual is Supplied + CascadeIn − CascadeOut − Consumption − Discharge − ToOthers.
	Residual float64
}

// Tiers balances the cascade use of water by quality tier, in ascending tier order. Units with no
// tier (tier 0) belong to none; flows between them do not appear.
func Tiers(s *analytics.Site, flows []FlowVolume) []TierBalance {
	nodes := make(map[string]analytics.Node, len(s.Nodes))
	tierOf := map[string]int{}
	byTier := map[int]*TierBalance{}
	for _, n := range s.Nodes {
		nodes[n.ID] = n
		if n.Type != analytics.Unit || n.Tier <= 0 {
			continue
		}
		tierOf[n.ID] = n.Tier
		tb := byTier[n.Tier]
		if tb == nil {
			tb = &TierBalance{Tier: n.Tier}
			byTier[n.Tier] = tb
		}
		tb.Units = append(tb.Units, n.ID)
	}
	for _, f := range flows {
		if f.From == f.To || f.Kind == analytics.Circulating {
			continue
		}
		ft, tt := tierOf[f.From], tierOf[f.To]
		if ft == tt {
			continue // inside one tier, or between untiered nodes
		}
		if tb := byTier[tt]; tb != nil {
			from := nodes[f.From]
			if from.Type == analytics.Source || from.Kind == "distribution" {
				tb.Supplied += f.Volume
			} else {
				tb.CascadeIn += f.Volume
			}
		}
		if tb := byTier[ft]; tb != nil {
			to := nodes[f.To]
			switch {
			case to.Type == analytics.Sink && to.Kind == string(analytics.Consumption):
				tb.Consumption += f.Volume
			case to.Type == analytics.Sink && to.Kind == string(analytics.Supplied):
				tb.ToOthers += f.Volume
			case to.Type == analytics.Sink, to.Kind == "outfall":
				tb.Discharge += f.Volume
			default:
				tb.CascadeOut += f.Volume
			}
		}
	}
	tiers := make([]int, 0, len(byTier))
	for t := range byTier {
		tiers = append(tiers, t)
	}
	slices.Sort(tiers)
	out := make([]TierBalance, 0, len(tiers))
	for _, t := range tiers {
		tb := byTier[t]
		tb.Residual = tb.Supplied + tb.CascadeIn - tb.CascadeOut - tb.Consumption - tb.Discharge - tb.ToOthers
		out = append(out, *tb)
	}
	return out
}

// SiteBalance is the whole-site balance Vi + Vu = Vco + Vd + Vl + V外供, where circulating and
// internal cascade flows cancel, and the closure check of a water balance test.
type SiteBalance struct {
	Vi, Vu, Vco, Vd, VSupplied float64
	// Vl = Vi + Vu − Vco − Vd − VSupplied: leakage and unaccounted water.
	Vl float64
	// LeakageRate is Kl = Vl / Vi; nil when Vi is 0.
	LeakageRate *float64
	// UnitIntakes, TotalIntake and ClosureError are the GB/T 12452 closure check; see Site.
	UnitIntakes, TotalIntake, ClosureError float64
	ClosureThreshold                       float64
	ClosureOK                              bool
}

// Site computes the whole-site balance and the GB/T 12452 closure check with the given threshold
// (0.10, or 0.05 under some local rules).
//
// The closure check compares two measured figures over the same period:
//   - TotalIntake is the sum of flows that leave a source node (conventional or non-conventional)
//     through a level-1 meter: the water taken in at the site boundary.
//   - UnitIntakes is the sum of metered flows that enter a unit which is not a distribution node,
//     coming either from a source directly or from a distribution node: the water received by the
//     first-level users. Derived flows are left out, because they are computed from the balance
//     they would be checked against.
//
// ClosureError = |UnitIntakes − TotalIntake| / TotalIntake, and the check passes when it is at most
// the threshold. With no measured intake (TotalIntake 0) the error is 0 and the check fails: an
// empty period proves nothing.
func Site(s *analytics.Site, flows []FlowVolume, threshold float64) SiteBalance {
	b := SiteBalance{ClosureThreshold: threshold}
	nodes := make(map[string]analytics.Node, len(s.Nodes))
	for _, n := range s.Nodes {
		nodes[n.ID] = n
	}
	for _, f := range flows {
		switch f.Kind {
		case analytics.Intake:
			b.Vi += f.Volume
		case analytics.NonConventional:
			b.Vu += f.Volume
		case analytics.Consumption:
			b.Vco += f.Volume
		case analytics.Discharge:
			b.Vd += f.Volume
		case analytics.Supplied:
			b.VSupplied += f.Volume
		}
		if f.Meter == "" {
			continue
		}
		from, to := nodes[f.From], nodes[f.To]
		if m, ok := s.Meter(f.Meter); ok && m.Level == 1 && from.Type == analytics.Source {
			b.TotalIntake += f.Volume
		}
		if to.Type == analytics.Unit && to.Kind != "distribution" &&
			(from.Type == analytics.Source || from.Kind == "distribution") {
			b.UnitIntakes += f.Volume
		}
	}
	b.Vl = kpi.LeakageBalance(b.Vi, b.Vu, b.Vco, b.Vd, b.VSupplied)
	if kl, ok := kpi.LeakageRate(b.Vl, b.Vi); ok {
		b.LeakageRate = &kl
	}
	if b.TotalIntake > 0 {
		d := b.UnitIntakes - b.TotalIntake
		if d < 0 {
			d = -d
		}
		b.ClosureError = d / b.TotalIntake
		b.ClosureOK = b.ClosureError <= threshold
	}
	return b
}
