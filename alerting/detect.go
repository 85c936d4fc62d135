package alerting

import (
	"encoding/json"
	"math"
	"time"

	"github.com/aqualoop/aqualoop/analytics/kpi"
)

// NightFlow is the minimum night flow of one day (DOMAIN.md): the daily minimum of the rolling
// 1-hour mean of 96 quarter-hour mean flows. A missing quarter is NaN; with fewer than 92
// quarters the day's MNF is undefined (ok false), never zero. A window with a missing quarter
// is skipped.
func NightFlow(quarters []float64) (mnf float64, ok bool) {
	n := 0
	for _, q := range quarters {
		if !math.IsNaN(q) {
			n++
		}
	}
	if len(quarters) != 96 || n < 92 {
		return 0, false
	}
	mnf = math.Inf(1)
	for i := 0; i+4 <= len(quarters); i++ {
		w := quarters[i : i+4]
		if math.IsNaN(w[0]) || math.IsNaN(w[1]) || math.IsNaN(w[2]) || math.IsNaN(w[3]) {
			continue
		}
		mnf = min(mnf, (w[0]+w[1]+w[2]+w[3])/4)
	}
	return mnf, !math.IsInf(mnf, 1)
}

// detector feeds one hourly series to CUSUM or EWMA (kpi's), learning μ₀ and σ from its first
// closed hours when the rule does not give them. A value counts once its hour is closed: the
// figure of an hour is the last one the snapshots showed for it.
type detector struct {
	kind     string
	rule     *Rule
	baseline []float64
	cusum    *kpi.CUSUM
	ewma     *kpi.EWMA
	sigma    float64

	hour    time.Time // hour of the pending value
	pending float64
	has     bool
	stat    float64 // S⁺ or z
	active  bool
	hold    bool
	last    float64
	fed     int // closed hours fed so far, so the caller knows when to store the state
}

func newDetector(r *Rule) *detector {
	d := &detector{kind: r.Kind, rule: r}
	if r.Mu0 != nil && r.Sigma != nil {
		d.start(*r.Mu0, *r.Sigma)
	}
	return d
}

func (d *detector) start(mu0, sigma float64) {
	d.sigma = sigma
	if d.kind == KindCUSUM {
		d.cusum = &kpi.CUSUM{Mu0: mu0, K: d.rule.K * sigma, H: d.rule.H * sigma}
		return
	}
	d.ewma = &kpi.EWMA{Mu0: mu0, Sigma: sigma, Lambda: d.rule.Lambda, L: d.rule.L}
}

// observe takes the current figure of the hour starting at hour; when a later hour begins, the
// pending one is closed and fed.
func (d *detector) observe(hour time.Time, v float64) {
	if d.has && hour.After(d.hour) {
		d.feed(d.pending)
	}
	if !d.has || !hour.Before(d.hour) {
		d.hour, d.pending, d.has = hour, v, true
	}
}

// feed adds one closed value.
func (d *detector) feed(x float64) {
	d.last = x
	d.fed++
	if d.cusum == nil && d.ewma == nil {
		d.baseline = append(d.baseline, x)
		if len(d.baseline) >= d.rule.Baseline {
			mu, sd := meanSD(d.baseline)
			if sd < 1e-9 {
				sd = max(1e-3, 0.01*math.Abs(mu))
			}
			mu0, sigma := mu, sd
			if d.rule.Mu0 != nil {
				mu0 = *d.rule.Mu0
			}
			if d.rule.Sigma != nil {
				sigma = *d.rule.Sigma
			}
			d.start(mu0, sigma)
			d.baseline = nil
		}
		return
	}
	if d.cusum != nil {
		s, alarm := d.cusum.Update(x)
		d.stat, d.active, d.hold = s, alarm, s > d.cusum.H/2
		return
	}
	z, _ := d.ewma.Update(x)
	_, hi := d.ewma.Limits()
	d.stat = z
	d.active = z > hi
	d.hold = z > d.ewma.Mu0+0.8*(hi-d.ewma.Mu0)
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	if len(xs) > 1 {
		sd = math.Sqrt(sd / float64(len(xs)-1))
	}
	return mean, sd
}

// detectorState is what a restart needs to continue a detector: its learned baseline or
// running statistic (kpi's types are their whole state), and its open hour.
type detectorState struct {
	Baseline []float64  `json:"baseline,omitempty"`
	CUSUM    *kpi.CUSUM `json:"cusum,omitempty"`
	EWMA     *kpi.EWMA  `json:"ewma,omitempty"`
	Sigma    float64    `json:"sigma"`
	Hour     time.Time  `json:"hour"`
	Pending  float64    `json:"pending"`
	Has      bool       `json:"has"`
	Stat     float64    `json:"stat"`
	Active   bool       `json:"active"`
	Hold     bool       `json:"hold"`
	Last     float64    `json:"last"`
	Fed      int        `json:"fed"`
}

func (d *detector) marshal() string {
	b, _ := json.Marshal(detectorState{Baseline: d.baseline, CUSUM: d.cusum, EWMA: d.ewma, Sigma: d.sigma, Hour: d.hour,
		Pending: d.pending, Has: d.has, Stat: d.stat, Active: d.active, Hold: d.hold, Last: d.last, Fed: d.fed})
	return string(b)
}

// restore loads a stored state; a state that does not fit the rule (its kind changed) is ignored.
func (d *detector) restore(s string) {
	var st detectorState
	if json.Unmarshal([]byte(s), &st) != nil || d.kind == KindCUSUM && st.EWMA != nil || d.kind == KindEWMA && st.CUSUM != nil {
		return
	}
	d.baseline, d.cusum, d.ewma, d.sigma, d.hour = st.Baseline, st.CUSUM, st.EWMA, st.Sigma, st.Hour
	d.pending, d.has, d.stat, d.active, d.hold, d.last, d.fed = st.Pending, st.Has, st.Stat, st.Active, st.Hold, st.Last, st.Fed
}

// burstState remembers the level a meter stepped up from.
type burstState struct {
	fired bool
	base  float64
	since time.Time
}
