package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

type seriesJSON struct {
	Step     string `json:"step"`
	Timezone string `json:"timezone"`
	Steps    []struct {
		From      time.Time `json:"from"`
		To        time.Time `json:"to"`
		ReuseRate *float64  `json:"reuse_rate"`
		Vi        float64   `json:"vi"`
		Vr        float64   `json:"vr"`
		Vd        float64   `json:"vd"`
		Coverage  float64   `json:"coverage"`
		Meters    map[string]struct {
			Volume   float64 `json:"volume"`
			Flow     float64 `json:"flow"`
			Coverage float64 `json:"coverage"`
		} `json:"meters"`
	} `json:"steps"`
}

// The fixture's ledger: since 2026-03-02 00:00 (+08:00), each minute 1 m³ in (M1), 9
// circulating (M2) and 0.7 out (M3), up to 10:30.
func TestSeries(t *testing.T) {
	f := start(t, false)
	tests := []struct {
		name      string
		query     string
		steps     int
		firstFrom string
		// vi of each step, in order; the last one ends at now.
		vi []float64
	}{
		{"today by hour by default", "", 11, "2026-03-02T00:00:00+08:00", []float64{60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 30}},
		{"this month by day", "?step=day", 2, "2026-03-01T00:00:00+08:00", []float64{0, 630}},
		{"this year by month", "?step=month", 3, "2026-01-01T00:00:00+08:00", []float64{0, 0, 630}},
		{"a range by hour", "?step=hour&from=2026-03-02T08:00&to=2026-03-02T09:30", 2, "2026-03-02T08:00:00+08:00", []float64{60, 30}},
		{"a range starting inside an hour", "?step=hour&from=2026-03-02T08:45&to=2026-03-02T10:00", 2, "2026-03-02T08:45:00+08:00", []float64{15, 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seriesJSON
			getInto(t, f.url+"/api/v1/sites/s1/series"+tt.query, &s)
			if len(s.Steps) != tt.steps {
				t.Fatalf("%d steps, want %d", len(s.Steps), tt.steps)
			}
			if got := s.Steps[0].From.Format(time.RFC3339); got != tt.firstFrom {
				t.Errorf("first step from %s, want %s", got, tt.firstFrom)
			}
			for i, st := range s.Steps {
				if !near(st.Vi, tt.vi[i]) {
					t.Errorf("step %d (%s): Vi %v, want %v", i, st.From, st.Vi, tt.vi[i])
				}
				if i > 0 && !st.From.Equal(s.Steps[i-1].To) {
					t.Errorf("step %d starts at %s, the one before ends at %s", i, st.From, s.Steps[i-1].To)
				}
				if tt.vi[i] == 0 {
					if st.ReuseRate != nil || st.Coverage != 0 {
						t.Errorf("step %d has no data but R %v, coverage %v", i, st.ReuseRate, st.Coverage)
					}
					continue
				}
				if st.ReuseRate == nil || !near(*st.ReuseRate, 0.9) || !near(st.Vr, 9*tt.vi[i]) {
					t.Errorf("step %d: R %v, Vr %v; want 0.9 and %v", i, st.ReuseRate, st.Vr, 9*tt.vi[i])
				}
				m1 := st.Meters["M1"]
				hours := st.To.Sub(st.From).Hours()
				if !near(m1.Volume, tt.vi[i]) || !near(m1.Flow, tt.vi[i]/hours) || !near(st.Meters["M3"].Volume, 0.7*tt.vi[i]) {
					t.Errorf("step %d: meters %+v; want M1 %v m³ at %v m³/h", i, st.Meters, tt.vi[i], tt.vi[i]/hours)
				}
			}
		})
	}
}

func TestSeriesRefusals(t *testing.T) {
	f := start(t, false)
	for _, tt := range []struct {
		query string
		code  int
		want  string
	}{
		{"?step=year", http.StatusBadRequest, "not one of hour, day, month"},
		{"?step=minute", http.StatusBadRequest, "not one of hour, day, month"},
		{"?step=hour&from=2025-01-01", http.StatusBadRequest, "more than 400 hour steps"},
		{"?from=2026-03-02T10:00&to=2026-03-02T09:00", http.StatusBadRequest, "to must be after from"},
		{"?from=yesterday", http.StatusBadRequest, "from:"},
	} {
		code, body := do(t, http.MethodGet, f.url+"/api/v1/sites/s1/series"+tt.query, "")
		if code != tt.code || !strings.Contains(string(body), tt.want) || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %s, want %d with %q", tt.query, code, body, tt.code, tt.want)
		}
	}
	if code, _ := do(t, http.MethodGet, f.url+"/api/v1/sites/nope/series", ""); code != http.StatusNotFound {
		t.Errorf("unknown site: %d, want 404", code)
	}
}

func TestModel(t *testing.T) {
	f := start(t, false)
	var m struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Park     string `json:"park"`
		Timezone string `json:"timezone"`
		Now      string `json:"now"`
		Nodes    []struct {
			ID string `json:"id"`
		} `json:"nodes"`
		Flows []struct {
			ID    string `json:"id"`
			Meter string `json:"meter"`
		} `json:"flows"`
		Meters []struct {
			ID   string `json:"id"`
			Flow string `json:"flow"`
		} `json:"meters"`
	}
	getInto(t, f.url+"/api/v1/sites/s1/model", &m)
	if m.ID != "s1" || m.Name != "s1" || m.Park != "p" || len(m.Nodes) != 4 || len(m.Flows) != 4 || len(m.Meters) != 3 {
		t.Errorf("model %+v", m)
	}
	loc, err := time.LoadLocation(m.Timezone)
	if err != nil {
		t.Fatalf("timezone %q: %v", m.Timezone, err)
	}
	at, err := time.Parse(time.RFC3339, m.Now)
	if err != nil || !at.Equal(now) {
		t.Errorf("now %q, want %s", m.Now, now)
	}
	if _, off := at.Zone(); func() int { _, o := now.In(loc).Zone(); return o }() != off {
		t.Errorf("now %q is not in the site's zone %s", m.Now, m.Timezone)
	}
	for _, mt := range m.Meters {
		if mt.Flow == "" {
			t.Errorf("meter %+v lacks its flow", mt)
		}
	}
}
