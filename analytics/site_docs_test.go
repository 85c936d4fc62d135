package analytics_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/collector/config"
)

// TestSiteModelDocumented holds docs/site-model.md to the site model: every key a site file can
// hold has a row, named in backticks, and every key the table names exists.
func TestSiteModelDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/site-model.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	keys := map[string]bool{}
	for _, k := range config.Keys(reflect.TypeOf(analytics.Site{})) {
		k = strings.TrimSuffix(k, ".*")
		keys[k] = true
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/site-model.md has no row for `%s`", k)
		}
	}
	// Rows name keys in their first cell: `a`, or `a`, `b` for two keys in one row.
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.SplitN(line, "|", 3)[1]
		for _, part := range strings.Split(cell, ",") {
			k := strings.Trim(strings.TrimSpace(part), "`")
			if k != "" && !keys[k] {
				t.Errorf("docs/site-model.md documents `%s`, which a site file cannot hold", k)
			}
		}
	}
}
