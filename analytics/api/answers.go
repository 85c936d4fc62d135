package api

import (
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
)

// The answer types below wrap the engine's results with what a reader needs to use them
// without guessing: the site's time zone, the bounds of the period in that zone beside the UTC
// ones, and the unit of every family of numbers. They embed the engine's types, whose JSON
// fields encoding/json lifts into the wrapper, so the engine stays free of presentation and an
// existing client that reads only the engine's fields reads the same answer as before.
// docs/api.md describes every field; a test in cmd/aqualoop keeps it complete.

// Units names the unit of each family of numbers in an answer. Numbers are never rounded:
// rounding is for display.
type Units struct {
	// Volume is the unit of every volume: volumes.*, flows[].volume, metered and total
	// volumes, node and tier flows, plan volumes and projections, indicator terms named v*.
	Volume string `json:"volume"`
	// Rate is the unit of every rate and fraction that is not an indicator (indicators carry
	// their own unit): reuse_rate, metering rate and equipping_rate, epsilon, closure,
	// used_fraction, crossed thresholds.
	Rate string `json:"rate"`
	// Coverage is the unit of every coverage: the fraction of a period with good data.
	Coverage string `json:"coverage"`
	// OutputValue is the unit of output_value (Z) and Steam that of steam (D); the product (Q)
	// is in its own product_unit.
	OutputValue string `json:"output_value"`
	Steam       string `json:"steam"`
}

// answerUnits are the units of every answer: the engine computes in m³, t and 10⁴ CNY, and a
// rate of 0.9 means 90 %.
var answerUnits = Units{Volume: "m³", Rate: "ratio", Coverage: "ratio", OutputValue: "10⁴ CNY", Steam: "t"}

// local formats an instant in the site's zone, with the same precision as the UTC form.
func local(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(time.RFC3339Nano)
}

// zoneName is the IANA name of loc ("Asia/Shanghai").
func zoneName(loc *time.Location) string { return loc.String() }

// Indicators is the answer of the site, unit and park indicator routes and the indicators of a
// snapshot's figures.
type Indicators struct {
	engine.Indicators
	// TimeZone is the site's zone (at a park, its first site's), in which the period's days and
	// months begin.
	TimeZone string `json:"time_zone"`
	// FromLocal and ToLocal are From and To in TimeZone: the same instants.
	FromLocal string `json:"from_local"`
	ToLocal   string `json:"to_local"`
	Units     Units  `json:"units"`
}

func indicatorsOf(ind engine.Indicators, loc *time.Location) Indicators {
	return Indicators{Indicators: ind, TimeZone: zoneName(loc), FromLocal: local(ind.From, loc), ToLocal: local(ind.To, loc), Units: answerUnits}
}

// Balance is the answer of the balance route and the balance of a snapshot's site figures.
type Balance struct {
	engine.Balance
	TimeZone  string `json:"time_zone"`
	FromLocal string `json:"from_local"`
	ToLocal   string `json:"to_local"`
	Units     Units  `json:"units"`
}

func balanceOf(b engine.Balance, loc *time.Location) Balance {
	return Balance{Balance: b, TimeZone: zoneName(loc), FromLocal: local(b.From, loc), ToLocal: local(b.To, loc), Units: answerUnits}
}

// PlanStatus is one element of the plans answer, and of a snapshot's plans.
type PlanStatus struct {
	engine.PlanStatus
	TimeZone  string `json:"time_zone"`
	FromLocal string `json:"from_local"`
	ToLocal   string `json:"to_local"`
	// AtLocal is At, the instant of the burn-down, in TimeZone.
	AtLocal string `json:"at_local"`
	Units   Units  `json:"units"`
}

func plansOf(ps []engine.PlanStatus, loc *time.Location) []PlanStatus {
	out := make([]PlanStatus, len(ps))
	for i, p := range ps {
		out[i] = PlanStatus{PlanStatus: p, TimeZone: zoneName(loc), FromLocal: local(p.From, loc), ToLocal: local(p.To, loc),
			AtLocal: local(p.At, loc), Units: answerUnits}
	}
	return out
}

// Figures are one period of a snapshot. Its Indicators and Balance replace the engine's in the
// JSON (a field of the outer struct wins over the embedded one of the same name).
type Figures struct {
	engine.Figures
	Indicators Indicators `json:"indicators"`
	Balance    *Balance   `json:"balance,omitempty"`
}

func figuresOf(f engine.Figures, loc *time.Location) Figures {
	out := Figures{Figures: f, Indicators: indicatorsOf(f.Indicators, loc)}
	if f.Balance != nil {
		b := balanceOf(*f.Balance, loc)
		out.Balance = &b
	}
	return out
}

// Snapshot is the answer of the snapshot routes: the evaluator's latest figures with each
// period's bounds in the site's zone.
type Snapshot struct {
	engine.Snapshot
	TimeZone string `json:"time_zone"`
	// AtLocal is At, when the evaluator made the snapshot, in TimeZone.
	AtLocal string       `json:"at_local"`
	Hour    Figures      `json:"hour"`
	Day     Figures      `json:"day"`
	Month   Figures      `json:"month"`
	Year    Figures      `json:"year"`
	Plans   []PlanStatus `json:"plans"`
	Units   Units        `json:"units"`
}

func snapshotOf(s engine.Snapshot, loc *time.Location) Snapshot {
	return Snapshot{Snapshot: s, TimeZone: zoneName(loc), AtLocal: local(s.At, loc),
		Hour: figuresOf(s.Hour, loc), Day: figuresOf(s.Day, loc), Month: figuresOf(s.Month, loc), Year: figuresOf(s.Year, loc),
		Plans: plansOf(s.Plans, loc), Units: answerUnits}
}

// Input is one element of the inputs answers: a production input with its period in the site's
// zone.
type Input struct {
	engine.Input
	TimeZone  string `json:"time_zone"`
	FromLocal string `json:"from_local"`
	ToLocal   string `json:"to_local"`
	Units     Units  `json:"units"`
}

func inputsOf(ins []engine.Input, loc *time.Location) []Input {
	out := make([]Input, len(ins))
	for i, in := range ins {
		out[i] = Input{Input: in, TimeZone: zoneName(loc), FromLocal: local(in.From, loc), ToLocal: local(in.To, loc), Units: answerUnits}
	}
	return out
}

// The remaining answers, named for readers of the package and for the test that keeps
// docs/api.md complete.
type (
	// SiteInfo is one element of the sites answer.
	SiteInfo = siteSummary
	// ParkInfo is one element of the parks answer.
	ParkInfo = parkSummary
	// MeterState is one element of the meters answer: a meter's latest reading.
	MeterState = meterState
	// Point is one point of a meter's latest reading.
	Point = point
)
