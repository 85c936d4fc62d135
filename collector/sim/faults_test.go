package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func meterByID(t *testing.T, p *Plant, id string) *meter {
	t.Helper()
	for _, m := range p.meters {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("no meter %s", id)
	return nil
}

// A leak at workshop 1 is carried by M04 and M01: the truth, the meters' totalizers and the
// leak figure all gain exactly rate × overlap, and nothing outside the fault's window changes.
func TestLeakFaultIsExact(t *testing.T) {
	c := testConfig(t)
	clean := newPlant(t, c, nil)
	c2 := testConfig(t)
	c2.Faults = []FaultConfig{{Kind: FaultLeak, Node: "ws1", Rate: 2.5, After: time.Hour, For: 2 * time.Hour}}
	p := newPlant(t, c2, nil)
	s := p.Start()
	from, to := s.Add(30*time.Minute), s.Add(4*time.Hour)
	base, got := clean.Truth(from, to), p.Truth(from, to)
	want := 2.5 * 2 // m³ over the two hours of the fault
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"VL", got.VL, base.VL + want},
		{"VI", got.VI, base.VI + want},
		{"M04", got.Meters["M04"], base.Meters["M04"] + want},
		{"M01", got.Meters["M01"], base.Meters["M01"] + want},
		{"M07 (not on the path)", got.Meters["M07"], base.Meters["M07"]},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %.12f, want %.12f", c.name, c.got, c.want)
		}
	}
	if len(got.Faults) != 1 || got.Faults[0].Kind != FaultLeak || strings.Join(got.Faults[0].Flows, ",") != "ws1_supply,municipal_intake" {
		t.Errorf("truth faults = %+v", got.Faults)
	}
	m := meterByID(t, p, "M04")
	if d := p.total(m, to) - p.total(m, from); math.Abs(d-got.Meters["M04"]) > 1e-6 {
		t.Errorf("M04 totalizer moved %.9f, truth %.9f", d, got.Meters["M04"])
	}
	if r, r0 := p.trueRate(m, s.Add(90*time.Minute)), clean.trueRate(meterByID(t, clean, "M04"), s.Add(90*time.Minute)); math.Abs(r-r0-2.5) > 1e-9 {
		t.Errorf("M04 rate during the leak %.6f, clean %.6f", r, r0)
	}
	// Outside the window nothing changes.
	if a, b := p.Truth(s, s.Add(time.Hour)), clean.Truth(s, s.Add(time.Hour)); math.Abs(a.VL-b.VL) > 1e-12 {
		t.Errorf("VL before the fault %.9f, clean %.9f", a.VL, b.VL)
	}
}

// A stuck meter's totalizer stands still while stuck, then counts again from where it stood; the
// truth keeps the real flow.
func TestStuckFaultFreezesTotalizer(t *testing.T) {
	c := testConfig(t)
	c.Faults = []FaultConfig{{Kind: FaultStuck, Meter: "M08", After: time.Hour, For: time.Hour}}
	p := newPlant(t, c, nil)
	s := p.Start()
	m := meterByID(t, p, "M08")
	if a, b := p.total(m, s.Add(70*time.Minute)), p.total(m, s.Add(110*time.Minute)); a != b {
		t.Errorf("stuck totalizer moved from %.6f to %.6f", a, b)
	}
	after := p.total(m, s.Add(3*time.Hour)) - p.total(m, s.Add(2*time.Hour))
	if tr := p.Truth(s.Add(2*time.Hour), s.Add(3*time.Hour)).Meters["M08"]; math.Abs(after-tr) > 1e-6 || tr <= 0 {
		t.Errorf("after the fault the totalizer moved %.6f, truth %.6f", after, tr)
	}
	if p.trueRate(m, s.Add(90*time.Minute)) <= 0 {
		t.Error("a stuck meter still shows its flow rate")
	}
}

func TestFaultConfigProblems(t *testing.T) {
	c := testConfig(t)
	c.Faults = []FaultConfig{{Kind: FaultStuck, Meter: "M99"}, {Kind: "flood"}, {Kind: FaultLeak, Node: "ws1"}, {Kind: FaultOveruse, Node: "dist", Rate: 1}}
	var msgs []string
	for _, pr := range c.problems() {
		msgs = append(msgs, pr.path+": "+pr.msg)
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{`faults[0]: meter "M99"`, `faults[1]: kind "flood"`, "faults[2]: rate must be", `faults[3]: node "dist" has no consumption flow`} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

func TestFaultsAPI(t *testing.T) {
	c := testConfig(t)
	wall := &wallClock{t: time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)}
	p := newPlant(t, c, wall)
	h := p.Handler()
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/sim/faults", strings.NewReader(body)))
		return w
	}
	if w := post(`{"kind":"silent","meter":"M07","for":"1h"}`); w.Code != http.StatusCreated {
		t.Fatalf("post silent: %d %s", w.Code, w.Body)
	}
	if w := post(`{"kind":"leak","node":"nowhere","rate":1}`); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "nowhere") {
		t.Errorf("bad node: %d %s", w.Code, w.Body)
	}
	if !p.silent("M07", p.Now()) {
		t.Error("M07 should be silent now")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodDelete, "/api/v1/sim/faults/1", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	wall.advance(time.Second)
	if p.silent("M07", p.Now()) {
		t.Error("M07 still silent after the fault ended")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/sim/faults", nil))
	var out struct{ Faults []Fault }
	if err := json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&out); err != nil || len(out.Faults) != 1 || out.Faults[0].Active {
		t.Errorf("faults = %s (%v)", w.Body, err)
	}
}
