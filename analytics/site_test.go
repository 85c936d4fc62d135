package analytics

import (
	"bufio"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

func TestDemoSiteLoads(t *testing.T) {
	s, err := LoadSite("../configs/demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Meters) < 12 {
		t.Errorf("demo site has %d meters, the demo plant needs at least 12", len(s.Meters))
	}
	kinds := map[FlowKind]bool{}
	for _, f := range s.Flows {
		kinds[f.Kind] = true
	}
	for _, k := range []FlowKind{Intake, NonConventional, Circulating, Cascade, WastewaterReuse, Condensate, Discharge, Consumption} {
		if !kinds[k] {
			t.Errorf("demo site has no %s flow", k)
		}
	}
	if f, ok := s.FlowOfMeter("M12"); !ok || f.Kind != Circulating {
		t.Errorf("M12 measures %+v, want the circulating flow", f)
	}
}

// TestBadSites loads every file under testdata/sites and expects exactly the problems listed in
// its "# want:" header lines.
func TestBadSites(t *testing.T) {
	files, _ := filepath.Glob("testdata/sites/*.yaml")
	if len(files) == 0 {
		t.Fatal("no bad site examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLines(t, f)
			_, err := LoadSite(f)
			if err == nil {
				t.Fatalf("no error, want %q", want)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q; got:\n%v", w, err)
				}
			}
		})
	}
}

func wantLines(t *testing.T, path string) []string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var want []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			// Messages name the file by the path it was loaded with.
			want = append(want, filepath.Join(filepath.Dir(path), w))
		}
	}
	if len(want) == 0 {
		t.Fatalf("%s has no '# want:' lines", path)
	}
	return want
}

func TestDemoSitePlansAndSettings(t *testing.T) {
	s, err := LoadSite("../configs/demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Plans) != 50 {
		t.Errorf("demo site has %d plans, want 2 annual + 48 monthly", len(s.Plans))
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, s.Location())
	var got []string
	for _, p := range s.PlansAt(now) {
		got = append(got, p.String())
	}
	if want := []string{"site 2026", "municipal 2026-11", "well 2026-11"}; !slices.Equal(got, want) {
		t.Errorf("plans at %s = %v, want %v", now, got, want)
	}
	if want := map[int]int{1: 4, 2: 8, 3: 4}; !maps.Equal(s.Metering.Required, want) {
		t.Errorf("required meters %v, want %v", s.Metering.Required, want)
	}
	if s.Balance.ClosureThreshold != 0.10 || s.Indicators.Benchmark == nil || s.Indicators.Benchmark.ReuseRate != 0.929 {
		t.Errorf("balance %+v, indicators %+v", s.Balance, s.Indicators)
	}
}

func TestDefaults(t *testing.T) {
	// A level left out of required defaults to the meters the model has at that level; a level
	// given, even as 0, is kept.
	in := `id: small
nodes:
  - {id: municipal, type: source, kind: municipal}
  - {id: well, type: source, kind: well}
  - {id: ws1, type: unit, kind: workshop}
meters:
  - {id: M01, level: 1}
  - {id: M02, level: 1}
  - {id: M03, level: 3}
flows:
  - {id: a, from: municipal, to: ws1, kind: intake, meter: M01}
  - {id: b, from: well, to: ws1, kind: intake, meter: M02}
  - {id: c, from: ws1, to: ws1, kind: circulating, meter: M03}
metering:
  required: {2: 0}
  coverage: {3: 0.9}
`
	var s Site
	if err := config.Parse("small.yaml", []byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if want := map[int]int{1: 2, 2: 0, 3: 1}; !maps.Equal(s.Metering.Required, want) {
		t.Errorf("required %v, want %v", s.Metering.Required, want)
	}
	if want := map[int]float64{1: 1, 2: 0.95, 3: 0.80}; !maps.Equal(s.Metering.Equipping, want) {
		t.Errorf("equipping %v, want %v", s.Metering.Equipping, want)
	}
	if want := map[int]float64{1: 1, 2: 0.95, 3: 0.9}; !maps.Equal(s.Metering.Coverage, want) {
		t.Errorf("coverage %v, want %v", s.Metering.Coverage, want)
	}
	if want := (BalanceConfig{0.10, 0.05, 0.10}); s.Balance != want {
		t.Errorf("balance %+v, want %+v", s.Balance, want)
	}
	if s.Indicators.DeclaredReuseRate != ReuseRateWithoutVu || s.Indicators.NonConventionalBase != BaseIntakeAndNonConventional {
		t.Errorf("indicators %+v", s.Indicators)
	}
	if want := (VerificationIntervals{72, 48, 24, 12}); s.Metering.Verification != want {
		t.Errorf("verification %+v, want %+v", s.Metering.Verification, want)
	}
}

func TestPlanSpan(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		plan     Plan
		loc      *time.Location
		from, to string
	}{
		{"february", Plan{Period: PeriodMonth, Year: 2026, Month: 2}, sh, "2026-02-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00"},
		{"leap february", Plan{Period: PeriodMonth, Year: 2028, Month: 2}, sh, "2028-02-01T00:00:00+08:00", "2028-03-01T00:00:00+08:00"},
		{"december rolls into the next year", Plan{Period: PeriodMonth, Year: 2026, Month: 12}, sh, "2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00"},
		{"year", Plan{Period: PeriodYear, Year: 2027}, sh, "2027-01-01T00:00:00+08:00", "2028-01-01T00:00:00+08:00"},
		{"no location is UTC", Plan{Period: PeriodYear, Year: 2027}, nil, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := tt.plan.Span(tt.loc)
			if got := from.Format(time.RFC3339); got != tt.from {
				t.Errorf("from %s, want %s", got, tt.from)
			}
			if got := to.Format(time.RFC3339); got != tt.to {
				t.Errorf("to %s, want %s", got, tt.to)
			}
		})
	}
}

func TestNextVerification(t *testing.T) {
	tests := []struct {
		name     string
		meter    Meter
		iv       VerificationIntervals
		want     string // "" for the zero time
		replaced bool
	}{
		{"due given wins", Meter{DN: 20, VerifiedOn: "2025-03-12", VerificationDue: "2025-09-01"}, VerificationIntervals{}, "2025-09-01", true},
		{"DN 25 replaced after 6 years", Meter{DN: 25, VerifiedOn: "2025-03-12"}, VerificationIntervals{}, "2031-03-12", true},
		{"DN 50 replaced after 4 years", Meter{DN: 50, Type: "mechanical", VerifiedOn: "2023-01-10"}, VerificationIntervals{}, "2027-01-10", true},
		{"DN 150 verified every 2 years", Meter{DN: 150, VerifiedOn: "2025-03-12"}, VerificationIntervals{}, "2027-03-12", false},
		{"unknown DN takes the shortest water-meter interval", Meter{VerifiedOn: "2025-03-12"}, VerificationIntervals{}, "2027-03-12", false},
		{"electromagnetic every year", Meter{DN: 200, Type: "electromagnetic", VerifiedOn: "2025-12-05"}, VerificationIntervals{}, "2026-12-05", false},
		{"small ultrasonic is a flowmeter, not a water meter", Meter{DN: 25, Type: "ultrasonic", VerifiedOn: "2025-12-05"}, VerificationIntervals{}, "2026-12-05", false},
		{"configured flowmeter interval", Meter{DN: 200, Type: "ultrasonic", VerifiedOn: "2025-12-05"}, VerificationIntervals{FlowmeterMonths: 24}, "2027-12-05", false},
		{"configured DN 50 interval", Meter{DN: 40, VerifiedOn: "2025-12-05"}, VerificationIntervals{UpToDN50Months: 36}, "2028-12-05", true},
		{"no dates", Meter{DN: 40}, VerificationIntervals{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.meter.NextVerification(tt.iv)
			switch {
			case tt.want == "" && !got.IsZero():
				t.Errorf("got %s, want the zero time", got)
			case tt.want != "" && got.Format(time.DateOnly) != tt.want:
				t.Errorf("got %s, want %s", got.Format(time.DateOnly), tt.want)
			}
			if r := tt.meter.Replaced(); r != tt.replaced {
				t.Errorf("Replaced() = %v, want %v", r, tt.replaced)
			}
		})
	}
}

func TestSiteNextVerificationInSiteTime(t *testing.T) {
	s, err := LoadSite("../configs/demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Meter("M05") // mechanical DN 50 verified 2023-01-10: replace within 4 years
	got := s.NextVerification(m)
	if want := "2027-01-10T00:00:00+08:00"; got.Format(time.RFC3339) != want {
		t.Errorf("M05 due %s, want %s", got.Format(time.RFC3339), want)
	}
	m, _ = s.Meter("M07") // no dates in the register
	if got := s.NextVerification(m); !got.IsZero() {
		t.Errorf("M07 due %s, want none", got)
	}
}

func TestParks(t *testing.T) {
	a := &Site{ID: "a", Park: "p1"}
	b := &Site{ID: "b", Park: "p2"}
	c := &Site{ID: "c", Park: "p1"}
	d := &Site{ID: "d"}
	got := Parks([]*Site{a, b, c, d})
	if len(got) != 2 || !slices.Equal(got["p1"], []*Site{a, c}) || !slices.Equal(got["p2"], []*Site{b}) {
		t.Errorf("Parks = %v", got)
	}

	pk, err := LoadPark("testdata/parks/demo-park.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if pk.ID != "demo-park" || !slices.Equal(pk.Sites, []string{"demo", "dyeworks"}) {
		t.Errorf("park %+v", pk)
	}
	demo := &Site{ID: "demo"}
	members, err := pk.Members([]*Site{a, demo})
	if err == nil || !strings.Contains(err.Error(), "[dyeworks]") {
		t.Errorf("Members error %v, want it to name dyeworks", err)
	}
	if !slices.Equal(members, []*Site{demo}) {
		t.Errorf("members %v, want the demo site", members)
	}
}

func TestBadPark(t *testing.T) {
	const f = "testdata/parks/bad-park.yaml"
	want := wantLines(t, f)
	_, err := LoadPark(f)
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q; got:\n%v", w, err)
		}
	}
}
