package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/engine"
)

// The tests in this file keep docs/api.md from drifting away from the code: every API route
// the sources register and every JSON field of the answers must appear in it. They read the
// sources rather than a list kept by hand, so a route another package adds is caught the day it
// is merged.

// routeRE is a whole string literal that is a route pattern under /api/: an optional method,
// then the path (net/http's ServeMux pattern syntax).
var routeRE = regexp.MustCompile(`^(?:(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) +)?(/api/[^\s?#"*]*)$`)

// route is a pattern found in the sources, with where.
type route struct {
	method, path, pos string
}

func (r route) String() string {
	if r.method == "" {
		return r.path
	}
	return r.method + " " + r.path
}

// repoRoot is the module's folder: this package is cmd/aqualoop.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from cmd/aqualoop: %v", err)
	}
	return root
}

func apiDoc(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatalf("read the API reference: %v", err)
	}
	return string(b)
}

// scanRoutes parses every non-test Go file under dirs and returns the API routes it names: the
// string literal patterns of Handle and HandleFunc calls (mux.HandleFunc("GET /api/v1/...", h)),
// and any other string literal that is a whole route pattern with a method, or a path under
// /api/v1/, which catches routes
// registered from a table or a loop (map[string]http.Handler{"GET /api/v1/sim/truth": ...}) or
// dispatched by comparing the path (r.URL.Path == "/api/v1/audit").
func scanRoutes(t *testing.T, root string, dirs ...string) (routes []route, handleCalls int) {
	t.Helper()
	fset := token.NewFileSet()
	seen := map[string]bool{}
	add := func(lit *ast.BasicLit, registered bool) {
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return
		}
		m := routeRE.FindStringSubmatch(s)
		// Outside a registration, a bare path is ours only under /api/v1/: "/api/v2/alerts" is
		// Alertmanager's API that a notifier calls, not a route of this platform.
		if m == nil || !registered && m[1] == "" && !strings.HasPrefix(m[2], "/api/v1/") {
			return
		}
		r := route{method: m[1], path: m[2], pos: fset.Position(lit.Pos()).String()}
		if rel, err := filepath.Rel(root, r.pos); err == nil {
			r.pos = rel
		}
		if !seen[r.String()] {
			seen[r.String()] = true
			routes = append(routes, r)
		}
	}
	for _, dir := range dirs {
		base := filepath.Join(root, dir)
		if _, err := os.Stat(base); err != nil {
			continue // a top-level folder not in this tree yet
		}
		err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if name := calleeName(n.Fun); (name == "Handle" || name == "HandleFunc") && len(n.Args) == 2 {
						if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							handleCalls++
							add(lit, true)
						}
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						add(n, false)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", dir, err)
		}
	}
	return routes, handleCalls
}

func calleeName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.Ident:
		return f.Name
	}
	return ""
}

// documented says whether the reference names r: "METHOD /path" for a pattern with a method,
// the path for one without, not followed by more path (so /api/v1/alerts is not taken as
// documented by /api/v1/alerts/closeouts.csv). A pattern ending in "/" names a subtree and is
// documented by any route under it.
func documented(doc string, r route) bool {
	needle := r.String()
	if strings.HasSuffix(r.path, "/") {
		return strings.Contains(doc, needle)
	}
	return regexp.MustCompile(regexp.QuoteMeta(needle) + `(?:$|[^A-Za-z0-9_.{}/-])`).MatchString(doc)
}

func TestAPIDocListsEveryRoute(t *testing.T) {
	root := repoRoot(t)
	doc := apiDoc(t, root)
	routes, calls := scanRoutes(t, root, "analytics", "alerting", "collector", "cmd")
	// The scanner must see the API package's own routes, or it proves nothing.
	for _, want := range []string{"GET /api/v1/sites", "GET /api/v1/sites/{site}/indicators", "PUT /api/v1/sites/{site}/inputs", "GET /api/v1/sim/truth"} {
		if !slices.ContainsFunc(routes, func(r route) bool { return r.String() == want }) {
			t.Fatalf("the scanner did not find %s among %d routes (%d literal Handle/HandleFunc calls): it is broken", want, len(routes), calls)
		}
	}
	var missing []string
	for _, r := range routes {
		if !documented(doc, r) {
			missing = append(missing, r.String()+"  ("+r.pos+")")
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/api.md does not list %d route(s) the sources register; add a row for each to its route tables:\n\t%s",
			len(missing), strings.Join(missing, "\n\t"))
	}
	t.Logf("%d routes found, %d literal Handle/HandleFunc calls", len(routes), calls)
}

func TestDocumentedReportsWhatIsMissing(t *testing.T) {
	doc := "| `GET /api/v1/alerts/closeouts.csv` | ... |\n| `POST /api/v1/silences` |\nunder `/api/v1/sites/{site}/register/certificates`"
	tests := []struct {
		in   route
		want bool
	}{
		{route{method: "GET", path: "/api/v1/alerts/closeouts.csv"}, true},
		{route{method: "GET", path: "/api/v1/alerts"}, false},   // a longer path does not document it
		{route{method: "GET", path: "/api/v1/silences"}, false}, // another method does not either
		{route{method: "POST", path: "/api/v1/silences"}, true},
		{route{path: "/api/v1/sites/{site}/register/"}, true}, // a subtree is documented by a route under it
		{route{path: "/api/v1/sites/{site}/register"}, false},
	}
	for _, tt := range tests {
		if got := documented(doc, tt.in); got != tt.want {
			t.Errorf("documented(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// jsonField is a JSON field name of an answer type, with the Go field it comes from.
type jsonField struct {
	name, from string
}

// jsonFields returns the JSON field names of t and of every type of this module it contains, as
// encoding/json writes them: embedded structs without a name are lifted into their parent, map
// keys (which are data, such as indicator terms and point names) are not fields.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeFor[time.Time]() {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				walk(f.Type) // lifted into t
				continue
			}
			if name == "" {
				name = f.Name
			}
			out = append(out, jsonField{name, t.String() + "." + f.Name})
			walk(f.Type)
		}
	}
	walk(t)
	return out
}

// answerTypes are the types the API answers with: the engine's results and the API's wrappers.
var answerTypes = []reflect.Type{
	reflect.TypeFor[engine.Indicators](), reflect.TypeFor[engine.Balance](), reflect.TypeFor[engine.PlanStatus](),
	reflect.TypeFor[engine.Snapshot](), reflect.TypeFor[engine.Input](),
	reflect.TypeFor[api.Indicators](), reflect.TypeFor[api.Balance](), reflect.TypeFor[api.PlanStatus](),
	reflect.TypeFor[api.Snapshot](), reflect.TypeFor[api.Input](), reflect.TypeFor[api.SiteInfo](),
	reflect.TypeFor[api.ParkInfo](), reflect.TypeFor[api.MeterState](), reflect.TypeFor[api.Units](),
}

func TestAPIDocNamesEveryField(t *testing.T) {
	doc := apiDoc(t, repoRoot(t))
	missing := map[string][]string{}
	found := map[string]bool{}
	for _, at := range answerTypes {
		for _, f := range jsonFields(at) {
			found[f.name] = true
			if !strings.Contains(doc, "`"+f.name+"`") {
				missing[f.name] = append(missing[f.name], f.from)
			}
		}
	}
	// The walk must reach the nested types (Volumes, Rates, LevelMetering, SiteBalance ...).
	for _, want := range []string{"vcy", "wastewater_reuse_rate", "equipping_rate", "closure_ok", "projection_last_year", "whole_period", "from_local", "at_local", "time_zone", "quality", "steam"} {
		if !found[want] {
			t.Fatalf("the field walk did not find %q in the answer types: it is broken", want)
		}
	}
	if len(missing) > 0 {
		var lines []string
		for _, name := range slices.Sorted(maps.Keys(missing)) {
			from := slices.Compact(slices.Sorted(slices.Values(missing[name])))
			lines = append(lines, "`"+name+"`  ("+strings.Join(from, ", ")+")")
		}
		t.Errorf("docs/api.md does not name %d JSON field(s) of the answers; describe each (in backticks) where its answer is described:\n\t%s",
			len(missing), strings.Join(lines, "\n\t"))
	}
	t.Logf("%d distinct JSON field names checked", len(found))
}
