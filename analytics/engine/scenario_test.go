package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
)

// A scenario is site models, ledger buckets and production inputs in, and figures out: each
// query runs through the whole engine on a real SQLite store, and its answer (as the API would
// serialise it) must match the wanted values.
type scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Start is the instant the scenario's relative times count from (default
	// 2026-03-02T00:00:00+08:00, a Monday).
	Start string `yaml:"start"`
	// Tolerance is the absolute tolerance of wanted numbers (default 1e-9).
	Tolerance float64     `yaml:"tolerance"`
	Sites     []yaml.Node `yaml:"sites"`
	// SiteFiles are site model files, relative to the scenario, loaded after Sites.
	SiteFiles []string `yaml:"site_files"`
	Buckets   []struct {
		Site  string        `yaml:"site"`
		Meter string        `yaml:"meter"`
		From  time.Duration `yaml:"from"`
		// Minutes buckets from From on share Volume evenly (one minute by default).
		Minutes  int      `yaml:"minutes"`
		Volume   float64  `yaml:"volume"`
		Coverage *float64 `yaml:"coverage"` // of each bucket, default 1
		Flags    string   `yaml:"flags"`
	} `yaml:"buckets"`
	Inputs []struct {
		Site        string        `yaml:"site"`
		From        time.Duration `yaml:"from"`
		To          time.Duration `yaml:"to"`
		Product     *float64      `yaml:"product"`
		ProductUnit string        `yaml:"product_unit"`
		OutputValue *float64      `yaml:"output_value"`
		Steam       *float64      `yaml:"steam"`
	} `yaml:"inputs"`
	Queries []struct {
		// Site, or Park for the park boundary; Unit selects a unit of Site.
		Site string        `yaml:"site"`
		Unit string        `yaml:"unit"`
		Park string        `yaml:"park"`
		From time.Duration `yaml:"from"`
		To   time.Duration `yaml:"to"`
		// At, when set, also asks for the site's plans at that instant.
		At *time.Duration `yaml:"at"`
		// Want maps a path in the answer to its value. The answer is {"indicators": ...,
		// "balance": ..., "plans": [...]}, and a path is keys joined by '.', where
		// name[key=value] picks the element of a list whose key is value. null means JSON null.
		Want map[string]any `yaml:"want"`
	} `yaml:"queries"`
}

func (sc *scenario) start(t *testing.T) time.Time {
	if sc.Start == "" {
		return time.Date(2026, 3, 2, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	}
	at, err := time.Parse(time.RFC3339, sc.Start)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return at
}

func loadScenarios(t *testing.T) map[string]*scenario {
	t.Helper()
	files, err := filepath.Glob("testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	out := map[string]*scenario{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc scenario
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = &sc
	}
	return out
}

// siteModels decodes the scenario's sites as site files are: known fields, defaults, validation.
func (sc *scenario) siteModels(t *testing.T) []*analytics.Site {
	t.Helper()
	var out []*analytics.Site
	for i := range sc.Sites {
		b, err := yaml.Marshal(&sc.Sites[i])
		if err != nil {
			t.Fatal(err)
		}
		var s analytics.Site
		if err := config.Parse(fmt.Sprintf("sites[%d]", i), b, &s); err != nil {
			t.Fatalf("site model %d: %v", i, err)
		}
		out = append(out, &s)
	}
	for _, f := range sc.SiteFiles {
		s, err := analytics.LoadSite(filepath.Join("testdata", "scenarios", f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func parseFlags(t *testing.T, s string) ledger.Flag {
	var f ledger.Flag
	for _, name := range strings.Split(s, ",") {
		if name == "" {
			continue
		}
		found := false
		for i := range 16 {
			if ledger.Flag(1<<i).String() == name {
				f |= 1 << i
				found = true
			}
		}
		if !found {
			t.Fatalf("unknown flag %q", name)
		}
	}
	return f
}

// load writes the scenario's buckets and inputs into st.
func (sc *scenario) load(t *testing.T, st *store.SQLite) {
	t.Helper()
	ctx := context.Background()
	t0 := sc.start(t)
	var bs []ledger.Bucket
	for _, b := range sc.Buckets {
		n := max(b.Minutes, 1)
		cov := 1.0
		if b.Coverage != nil {
			cov = *b.Coverage
		}
		for i := range n {
			bs = append(bs, ledger.Bucket{Site: b.Site, Meter: b.Meter, Start: ledger.Align(t0.Add(b.From + time.Duration(i)*time.Minute)),
				Volume: b.Volume / float64(n), Coverage: cov, Flags: parseFlags(t, b.Flags)})
		}
	}
	for len(bs) > 0 {
		n := min(len(bs), 50000)
		if err := st.WriteBuckets(ctx, bs[:n]); err != nil {
			t.Fatal(err)
		}
		bs = bs[n:]
	}
	var ins []engine.Input
	for _, in := range sc.Inputs {
		ins = append(ins, engine.Input{Site: in.Site, From: t0.Add(in.From), To: t0.Add(in.To), Product: in.Product,
			ProductUnit: in.ProductUnit, OutputValue: in.OutputValue, Steam: in.Steam})
	}
	if err := st.WriteInputs(ctx, ins); err != nil {
		t.Fatal(err)
	}
}

func TestScenarios(t *testing.T) {
	for file, sc := range loadScenarios(t) {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			sites := sc.siteModels(t)
			st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			sc.load(t, st)
			e := engine.New(sites, st)
			t0 := sc.start(t)
			tol := sc.Tolerance
			if tol == 0 {
				tol = 1e-9
			}
			if len(sc.Queries) == 0 {
				t.Fatal("no queries")
			}
			for qi, q := range sc.Queries {
				ctx := context.Background()
				from, to := t0.Add(q.From), t0.Add(q.To)
				answer := map[string]any{}
				var err error
				switch {
				case q.Park != "":
					answer["indicators"], err = e.ParkIndicators(ctx, q.Park, from, to)
				case q.Unit != "":
					answer["indicators"], err = e.UnitIndicators(ctx, q.Site, q.Unit, from, to)
				default:
					if answer["indicators"], err = e.Indicators(ctx, q.Site, from, to); err == nil {
						answer["balance"], err = e.Balance(ctx, q.Site, from, to)
					}
				}
				if err == nil && q.At != nil {
					answer["plans"], err = e.Plans(ctx, q.Site, t0.Add(*q.At))
				}
				if err != nil {
					t.Fatalf("query %d: %v", qi, err)
				}
				b, err := json.Marshal(answer)
				if err != nil {
					t.Fatalf("query %d: the answer does not marshal (NaN?): %v", qi, err)
				}
				var tree any
				if err := json.Unmarshal(b, &tree); err != nil {
					t.Fatal(err)
				}
				if len(q.Want) == 0 {
					t.Fatalf("query %d wants nothing", qi)
				}
				for _, path := range slices.Sorted(maps.Keys(q.Want)) {
					got, err := lookup(tree, path)
					if err != nil {
						t.Errorf("query %d: %s: %v", qi, path, err)
						continue
					}
					if !match(got, q.Want[path], tol) {
						t.Errorf("query %d: %s = %v, want %v", qi, path, got, q.Want[path])
					}
				}
				if t.Failed() && os.Getenv("SCENARIO_DUMP") != "" {
					t.Logf("answer: %s", b)
				}
			}
		})
	}
}

var selector = regexp.MustCompile(`^([a-z0-9_]+)\[([a-z_]+)=([^\]]+)\]$`)

// lookup follows a path like "balance.nodes[id=ws1].residual" through a JSON tree.
func lookup(tree any, path string) (any, error) {
	cur := tree
	for _, seg := range splitPath(path) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q: not an object", seg)
		}
		if sm := selector.FindStringSubmatch(seg); sm != nil {
			list, ok := m[sm[1]].([]any)
			if !ok {
				return nil, fmt.Errorf("%q: %s is not a list", seg, sm[1])
			}
			cur = nil
			for _, el := range list {
				if o, ok := el.(map[string]any); ok && fmt.Sprint(o[sm[2]]) == sm[3] {
					cur = el
					break
				}
			}
			if cur == nil {
				return nil, fmt.Errorf("%q: no element with %s = %s", seg, sm[2], sm[3])
			}
			continue
		}
		v, ok := m[seg]
		if !ok {
			return nil, fmt.Errorf("%q: no such key", seg)
		}
		cur = v
	}
	return cur, nil
}

// splitPath splits at dots outside brackets.
func splitPath(p string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range p {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				out = append(out, p[start:i])
				start = i + 1
			}
		}
	}
	return append(out, p[start:])
}

func match(got, want any, tol float64) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case int:
		return match(got, float64(w), tol)
	case float64:
		g, ok := got.(float64)
		return ok && math.Abs(g-w) <= tol
	case bool:
		return got == w
	case string:
		if g, ok := got.(float64); ok {
			// "~0.9807" compares to as many decimals as written.
			if strings.HasPrefix(w, "~") {
				dec := 0
				if i := strings.IndexByte(w, '.'); i >= 0 {
					dec = len(w) - i - 1
				}
				f, err := strconv.ParseFloat(w[1:], 64)
				return err == nil && math.Abs(g-f) <= 0.5*math.Pow10(-dec)
			}
			return false
		}
		return fmt.Sprint(got) == w
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !match(g[i], w[i], tol) {
				return false
			}
		}
		return true
	}
	return false
}
