package analytics

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
