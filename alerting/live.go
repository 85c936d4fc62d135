package alerting

import (
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// Bounds on what is remembered per meter, so no input can grow memory without bound.
const (
	maxEvents  = 512            // flag and bad-quality instants per meter and kind
	keepMinute = 50 * time.Hour // minute volumes of watched meters, behind the newest
)

// meterLive is what the manager knows of one meter from its readings and buckets.
type meterLive struct {
	heard time.Time // last good reading, platform clock
	edge  string
	total float64
	hasTT bool
	// stillFlows are the flows (own or parent's, the larger) of the consecutive readings with
	// Δ = 0 up to now, newest last.
	stillFlows []float64
	flow       float64
	bad        []time.Time // platform clock
	reverse    []time.Time // event time: bucket starts
	spikes     []time.Time
	resets     []time.Time
}

type edgeLive struct {
	online bool
	at     time.Time
}

// liveness is the meter and edge state behind the meter-health rules.
type liveness struct {
	meters map[string]*meterLive // site/meter
	edges  map[string]*edgeLive  // site/edge
}

func newLiveness() *liveness {
	return &liveness{meters: map[string]*meterLive{}, edges: map[string]*edgeLive{}}
}

func (l *liveness) meter(site, meter string) *meterLive {
	k := site + "/" + meter
	ml := l.meters[k]
	if ml == nil {
		ml = &meterLive{}
		l.meters[k] = ml
	}
	return ml
}

// push appends an instant, dropping the oldest beyond maxEvents; unique skips an instant equal
// to the last (a bucket reported again as it fills).
func push(ts []time.Time, t time.Time, unique bool) []time.Time {
	if n := len(ts); unique && n > 0 && ts[n-1].Equal(t) {
		return ts
	}
	ts = append(ts, t)
	if len(ts) > maxEvents {
		ts = slices.Delete(ts, 0, len(ts)-maxEvents)
	}
	return ts
}

// stillWhileFlowing counts the newest consecutive readings with Δ = 0 whose flow was at least
// minFlow.
func (ml *meterLive) stillWhileFlowing(minFlow float64) int {
	n := 0
	for i := len(ml.stillFlows) - 1; i >= 0 && ml.stillFlows[i] >= minFlow; i-- {
		n++
	}
	return n
}

// countIn counts the instants in (to − w, to].
func countIn(ts []time.Time, to time.Time, w time.Duration) int {
	n := 0
	from := to.Add(-w)
	for _, t := range ts {
		if t.After(from) && !t.After(to) {
			n++
		}
	}
	return n
}

func (l *liveness) reading(s *analytics.Site, r collector.Reading, now time.Time) {
	ml := l.meter(r.Site, r.Meter)
	if r.Edge != "" {
		ml.edge = r.Edge
	}
	tp, hasT := r.Point(collector.PointTotal)
	fp, hasF := r.Point(collector.PointFlow)
	bad := false
	for _, p := range r.Points {
		if p.Quality == collector.Bad {
			bad = true
		}
	}
	if bad {
		ml.bad = push(ml.bad, now, false)
	}
	if hasT && tp.Quality == collector.Good || !hasT && hasF && fp.Quality == collector.Good {
		ml.heard = now
	}
	if hasF && fp.Quality == collector.Good {
		ml.flow = fp.Value
	}
	if !hasT || tp.Quality != collector.Good {
		return
	}
	if ml.hasTT && tp.Value == ml.total {
		flowing := 0.0
		if hasF && fp.Quality == collector.Good {
			flowing = fp.Value
		}
		if m, ok := s.Meter(r.Meter); ok && m.Parent != "" {
			if p := l.meters[r.Site+"/"+m.Parent]; p != nil {
				flowing = max(flowing, p.flow)
			}
		}
		ml.stillFlows = append(ml.stillFlows, flowing)
		if len(ml.stillFlows) > 64 {
			ml.stillFlows = slices.Delete(ml.stillFlows, 0, len(ml.stillFlows)-64)
		}
	} else {
		ml.stillFlows = ml.stillFlows[:0]
	}
	ml.total, ml.hasTT = tp.Value, true
}

func (l *liveness) status(site, edge string, online bool, at time.Time) {
	k := site + "/" + edge
	e := l.edges[k]
	if e == nil {
		e = &edgeLive{}
		l.edges[k] = e
	}
	if e.at.After(at) {
		return // an older retained status arriving late
	}
	e.online, e.at = online, at
}

func (l *liveness) bucket(b ledger.Bucket) {
	if b.Flags&(ledger.Clamped|ledger.Fault|ledger.Spike|ledger.Reset) == 0 {
		return
	}
	ml := l.meter(b.Site, b.Meter)
	if b.Flags&(ledger.Clamped|ledger.Fault) != 0 {
		ml.reverse = push(ml.reverse, b.Start, true)
	}
	if b.Flags&ledger.Spike != 0 {
		ml.spikes = push(ml.spikes, b.Start, true)
	}
	if b.Flags&ledger.Reset != 0 {
		ml.resets = push(ml.resets, b.Start, true)
	}
}

// seriesState holds the minute volumes of the meters that burst and night_flow rules watch and
// the state of the stateful detectors.
type seriesState struct {
	watched map[string]bool
	minutes map[string]map[int64]float64 // site/meter → minute start (unix s) → m³
	newest  map[string]int64
	dets    map[string]*detector // site/rule
	bursts  map[string]*burstState
}

func newSeriesState() *seriesState {
	return &seriesState{watched: map[string]bool{}, minutes: map[string]map[int64]float64{}, newest: map[string]int64{},
		dets: map[string]*detector{}, bursts: map[string]*burstState{}}
}

func (s *seriesState) watch(site, meter string) { s.watched[site+"/"+meter] = true }

func (s *seriesState) bucket(b ledger.Bucket) {
	k := b.Site + "/" + b.Meter
	if !s.watched[k] {
		return
	}
	mins := s.minutes[k]
	if mins == nil {
		mins = map[int64]float64{}
		s.minutes[k] = mins
	}
	t := b.Start.Unix()
	mins[t] = b.Volume
	if t > s.newest[k] {
		s.newest[k] = t
		cut := t - int64(keepMinute/time.Second)
		if len(mins) > int(keepMinute/time.Minute)+64 {
			for m := range mins {
				if m < cut {
					delete(mins, m)
				}
			}
		}
	}
}

// rate is the mean flow of a meter over [from, from + w) in m³/h, from its minute volumes; ok is
// false when a minute is missing.
func (s *seriesState) rate(site, meter string, from time.Time, w time.Duration) (float64, bool) {
	mins := s.minutes[site+"/"+meter]
	n := int(w / time.Minute)
	if n <= 0 {
		return 0, false
	}
	sum := 0.0
	for i := range n {
		v, ok := mins[from.Add(time.Duration(i)*time.Minute).Unix()]
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum / w.Hours(), true
}
