package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/collector/config"
)

// TestConfigurationDocumented holds docs/configuration.md to aqualoop.yaml: every key of the
// first two levels has a row, named in backticks. Deeper keys are documented with their section
// (security.md, alerting-notify.md, edge.md for the MQTT settings).
func TestConfigurationDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	seen := map[string]bool{}
	for _, k := range config.Keys(reflect.TypeOf(platformConfig{})) {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) > 2 {
			parts = parts[:2]
		}
		k = strings.TrimSuffix(strings.Join(parts, "."), "[]")
		if seen[k] {
			continue
		}
		seen[k] = true
		top := !strings.Contains(k, ".")
		if top && strings.Contains(doc, "`"+k+".") {
			continue // a section whose keys have rows of their own
		}
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/configuration.md has no row for `%s`", k)
		}
	}
}
