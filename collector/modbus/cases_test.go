package modbus

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*/expected.yaml from what the code reads")

// expected is a case's expected.yaml.
type expected struct {
	Requests int          `yaml:"requests"`
	Plan     []string     `yaml:"plan"`
	Readings []expReading `yaml:"readings"`
}

type expReading struct {
	Meter  string     `yaml:"meter"`
	Points []expPoint `yaml:"points"`
}

type expPoint struct {
	Name    string   `yaml:"name"`
	Value   *float64 `yaml:"value,omitempty"`
	Unit    string   `yaml:"unit,omitempty"`
	Quality string   `yaml:"quality"`
	Code    uint32   `yaml:"code,omitempty"`
	Error   string   `yaml:"error,omitempty"`
}

var caseTime = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// caseDirs lists testdata/<case>/ folders, each with config.yaml, registers.yaml, expected.yaml.
func caseDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/*/config.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no test cases under testdata: %v", err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

// loadCaseConfig reads a case's bus config the way the edge reads its file: known fields only.
func loadCaseConfig(t *testing.T, dir string) Config {
	t.Helper()
	var cfg Config
	if err := config.Load(filepath.Join(dir, "config.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCases runs every testdata case against the in-process Modbus TCP server.
func TestCases(t *testing.T) {
	for _, dir := range caseDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			img := loadImage(t, filepath.Join(dir, "registers.yaml"))
			srv := startServer(t, img)
			cfg := loadCaseConfig(t, dir)
			cfg.Transport, cfg.Controller = TransportTCP, srv.controller()
			got, src := pollCase(t, cfg)
			if n := srv.served(); n != src.Requests() {
				t.Errorf("server answered %d reads, plan has %d", n, src.Requests())
			}
			checkCase(t, dir, got, src)
		})
	}
}

// pollCase polls cfg once with a fixed clock and returns the readings.
func pollCase(t *testing.T, cfg Config) ([]collector.Reading, *Source) {
	t.Helper()
	src, err := New(cfg, "site-a", Options{Now: func() time.Time { return caseTime }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rs, _ := src.Poll(ctx)
	for _, r := range rs {
		if r.Site != "site-a" || !r.Time.Equal(caseTime) || r.TimeSource != collector.TimeSourceCollector {
			t.Errorf("meter %s: site %q time %v source %q, want site-a %v collector", r.Meter, r.Site, r.Time, r.TimeSource, caseTime)
		}
	}
	return rs, src
}

// checkCase compares readings and plan with dir/expected.yaml, or rewrites it under -update.
func checkCase(t *testing.T, dir string, rs []collector.Reading, src *Source) {
	t.Helper()
	got := expected{Requests: src.Requests()}
	for _, r := range src.Plan() {
		got.Plan = append(got.Plan, r.String())
	}
	for _, r := range rs {
		er := expReading{Meter: r.Meter}
		for _, p := range r.Points {
			ep := expPoint{Name: p.Name, Unit: p.Unit, Quality: p.Quality.String(), Code: p.Code, Error: p.Error}
			if p.Quality != collector.Bad {
				v := p.Value
				ep.Value = &v
			}
			er.Points = append(er.Points, ep)
		}
		got.Readings = append(got.Readings, er)
	}
	path := filepath.Join(dir, "expected.yaml")
	if *update {
		out, err := yaml.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want expected
	if err := yaml.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got.Requests != want.Requests {
		t.Errorf("requests per poll = %d, want %d", got.Requests, want.Requests)
	}
	if g, w := strings.Join(got.Plan, "\n"), strings.Join(want.Plan, "\n"); g != w {
		t.Errorf("plan:\n%s\nwant:\n%s", g, w)
	}
	if len(got.Readings) != len(want.Readings) {
		t.Fatalf("%d readings, want %d", len(got.Readings), len(want.Readings))
	}
	for i, wr := range want.Readings {
		gr := got.Readings[i]
		if gr.Meter != wr.Meter || len(gr.Points) != len(wr.Points) {
			t.Errorf("reading %d: meter %s with %d points, want %s with %d", i, gr.Meter, len(gr.Points), wr.Meter, len(wr.Points))
			continue
		}
		for j, wp := range wr.Points {
			gp := gr.Points[j]
			if !samePoint(gp, wp) {
				t.Errorf("%s.%s:\n got %s\nwant %s", wr.Meter, wp.Name, describe(gp), describe(wp))
			}
		}
	}
}

func samePoint(a, b expPoint) bool {
	if a.Name != b.Name || a.Unit != b.Unit || a.Quality != b.Quality || a.Code != b.Code || a.Error != b.Error {
		return false
	}
	if (a.Value == nil) != (b.Value == nil) {
		return false
	}
	return a.Value == nil || *a.Value == *b.Value || math.IsNaN(*a.Value) && math.IsNaN(*b.Value)
}

func describe(p expPoint) string {
	out, _ := yaml.Marshal(p)
	return strings.TrimSpace(strings.ReplaceAll(string(out), "\n", ", "))
}
