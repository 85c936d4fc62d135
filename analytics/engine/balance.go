package engine

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/balance"
)

// Balance is the water balance of one site over one period: the network as a graph (every node
// with its in- and outflow and residual, every flow with its volume), the parent/children
// imbalances of the meter register, the cascade tiers and the whole-site balance with the
// GB/T 12452 closure check.
type Balance struct {
	Site  string    `json:"site"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Nodes []Node    `json:"nodes"`
	// Flows are every flow of the model with its volume, kind, meter and coverage.
	Flows []FlowVolume `json:"flows"`
	// Imbalances compares each parent meter with its children, in register order; Levels
	// summarises them per level of the parent.
	Imbalances []Imbalance      `json:"imbalances"`
	Levels     []LevelImbalance `json:"imbalance_levels"`
	Tiers      []Tier           `json:"tiers"`
	Whole      SiteBalance      `json:"site_balance"`
	// Coverage is the mean of the metered flows' coverage.
	Coverage float64 `json:"coverage"`
}

// Node is one node of the balance graph. For a unit, In − Out − Consumption = Residual (leakage
// or unmetered use); a source only gives out and a sink only takes in.
type Node struct {
	ID          string             `json:"id"`
	Name        string             `json:"name,omitempty"`
	Type        analytics.NodeType `json:"type"`
	Kind        string             `json:"kind"`
	Tier        int                `json:"tier,omitempty"`
	In          float64            `json:"in"`
	Out         float64            `json:"out"`
	Consumption float64            `json:"consumption"`
	Residual    float64            `json:"residual"`
	// Closure is Residual / In; null for sources and sinks, and for a unit without inflow.
	Closure  *float64 `json:"closure"`
	Inflows  []string `json:"inflows"`
	Outflows []string `json:"outflows"`
}

// Imbalance is ε = (Q_parent − Σ Q_children) / Q_parent of one parent meter.
type Imbalance struct {
	Parent         string   `json:"parent"`
	Level          int      `json:"level"`
	ParentVolume   float64  `json:"parent_volume"`
	ChildrenVolume float64  `json:"children_volume"`
	Epsilon        float64  `json:"epsilon"`
	Status         string   `json:"status"` // ok, warn, alarm, meter_fault, no_data
	Children       []string `json:"children"`
}

// LevelImbalance summarises the imbalances of the parents at one level: the worst status and the
// largest |ε|.
type LevelImbalance struct {
	Level   int     `json:"level"`
	Parents int     `json:"parents"`
	Worst   string  `json:"worst_status"`
	MaxAbs  float64 `json:"max_abs_epsilon"`
	Warn    float64 `json:"warn"`
	Alarm   float64 `json:"alarm"`
	Counted int     `json:"with_data"`
}

// Tier is the cascade use of one water-quality tier.
type Tier struct {
	Tier        int      `json:"tier"`
	Units       []string `json:"units"`
	Supplied    float64  `json:"supplied"`
	CascadeIn   float64  `json:"cascade_in"`
	CascadeOut  float64  `json:"cascade_out"`
	Consumption float64  `json:"consumption"`
	Discharge   float64  `json:"discharge"`
	ToOthers    float64  `json:"to_others"`
	Residual    float64  `json:"residual"`
}

// SiteBalance is Vi + Vu = Vco + Vd + Vl + V外供 and the GB/T 12452 closure check: the sum of
// the measured unit intakes within the threshold of the measured total intake.
type SiteBalance struct {
	Vi               float64  `json:"vi"`
	Vu               float64  `json:"vu"`
	Vco              float64  `json:"vco"`
	Vd               float64  `json:"vd"`
	VSupplied        float64  `json:"v_supplied"`
	Vl               float64  `json:"vl"`
	LeakageRate      *float64 `json:"leakage_rate"`
	UnitIntakes      float64  `json:"unit_intakes"`
	TotalIntake      float64  `json:"total_intake"`
	ClosureError     float64  `json:"closure_error"`
	ClosureThreshold float64  `json:"closure_threshold"`
	ClosureOK        bool     `json:"closure_ok"`
}

// severity orders the imbalance statuses for "worst".
var severity = map[string]int{
	balance.StatusOK: 0, balance.StatusNoData: 1, balance.StatusWarn: 2, balance.StatusMeterFault: 3, balance.StatusAlarm: 4,
}

// balanceFlows turns resolved flows into the balance package's input.
func balanceFlows(flows []FlowVolume) []balance.FlowVolume {
	out := make([]balance.FlowVolume, len(flows))
	for i, f := range flows {
		out[i] = balance.FlowVolume{ID: f.ID, From: f.From, To: f.To, Kind: f.Kind, Meter: f.Meter,
			Volume: f.Volume, Coverage: f.Coverage, Derived: f.Derived}
	}
	return out
}

// ComputeBalance is the pure core of Balance: the site model and the period's ledger totals in,
// balances out.
func ComputeBalance(s *analytics.Site, totals []MeterTotal, from, to time.Time) Balance {
	flows := ResolveFlows(s, totals, periodMinutes(from, to))
	bf := balanceFlows(flows)
	out := Balance{Site: s.ID, From: from, To: to, Flows: flows, Coverage: meanCoverage(flows)}

	units := map[string]balance.NodeBalance{}
	for _, nb := range balance.Nodes(s, bf) {
		units[nb.Node] = nb
	}
	for _, n := range s.Nodes {
		gn := Node{ID: n.ID, Name: n.Name, Type: n.Type, Kind: n.Kind, Tier: n.Tier, Inflows: []string{}, Outflows: []string{}}
		if nb, ok := units[n.ID]; ok {
			gn.In, gn.Out, gn.Consumption, gn.Residual = nb.In, nb.Out, nb.Consumption, nb.Residual
			gn.Inflows, gn.Outflows = append(gn.Inflows, nb.Inflows...), append(gn.Outflows, nb.Outflows...)
			if nb.In != 0 {
				c := nb.Closure
				gn.Closure = &c
			}
		} else {
			for _, f := range flows {
				if f.To == n.ID {
					gn.In += f.Volume
					gn.Inflows = append(gn.Inflows, f.ID)
				}
				if f.From == n.ID {
					gn.Out += f.Volume
					gn.Outflows = append(gn.Outflows, f.ID)
				}
			}
		}
		out.Nodes = append(out.Nodes, gn)
	}

	meterVolumes := map[string]float64{}
	for _, t := range totals {
		if t.Buckets > 0 {
			meterVolumes[t.Meter] = t.Volume
		}
	}
	warn, alarm := s.Balance.ImbalanceWarn, s.Balance.ImbalanceAlarm
	out.Imbalances = []Imbalance{}
	levels := map[int]*LevelImbalance{}
	for _, im := range balance.ParentChildren(s, meterVolumes, warn, alarm) {
		out.Imbalances = append(out.Imbalances, Imbalance{Parent: im.Parent, Level: im.Level, ParentVolume: im.ParentVolume,
			ChildrenVolume: im.ChildrenVolume, Epsilon: im.Epsilon, Status: im.Status, Children: im.Children})
		l := levels[im.Level]
		if l == nil {
			l = &LevelImbalance{Level: im.Level, Worst: balance.StatusOK, Warn: warn, Alarm: alarm}
			levels[im.Level] = l
		}
		l.Parents++
		if severity[im.Status] > severity[l.Worst] {
			l.Worst = im.Status
		}
		if im.Status != balance.StatusNoData {
			l.Counted++
			l.MaxAbs = max(l.MaxAbs, math.Abs(im.Epsilon))
		}
	}
	out.Levels = []LevelImbalance{}
	for _, l := range levels {
		out.Levels = append(out.Levels, *l)
	}
	slices.SortFunc(out.Levels, func(a, b LevelImbalance) int { return cmp.Compare(a.Level, b.Level) })

	out.Tiers = []Tier{}
	for _, tb := range balance.Tiers(s, bf) {
		out.Tiers = append(out.Tiers, Tier{Tier: tb.Tier, Units: tb.Units, Supplied: tb.Supplied, CascadeIn: tb.CascadeIn,
			CascadeOut: tb.CascadeOut, Consumption: tb.Consumption, Discharge: tb.Discharge, ToOthers: tb.ToOthers, Residual: tb.Residual})
	}

	sb := balance.Site(s, bf, s.Balance.ClosureThreshold)
	out.Whole = SiteBalance{Vi: sb.Vi, Vu: sb.Vu, Vco: sb.Vco, Vd: sb.Vd, VSupplied: sb.VSupplied, Vl: sb.Vl,
		LeakageRate: sb.LeakageRate, UnitIntakes: sb.UnitIntakes, TotalIntake: sb.TotalIntake,
		ClosureError: sb.ClosureError, ClosureThreshold: sb.ClosureThreshold, ClosureOK: sb.ClosureOK}
	return out
}
