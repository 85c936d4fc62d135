package sim

import (
	"fmt"
	"strings"
	"time"
)

// Node types of the demo plant, as in the site model (analytics.Site).
const (
	nodeSource = "source"
	nodeUnit   = "unit"
	nodeSink   = "sink"
)

// KindLeak marks the leak flow. It has no counterpart in the site model: a leak is what the
// balances must find, never a declared flow.
const KindLeak = "leak"

// FlowInfo describes one flow of the simulated network.
type FlowInfo struct {
	ID    string `json:"id"`
	From  string `json:"from"`
	To    string `json:"to"`
	Kind  string `json:"kind"`            // the site model's flow kind, or KindLeak
	Meter string `json:"meter,omitempty"` // empty when unmetered
}

type flow struct {
	FlowInfo
	rate lin
}

// nodeTypes is the demo plant's nodes by id.
func nodeTypes() map[string]string {
	return map[string]string{
		"municipal": nodeSource, "well": nodeSource, "reclaimed": nodeSource,
		"dist": nodeUnit, "wellmain": nodeUnit, "ws1": nodeUnit, "ws2": nodeUnit, "boiler": nodeUnit,
		"office": nodeUnit, "reuse": nodeUnit, "cooling": nodeUnit, "outfall": nodeUnit,
		"product": nodeSink, "evaporation": nodeSink, "sewer": nodeSink, "ground": nodeSink,
	}
}

// buildNetwork derives every flow from the parameters. Each unit balances by construction; the
// order follows the water from the intakes to the outfall.
func buildNetwork(c *Config) []flow {
	n, cl := c.Network, c.Cooling
	var (
		one     = lin{basisOne: 1}
		p       = lin{basisProcess: 1}
		pc      = lin{basisCooling: 1}
		po      = lin{basisOffice: 1}
		m04     = p.mul(n.WS1Supply)
		steam   = p.mul(n.Steam)
		m14     = steam.mul(n.CondensateReturn)
		bd      = steam.mul(n.BoilerBlowdown)
		m05     = steam.sub(m14).add(bd)
		m06     = m04.mul(n.Cascade)
		ws1Use  = m04.add(steam).sub(m06).sub(m14)
		off     = po.mul(n.Office)
		leak    = one.mul(*c.Leak)
		m01     = m04.add(m05).add(off).add(leak)
		m07     = p.mul(n.WS2Well)
		ws2In   = m06.add(m07)
		ws2Use  = ws2In.mul(n.WS2Consumption)
		m08     = ws2In.mul(1 - n.WS2Consumption)
		m09     = m08.mul(n.ReuseRecovery)
		m15     = m08.mul(1 - n.ReuseRecovery)
		m12     = pc.mul(cl.Circulating)
		evap    = m12.mul(cl.K * cl.DeltaT)
		m13     = evap.mul(1 / (cl.Cycles - 1))
		makeup  = evap.mul(cl.Cycles / (cl.Cycles - 1))
		m03     = makeup.mul(n.ReclaimedShare)
		m11     = makeup.sub(m09).sub(m03)
		m02     = m07.add(m11)
		m16     = m13.add(m15).add(bd).add(off)
		flowsOf = []flow{
			{FlowInfo{"municipal_intake", "municipal", "dist", "intake", "M01"}, m01},
			{FlowInfo{"well_intake", "well", "wellmain", "intake", "M02"}, m02},
			{FlowInfo{"reclaimed_intake", "reclaimed", "cooling", "non_conventional", "M03"}, m03},
			{FlowInfo{"ws1_supply", "dist", "ws1", "internal", "M04"}, m04},
			{FlowInfo{"boiler_makeup", "dist", "boiler", "internal", "M05"}, m05},
			{FlowInfo{"office_supply", "dist", "office", "internal", "M10"}, off},
			{FlowInfo{"distribution_leak", "dist", "ground", KindLeak, ""}, leak},
			{FlowInfo{"steam", "boiler", "ws1", "internal", ""}, steam},
			{FlowInfo{"condensate_return", "ws1", "boiler", "condensate", "M14"}, m14},
			{FlowInfo{"boiler_blowdown", "boiler", "outfall", "internal", ""}, bd},
			{FlowInfo{"cascade_ws1_ws2", "ws1", "ws2", "cascade", "M06"}, m06},
			{FlowInfo{"ws1_into_product", "ws1", "product", "consumption", ""}, ws1Use},
			{FlowInfo{"office_sewage", "office", "outfall", "internal", ""}, off},
			{FlowInfo{"ws2_well", "wellmain", "ws2", "internal", "M07"}, m07},
			{FlowInfo{"ws2_into_product", "ws2", "product", "consumption", ""}, ws2Use},
			{FlowInfo{"ws2_effluent", "ws2", "reuse", "internal", "M08"}, m08},
			{FlowInfo{"reused_to_cooling", "reuse", "cooling", "wastewater_reuse", "M09"}, m09},
			{FlowInfo{"concentrate", "reuse", "outfall", "internal", "M15"}, m15},
			{FlowInfo{"cooling_well", "wellmain", "cooling", "internal", "M11"}, m11},
			{FlowInfo{"cooling_circulation", "cooling", "cooling", "circulating", "M12"}, m12},
			{FlowInfo{"cooling_evaporation", "cooling", "evaporation", "consumption", ""}, evap},
			{FlowInfo{"cooling_blowdown", "cooling", "outfall", "internal", "M13"}, m13},
			{FlowInfo{"site_discharge", "outfall", "sewer", "discharge", "M16"}, m16},
		}
	)
	return flowsOf
}

// checkNonNegative evaluates every flow over one simulated day from the local midnight before
// start, at one-minute steps, and names each flow that would run backwards.
func checkNonNegative(flows []flow, pr *profiles, start time.Time) error {
	l := start.In(pr.loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, pr.loc)
	var bad []string
	for _, f := range flows {
		for i := 0; i <= 24*60; i++ {
			t := day.Add(time.Duration(i) * time.Minute)
			if r := f.rate.dot(pr.at(t)); r < -1e-9 {
				name := f.ID
				if f.Meter != "" {
					name += " (" + f.Meter + ")"
				}
				bad = append(bad, fmt.Sprintf("%s (%.3f m³/h at %s)", name, r, t.Format("15:04")))
				break
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("these flows would be negative, the parameters do not give a feasible network: %s", strings.Join(bad, ", "))
	}
	return nil
}
