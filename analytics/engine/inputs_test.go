package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/store"
)

func TestParseTime(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2026-03-01T00:00:00+08:00", time.Date(2026, 3, 1, 0, 0, 0, 0, sh), false},
		{"2026-02-28T16:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, sh), false},
		{"2026-03-01T00:00:00 08:00", time.Date(2026, 3, 1, 0, 0, 0, 0, sh), false}, // '+' lost in a URL query
		{"2026-03-01T08:30", time.Date(2026, 3, 1, 8, 30, 0, 0, sh), false},
		{"2026-03-01 08:30", time.Date(2026, 3, 1, 8, 30, 0, 0, sh), false},
		{" 2026-03-01 ", time.Date(2026, 3, 1, 0, 0, 0, 0, sh), false},
		{"2026-03", time.Date(2026, 3, 1, 0, 0, 0, 0, sh), false},
		{"2026", time.Time{}, true},
		{"March", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := engine.ParseTime(tt.in, sh)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func fp(v float64) *float64 { return &v }

func TestProrate(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ins := []engine.Input{
		{Site: "s", From: day, To: day.AddDate(0, 0, 10), Product: fp(100), ProductUnit: "t", Steam: fp(50)},
		{Site: "s", From: day.AddDate(0, 0, 10), To: day.AddDate(0, 0, 20), Product: fp(300), ProductUnit: "t"},
	}
	tests := []struct {
		name       string
		from, to   time.Time
		q, d       *float64
		qCov, dCov float64
		unit       string
	}{
		{"inside the first", day.AddDate(0, 0, 2), day.AddDate(0, 0, 7), fp(50), fp(25), 1, 1, "t"},
		{"across both", day.AddDate(0, 0, 5), day.AddDate(0, 0, 15), fp(200), fp(25), 1, 0.5, "t"},
		{"beyond the inputs", day.AddDate(0, 0, 15), day.AddDate(0, 0, 25), fp(150), nil, 0.5, 0, "t"},
		{"before them", day.AddDate(0, 0, -5), day, nil, nil, 0, 0, ""},
		{"empty period", day, day, nil, nil, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := engine.Prorate(ins, tt.from, tt.to)
			if !sameFigure(p.Product, tt.q, tt.qCov) || !sameFigure(p.Steam, tt.d, tt.dCov) || p.ProductUnit != tt.unit || p.OutputValue.Value != nil {
				t.Errorf("Prorate = %+v (Q %v, D %v)", p, deref(p.Product.Value), deref(p.Steam.Value))
			}
		})
	}
	// Products in two units cannot be summed.
	mixed := append(ins, engine.Input{Site: "s", From: day.AddDate(0, 0, 20), To: day.AddDate(0, 0, 30), Product: fp(5), ProductUnit: "pieces"})
	if p := engine.Prorate(mixed, day, day.AddDate(0, 0, 30)); p.Product.Value != nil || !strings.Contains(p.Conflict, "pieces") {
		t.Errorf("mixed units: %+v", p)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

func sameFigure(f engine.Figure, v *float64, cov float64) bool {
	if (f.Value == nil) != (v == nil) || v != nil && !near(*f.Value, *v) {
		return false
	}
	return near(f.Coverage, cov)
}

func TestReadInputsCSV(t *testing.T) {
	s := parseSite(t, loopSite)
	sites := []*analytics.Site{s}
	good := `# production figures of 2026
site,from,to,product,product_unit,output_value,steam
ev,2026-01,2026-02,1200,t,350.5,
ev, 2026-02-01T00:00:00+08:00 ,2026-03,1100,t,,88
`
	ins, err := engine.ReadInputsCSV(strings.NewReader(good), "inputs.csv", sites)
	if err != nil {
		t.Fatal(err)
	}
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, s.Location())
	if len(ins) != 2 || !ins[0].From.Equal(jan) || *ins[0].OutputValue != 350.5 || ins[0].Steam != nil || *ins[1].Steam != 88 || ins[1].OutputValue != nil {
		t.Errorf("inputs %+v", ins)
	}
	// Columns in another order, figures left out.
	if ins, err := engine.ReadInputsCSV(strings.NewReader("steam,to,from,site\n7,2026-01-02,2026-01-01,ev\n"), "x.csv", sites); err != nil || len(ins) != 1 || *ins[0].Steam != 7 {
		t.Errorf("reordered columns: %+v, %v", ins, err)
	}
	tests := []struct {
		name, csv string
		want      []string
	}{
		{"unknown column", "site,from,to,steem\n", []string{`x.csv:1: column "steem"`}},
		{"missing column", "site,from,steam\n", []string{"x.csv:1: column to is required"}},
		{"bad rows", "site,from,to,product,product_unit,steam\n" +
			"nope,2026-01,2026-02,,,1\n" +
			"ev,January,2026-02,,,1\n" +
			"ev,2026-01,2026-02,lots,t,1\n" +
			"ev,2026-01,2026-02,5,,\n" +
			"ev,2026-02,2026-01,,,1\n",
			[]string{`x.csv:2: unknown site "nope"`, `x.csv:3: from: "January" is not a time`, `x.csv:4: product: "lots" is not a number`,
				"x.csv:5: invalid production input: product_unit is required", "x.csv:6: invalid production input: period"}},
		{"overlap", "site,from,to,steam\nev,2026-01,2026-03,1\nev,2026-02,2026-04,1\n", []string{"x.csv:3: ", "overlaps another production input on line 2"}},
		{"duplicate", "site,from,to,steam\nev,2026-01,2026-02,1\nev,2026-01,2026-02,2\n", []string{"x.csv:3: ", "line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.ReadInputsCSV(strings.NewReader(tt.csv), "x.csv", sites)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestOverlapping(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	stored := []engine.Input{{Site: "s", From: day, To: day.AddDate(0, 0, 10), Steam: fp(1)}}
	tests := []struct {
		name     string
		in       engine.Input
		conflict bool
	}{
		{"same start replaces", engine.Input{Site: "s", From: day, To: day.AddDate(0, 0, 3)}, false},
		{"inside", engine.Input{Site: "s", From: day.AddDate(0, 0, 2), To: day.AddDate(0, 0, 3)}, true},
		{"straddling the start", engine.Input{Site: "s", From: day.AddDate(0, 0, -2), To: day.AddDate(0, 0, 1)}, true},
		{"touching the end", engine.Input{Site: "s", From: day.AddDate(0, 0, 10), To: day.AddDate(0, 0, 11)}, false},
		{"another site", engine.Input{Site: "t", From: day.AddDate(0, 0, 2), To: day.AddDate(0, 0, 3)}, false},
	}
	for _, tt := range tests {
		if _, got := engine.Overlapping(stored, tt.in); got != tt.conflict {
			t.Errorf("%s: Overlapping = %v, want %v", tt.name, got, tt.conflict)
		}
	}
}

func TestLoadInputs(t *testing.T) {
	s := parseSite(t, loopSite)
	sites := []*analytics.Site{s}
	dir := t.TempDir()
	st, err := store.OpenSQLite(filepath.Join(dir, "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("inputs.csv", "site,from,to,steam\nev,2026-01,2026-02,31\nev,2026-02,2026-03,28\n")
	if n, err := engine.LoadInputs(ctx, good, sites, st); err != nil || n != 2 {
		t.Fatalf("LoadInputs = %d, %v", n, err)
	}
	// Loading the same file again at the next start replaces the rows.
	if n, err := engine.LoadInputs(ctx, good, sites, st); err != nil || n != 2 {
		t.Fatalf("LoadInputs again = %d, %v", n, err)
	}
	loc := s.Location()
	ins, err := st.Inputs(ctx, "ev", time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2026, 3, 1, 0, 0, 0, 0, loc))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || *ins[1].Steam != 28 {
		t.Errorf("stored %+v", ins)
	}
	// A row overlapping a stored input that starts elsewhere stops the load, and nothing of the
	// file is stored.
	bad := write("bad.csv", "site,from,to,steam\nev,2026-03,2026-04,1\nev,2026-01-15,2026-02-15,5\n")
	if _, err := engine.LoadInputs(ctx, bad, sites, st); !errors.Is(err, engine.ErrOverlap) {
		t.Errorf("overlapping file: %v, want ErrOverlap", err)
	}
	if ins, _ := st.Inputs(ctx, "ev", time.Date(2026, 3, 1, 0, 0, 0, 0, loc), time.Date(2026, 4, 1, 0, 0, 0, 0, loc)); len(ins) != 0 {
		t.Errorf("a refused file stored %+v", ins)
	}
	if _, err := engine.LoadInputs(ctx, filepath.Join(dir, "absent.csv"), sites, st); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
