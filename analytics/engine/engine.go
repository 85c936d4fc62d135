// Package engine sums the volume ledger over periods and boundaries and computes the indicators
// on a site's water network model. The live API and the evidence reports call the same functions,
// so a figure on the dashboard and the figure in an auditor's report cannot differ.
package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/kpi"
	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// Buckets is what the engine reads from the store.
type Buckets interface {
	Buckets(ctx context.Context, site string, from, to time.Time) ([]ledger.Bucket, error)
}

// Volumes are the GB/T 7119 quantities of one site over one period, in m³.
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
}

// FlowVolume is one flow's share of a period.
type FlowVolume struct {
	ID       string             `json:"id"`
	Kind     analytics.FlowKind `json:"kind"`
	Meter    string             `json:"meter,omitempty"`
	Volume   float64            `json:"volume"`
	Coverage float64            `json:"coverage"` // fraction of the period's minutes with good data
	Flags    string             `json:"flags,omitempty"`
}

// Indicators is the answer for one site and period.
type Indicators struct {
	Site    string    `json:"site"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Volumes Volumes   `json:"volumes"`
	// ReuseRate is Vr / (Vr + Vi), the declared reuse rate; nil when undefined.
	ReuseRate *float64 `json:"reuse_rate"`
	// ReuseRateWithVu is Vr / (Vr + Vi + Vu), the variant with non-conventional water.
	ReuseRateWithVu *float64 `json:"reuse_rate_with_vu"`
	Declared        string   `json:"declared"`
	// Coverage is the mean of the metered flows' coverage.
	Coverage float64      `json:"coverage"`
	Flows    []FlowVolume `json:"flows"`
}

// Engine computes indicators from the ledger.
type Engine struct {
	sites map[string]*analytics.Site
	store Buckets
}

// New returns an engine over the given site models.
func New(sites []*analytics.Site, store Buckets) *Engine {
	m := make(map[string]*analytics.Site, len(sites))
	for _, s := range sites {
		m[s.ID] = s
	}
	return &Engine{sites: m, store: store}
}

// ErrUnknownSite is returned for a site the engine has no model of.
var ErrUnknownSite = fmt.Errorf("unknown site")

// Indicators computes the indicators of site over [from, to), whole minutes.
func (e *Engine) Indicators(ctx context.Context, site string, from, to time.Time) (Indicators, error) {
	s, ok := e.sites[site]
	if !ok {
		return Indicators{}, fmt.Errorf("%w %q", ErrUnknownSite, site)
	}
	from, to = ledger.Align(from), ledger.Align(to)
	bs, err := e.store.Buckets(ctx, site, from, to)
	if err != nil {
		return Indicators{}, fmt.Errorf("read buckets of %s: %w", site, err)
	}
	return Compute(s, bs, from, to), nil
}

// Compute is the pure core of Indicators: the site model and the ledger buckets of the period in,
// indicators out.
func Compute(s *analytics.Site, bs []ledger.Bucket, from, to time.Time) Indicators {
	type acc struct {
		vol, cov float64
		flags    ledger.Flag
	}
	perMeter := map[string]*acc{}
	for _, b := range bs {
		a := perMeter[b.Meter]
		if a == nil {
			a = &acc{}
			perMeter[b.Meter] = a
		}
		a.vol += b.Volume
		a.cov += b.Coverage
		a.flags |= b.Flags
	}
	minutes := to.Sub(from).Minutes()
	flows := make(map[string]float64, len(s.Flows))
	var resolve func(id string, depth int) float64
	resolve = func(id string, depth int) float64 {
		if v, ok := flows[id]; ok {
			return v
		}
		var v float64
		for _, f := range s.Flows {
			if f.ID != id {
				continue
			}
			switch {
			case f.Meter != "":
				if a := perMeter[f.Meter]; a != nil {
					v = a.vol
				}
			case f.Derived != nil && depth < len(s.Flows):
				for _, t := range f.Derived.Add {
					v += resolve(t, depth+1)
				}
				for _, t := range f.Derived.Sub {
					v -= resolve(t, depth+1)
				}
			}
		}
		flows[id] = v
		return v
	}
	out := Indicators{Site: s.ID, From: from, To: to, Declared: "reuse_rate"}
	var covSum float64
	var metered int
	for _, f := range s.Flows {
		fv := FlowVolume{ID: f.ID, Kind: f.Kind, Meter: f.Meter, Volume: resolve(f.ID, 0)}
		if f.Meter != "" {
			if a := perMeter[f.Meter]; a != nil && minutes > 0 {
				fv.Coverage = min(1, a.cov/minutes)
				fv.Flags = a.flags.String()
			}
			covSum += fv.Coverage
			metered++
		}
		out.Flows = append(out.Flows, fv)
		v := &out.Volumes
		switch f.Kind {
		case analytics.Intake:
			v.Vi += fv.Volume
		case analytics.NonConventional:
			v.Vu += fv.Volume
		case analytics.Circulating:
			v.Vcy += fv.Volume
		case analytics.Cascade:
			v.Vs += fv.Volume
		case analytics.WastewaterReuse:
			v.Vw += fv.Volume
		case analytics.Condensate:
			v.Vb += fv.Volume
		case analytics.Discharge:
			v.Vd += fv.Volume
		case analytics.Consumption:
			v.Vco += fv.Volume
		case analytics.Supplied:
			v.VSupplied += fv.Volume
		}
		if f.Kind.Reused() {
			v.Vr += fv.Volume
		}
	}
	out.Volumes.Vt = out.Volumes.Vi + out.Volumes.Vr
	if metered > 0 {
		out.Coverage = covSum / float64(metered)
	}
	if r, ok := kpi.ReuseRate(out.Volumes.Vr, out.Volumes.Vi); ok {
		out.ReuseRate = &r
	}
	if r, ok := kpi.ReuseRateWithVu(out.Volumes.Vr, out.Volumes.Vi, out.Volumes.Vu); ok {
		out.ReuseRateWithVu = &r
	}
	return out
}
