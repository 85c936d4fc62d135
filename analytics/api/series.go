package api

// Read endpoints for the operators' console (analytics/console):
//
//	GET /api/v1/sites/{site}/model                  the site model as the console draws it: time zone,
//	                                                names, flows, meter register with verification due
//	                                                dates, benchmark and targets
//	GET /api/v1/sites/{site}/series?step=hour|day|month&from&to
//	                                                R, intake, reuse, discharge and leakage per step and
//	                                                every meter's volume and mean flow per step
//
// The series is computed through Engine.Indicators step by step, so it is the same figure the
// indicators endpoint gives for that step, on SQLite and InfluxDB alike.

import (
	"fmt"
	"net/http"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
)

// maxSteps bounds one series answer: 400 hours is about 16 days, 400 days over a year.
const maxSteps = 400

// routeConsole mounts the console's read endpoints on mux.
func (h *handler) routeConsole(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/sites/{site}/model", h.siteRoute(h.model))
	mux.HandleFunc("GET /api/v1/sites/{site}/series", h.siteRoute(h.series))
}

type modelNode struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	Kind string `json:"kind"`
	Tier int    `json:"tier,omitempty"`
}

type modelFlow struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	To      string `json:"to"`
	Kind    string `json:"kind"`
	Meter   string `json:"meter,omitempty"`
	Derived bool   `json:"derived,omitempty"`
}

type modelMeter struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Level    int    `json:"level"`
	Parent   string `json:"parent,omitempty"`
	DN       int    `json:"dn,omitempty"`
	Class    int    `json:"class,omitempty"`
	Type     string `json:"type,omitempty"`
	Location string `json:"location,omitempty"`
	Flow     string `json:"flow,omitempty"`
	// IntervalSeconds is the meter's reporting interval (0 when the register gives none); a
	// reading older than three of them is stale (DOMAIN.md).
	IntervalSeconds float64 `json:"interval_seconds"`
	VerifiedOn      string  `json:"verified_on,omitempty"`
	Certificate     string  `json:"certificate,omitempty"`
	// VerificationDue is the next verification or replacement date (YYYY-MM-DD), from the
	// register or from the JJG 162 intervals; empty when the meter has no verification record.
	VerificationDue string `json:"verification_due,omitempty"`
}

type modelAnswer struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Park     string `json:"park,omitempty"`
	Timezone string `json:"timezone"`
	// Now is the platform's clock in the site's zone.
	Now       string          `json:"now"`
	Nodes     []modelNode     `json:"nodes"`
	Flows     []modelFlow     `json:"flows"`
	Meters    []modelMeter    `json:"meters"`
	Benchmark *modelBenchmark `json:"benchmark,omitempty"`
	Declared  string          `json:"declared_reuse_rate"`
	Balance   modelBalance    `json:"balance"`
	Plans     int             `json:"plans"`
}

// modelBenchmark is the sector benchmark of the site file, with its source.
type modelBenchmark struct {
	Sector    string  `json:"sector"`
	Year      int     `json:"year"`
	ReuseRate float64 `json:"reuse_rate"`
	Source    string  `json:"source"`
}

// modelBalance is the balance thresholds the console colours residuals and closure with.
type modelBalance struct {
	ClosureThreshold float64 `json:"closure_threshold"`
	ImbalanceWarn    float64 `json:"imbalance_warn"`
	ImbalanceAlarm   float64 `json:"imbalance_alarm"`
}

func (h *handler) model(w http.ResponseWriter, _ *http.Request, s *analytics.Site) {
	loc := s.Location()
	out := modelAnswer{ID: s.ID, Name: s.Name, Park: s.Park, Timezone: loc.String(), Now: h.o.Now().In(loc).Format(time.RFC3339),
		Nodes: []modelNode{}, Flows: []modelFlow{}, Meters: []modelMeter{},
		Declared: s.Indicators.DeclaredReuseRate, Plans: len(s.Plans),
		Balance: modelBalance{ClosureThreshold: s.Balance.ClosureThreshold, ImbalanceWarn: s.Balance.ImbalanceWarn, ImbalanceAlarm: s.Balance.ImbalanceAlarm}}
	if b := s.Indicators.Benchmark; b != nil {
		out.Benchmark = &modelBenchmark{Sector: b.Sector, Year: b.Year, ReuseRate: b.ReuseRate, Source: b.Source}
	}
	if out.Name == "" {
		out.Name = s.ID
	}
	for _, n := range s.Nodes {
		out.Nodes = append(out.Nodes, modelNode{ID: n.ID, Name: n.Name, Type: string(n.Type), Kind: n.Kind, Tier: n.Tier})
	}
	for _, f := range s.Flows {
		out.Flows = append(out.Flows, modelFlow{ID: f.ID, From: f.From, To: f.To, Kind: string(f.Kind), Meter: f.Meter, Derived: f.Derived != nil})
	}
	for _, m := range s.Meters {
		mm := modelMeter{ID: m.ID, Name: m.Name, Level: m.Level, Parent: m.Parent, DN: m.DN, Class: m.Class, Type: m.Type,
			Location: m.Location, IntervalSeconds: m.Interval.Seconds(), VerifiedOn: m.VerifiedOn, Certificate: m.Certificate}
		if f, ok := s.FlowOfMeter(m.ID); ok {
			mm.Flow = f.ID
		}
		if due := s.NextVerification(m); !due.IsZero() {
			mm.VerificationDue = due.Format(time.DateOnly)
		}
		out.Meters = append(out.Meters, mm)
	}
	writeJSON(w, http.StatusOK, out)
}

// seriesStep is the figures of one step.
type seriesStep struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	ReuseRate *float64  `json:"reuse_rate"` // the declared variant
	Vi        float64   `json:"vi"`
	Vr        float64   `json:"vr"`
	Vd        float64   `json:"vd"`
	Vl        float64   `json:"vl"`
	Coverage  float64   `json:"coverage"`
	// Meters is each metered flow's volume (m³), mean flow (m³/h) and coverage over the step,
	// by meter id.
	Meters map[string]meterStep `json:"meters"`
}

type meterStep struct {
	Volume   float64 `json:"volume"`
	Flow     float64 `json:"flow"`
	Coverage float64 `json:"coverage"`
}

type seriesAnswer struct {
	Site     string       `json:"site"`
	Step     string       `json:"step"`
	Timezone string       `json:"timezone"`
	From     time.Time    `json:"from"`
	To       time.Time    `json:"to"`
	Steps    []seriesStep `json:"steps"`
}

// series answers the figures of every step (hour, day or month in the site's zone) that
// overlaps [from, to); the default is today by hour, this month by day or this year by month.
// The last step ends at now when it has not ended.
func (h *handler) series(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	q := r.URL.Query()
	loc := s.Location()
	stepName := q.Get("step")
	if stepName == "" {
		stepName = string(engine.Hour)
	}
	step, err := engine.ParsePeriod(stepName)
	if err != nil || step == engine.Year {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("step %q is not one of hour, day, month", stepName))
		return
	}
	now := h.o.Now()
	// The default span is the period one size up that holds now.
	up := map[engine.Period]engine.Period{engine.Hour: engine.Day, engine.Day: engine.Month, engine.Month: engine.Year}[step]
	from, to := up.Span(now, loc)
	if v := q.Get("from"); v != "" {
		if from, err = engine.ParseTime(v, loc); err != nil {
			writeError(w, http.StatusBadRequest, "from: "+err.Error())
			return
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = engine.ParseTime(v, loc); err != nil {
			writeError(w, http.StatusBadRequest, "to: "+err.Error())
			return
		}
	}
	if !to.After(from) {
		writeError(w, http.StatusBadRequest, "to must be after from")
		return
	}
	if to.After(now) {
		to = now
	}
	out := seriesAnswer{Site: s.ID, Step: string(step), Timezone: loc.String(), From: from, To: to, Steps: []seriesStep{}}
	start, _ := step.Span(from, loc)
	var spans [][2]time.Time
	for t := start; t.Before(to); {
		_, end := step.Span(t, loc)
		spans = append(spans, [2]time.Time{t, end})
		if len(spans) > maxSteps {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("more than %d %s steps: ask for a shorter span or a longer step", maxSteps, step))
			return
		}
		t = end
	}
	for _, sp := range spans {
		// The first and last steps are cut to [from, to): the answer covers what was asked.
		a, b := sp[0], sp[1]
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if !b.After(a) {
			continue
		}
		ind, err := h.o.Engine.Indicators(r.Context(), s.ID, a, b)
		if err != nil {
			h.answer(w, "series", nil, err)
			return
		}
		st := seriesStep{From: ind.From.In(loc), To: ind.To.In(loc), ReuseRate: ind.ReuseRate, Vi: ind.Volumes.Vi, Vr: ind.Volumes.Vr,
			Vd: ind.Volumes.Vd, Vl: ind.Volumes.Vl, Coverage: ind.Coverage, Meters: map[string]meterStep{}}
		if ind.Declared == "reuse_rate_with_vu" {
			st.ReuseRate = ind.ReuseRateWithVu
		}
		hours := ind.To.Sub(ind.From).Hours()
		for _, f := range ind.Flows {
			if f.Meter == "" {
				continue
			}
			ms := meterStep{Volume: f.Volume, Coverage: f.Coverage}
			if hours > 0 {
				ms.Flow = f.Volume / hours
			}
			st.Meters[f.Meter] = ms
		}
		out.Steps = append(out.Steps, st)
	}
	writeJSON(w, http.StatusOK, out)
}
