package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/collector"
)

// shanghai is +08:00 all year: China has no summer time.
const shanghaiOffset = 8 * 3600

// checkLocal asserts that local is utc written in Asia/Shanghai: the same instant, offset +08:00.
func checkLocal(t *testing.T, what string, utc time.Time, local string) {
	t.Helper()
	lt, err := time.Parse(time.RFC3339Nano, local)
	if err != nil {
		t.Errorf("%s local %q: %v", what, local, err)
		return
	}
	if _, off := lt.Zone(); off != shanghaiOffset || !strings.HasSuffix(local, "+08:00") {
		t.Errorf("%s local %q: offset %d s, want +08:00", what, local, off)
	}
	if !lt.Equal(utc) {
		t.Errorf("%s local %q is not the instant %s", what, local, utc.Format(time.RFC3339Nano))
	}
}

func checkUnits(t *testing.T, what string, u api.Units) {
	t.Helper()
	want := api.Units{Volume: "m³", Rate: "ratio", Coverage: "ratio", OutputValue: "10⁴ CNY", Steam: "t"}
	if u != want {
		t.Errorf("%s units %+v, want %+v", what, u, want)
	}
}

func TestAnswersNameTheZone(t *testing.T) {
	f := start(t, false)

	t.Run("sites", func(t *testing.T) {
		var sites []map[string]any
		getInto(t, f.url+"/api/v1/sites", &sites)
		if len(sites) != 1 || sites[0]["time_zone"] != "Asia/Shanghai" || sites[0]["now"] != "2026-03-02T10:30:00+08:00" {
			t.Errorf("sites %v", sites)
		}
	})

	// The current hour of the API's clock (10:30 in Shanghai) is 10:00 to 10:30 there.
	for _, tt := range []struct{ name, path, fromLocal, toLocal string }{
		{"site", "/api/v1/sites/s1/indicators?period=hour", "2026-03-02T10:00:00+08:00", "2026-03-02T10:30:00+08:00"},
		{"unit", "/api/v1/sites/s1/units/loop/indicators?period=day", "2026-03-02T00:00:00+08:00", "2026-03-02T10:30:00+08:00"},
		{"park", "/api/v1/parks/p/indicators?period=month", "2026-03-01T00:00:00+08:00", "2026-03-02T10:30:00+08:00"},
		{"site, a range given in UTC", "/api/v1/sites/s1/indicators?from=2026-03-01T16:00:00Z&to=2026-03-01T17:00:00Z", "2026-03-02T00:00:00+08:00", "2026-03-02T01:00:00+08:00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ind api.Indicators
			getInto(t, f.url+tt.path, &ind)
			if ind.TimeZone != "Asia/Shanghai" || ind.FromLocal != tt.fromLocal || ind.ToLocal != tt.toLocal {
				t.Errorf("time_zone %q from_local %q to_local %q, want Asia/Shanghai %s %s", ind.TimeZone, ind.FromLocal, ind.ToLocal, tt.fromLocal, tt.toLocal)
			}
			checkLocal(t, "from", ind.From, ind.FromLocal)
			checkLocal(t, "to", ind.To, ind.ToLocal)
			if ind.From.Location() != time.UTC {
				t.Errorf("from %v is no longer UTC", ind.From)
			}
			checkUnits(t, tt.name, ind.Units)
		})
	}

	t.Run("from stays UTC for existing clients", func(t *testing.T) {
		_, b := do(t, http.MethodGet, f.url+"/api/v1/sites/s1/indicators?period=hour", "")
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["from"] != "2026-03-02T02:00:00Z" || raw["from_local"] != "2026-03-02T10:00:00+08:00" {
			t.Errorf("from %v from_local %v", raw["from"], raw["from_local"])
		}
	})

	t.Run("balance", func(t *testing.T) {
		var b api.Balance
		getInto(t, f.url+"/api/v1/sites/s1/balance?period=day", &b)
		if b.TimeZone != "Asia/Shanghai" || b.FromLocal != "2026-03-02T00:00:00+08:00" {
			t.Errorf("balance time_zone %q from_local %q", b.TimeZone, b.FromLocal)
		}
		checkLocal(t, "from", b.From, b.FromLocal)
		checkLocal(t, "to", b.To, b.ToLocal)
		checkUnits(t, "balance", b.Units)
	})

	t.Run("plans", func(t *testing.T) {
		var ps []api.PlanStatus
		getInto(t, f.url+"/api/v1/sites/s1/plans", &ps)
		if len(ps) != 1 {
			t.Fatalf("%d plans", len(ps))
		}
		p := ps[0]
		// The March plan runs from the 1st to 1 April, midnight in Shanghai.
		if p.TimeZone != "Asia/Shanghai" || p.FromLocal != "2026-03-01T00:00:00+08:00" || p.ToLocal != "2026-04-01T00:00:00+08:00" || p.AtLocal != "2026-03-02T10:30:00+08:00" {
			t.Errorf("plan time_zone %q from_local %q to_local %q at_local %q", p.TimeZone, p.FromLocal, p.ToLocal, p.AtLocal)
		}
		checkLocal(t, "from", p.From, p.FromLocal)
		checkLocal(t, "to", p.To, p.ToLocal)
		checkLocal(t, "at", p.At, p.AtLocal)
		checkUnits(t, "plan", p.Units)
	})

	t.Run("meters", func(t *testing.T) {
		at := time.Date(2026, 3, 2, 2, 15, 0, 0, time.UTC) // 10:15 in Shanghai
		rd := collector.Reading{Site: "s1", Meter: "M1", Seq: 7, Time: at, TimeSource: collector.TimeSourceCollector,
			Points: []collector.Point{{Name: collector.PointTotal, Value: 1234.5, Unit: "m3", Quality: collector.Good}}}
		if err := f.st.WriteReadings(context.Background(), []collector.Reading{rd}); err != nil {
			t.Fatal(err)
		}
		var ms []api.MeterState
		getInto(t, f.url+"/api/v1/sites/s1/meters", &ms)
		if len(ms) == 0 || ms[0].ID != "M1" || ms[0].Time == nil {
			t.Fatalf("meters %+v", ms)
		}
		if ms[0].TimeLocal != "2026-03-02T10:15:00+08:00" {
			t.Errorf("time_local %q, want 2026-03-02T10:15:00+08:00", ms[0].TimeLocal)
		}
		checkLocal(t, "reading time", *ms[0].Time, ms[0].TimeLocal)
	})

	t.Run("inputs", func(t *testing.T) {
		body := `{"from": "2026-03-01", "to": "2026-03-02", "product": 10, "product_unit": "t", "steam": 3}`
		code, b := do(t, http.MethodPut, f.url+"/api/v1/sites/s1/inputs", body)
		if code != http.StatusOK {
			t.Fatalf("PUT inputs: %d %s", code, b)
		}
		var put []api.Input
		if err := json.Unmarshal(b, &put); err != nil {
			t.Fatal(err)
		}
		var got []api.Input
		getInto(t, f.url+"/api/v1/sites/s1/inputs?period=month", &got)
		for name, ins := range map[string][]api.Input{"PUT": put, "GET": got} {
			if len(ins) != 1 || ins[0].TimeZone != "Asia/Shanghai" || ins[0].FromLocal != "2026-03-01T00:00:00+08:00" || ins[0].ToLocal != "2026-03-02T00:00:00+08:00" {
				t.Errorf("%s inputs %+v", name, ins)
				continue
			}
			checkLocal(t, name+" from", ins[0].From, ins[0].FromLocal)
			checkLocal(t, name+" to", ins[0].To, ins[0].ToLocal)
			checkUnits(t, name+" input", ins[0].Units)
		}
	})
}

func TestSnapshotNamesTheZone(t *testing.T) {
	f := start(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.eval.Run(ctx) }()
	defer func() { cancel(); <-done }()
	get := func(path string) api.Snapshot {
		var snap api.Snapshot
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, b := do(t, http.MethodGet, f.url+path, "")
			if code == http.StatusOK {
				if err := json.Unmarshal(b, &snap); err != nil {
					t.Fatal(err)
				}
				return snap
			}
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot at %s: %d %s", path, code, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, path := range []string{"/api/v1/sites/s1/snapshot", "/api/v1/parks/p/snapshot"} {
		t.Run(path, func(t *testing.T) {
			snap := get(path)
			if snap.TimeZone != "Asia/Shanghai" {
				t.Errorf("time_zone %q", snap.TimeZone)
			}
			checkLocal(t, "at", snap.At, snap.AtLocal)
			checkUnits(t, "snapshot", snap.Units)
			// Each period starts on its own boundary in Shanghai, whatever the machine's zone.
			starts := map[string]string{"hour": "2026-03-02T10:00:00+08:00", "day": "2026-03-02T00:00:00+08:00",
				"month": "2026-03-01T00:00:00+08:00", "year": "2026-01-01T00:00:00+08:00"}
			for name, fig := range map[string]api.Figures{"hour": snap.Hour, "day": snap.Day, "month": snap.Month, "year": snap.Year} {
				ind := fig.Indicators
				if ind.TimeZone != "Asia/Shanghai" || ind.FromLocal != starts[name] {
					t.Errorf("%s: time_zone %q from_local %q, want %s", name, ind.TimeZone, ind.FromLocal, starts[name])
				}
				checkLocal(t, name+" from", ind.From, ind.FromLocal)
				checkLocal(t, name+" to", ind.To, ind.ToLocal)
				if snap.Boundary == "site" {
					if fig.Balance == nil {
						t.Errorf("%s: no balance", name)
						continue
					}
					checkLocal(t, name+" balance from", fig.Balance.From, fig.Balance.FromLocal)
				}
			}
			if snap.Boundary == "site" && len(snap.Plans) != 1 {
				t.Errorf("%d plans", len(snap.Plans))
			}
			for _, p := range snap.Plans {
				checkLocal(t, "plan from", p.From, p.FromLocal)
			}
		})
	}
}
