package edge

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/collector/config"
)

// TestReferenceDocumentsEveryKey keeps docs/edge.md in step with the config structs: every key
// path an edge.yaml can hold has a row in the reference tables (with its type, default and
// meaning), and every key a row documents exists.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../docs/edge.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([a-z_\\[\\].]+)` \\|([^|\\n]*)\\|([^|\\n]*)\\|([^|\\n]*)\\|")
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		key := m[1]
		if !strings.Contains(key, ".") && !strings.Contains(key, "[") && !topLevel(key) {
			continue // a value table (transports, types, security), not a key
		}
		documented[key] = true
		for i, cell := range m[2:] {
			if strings.TrimSpace(cell) == "" && i != 1 {
				t.Errorf("docs/edge.md: key %s has an empty %s column", key, []string{"type", "default", "meaning"}[i])
			}
		}
	}
	keys := config.Keys(reflect.TypeFor[Config]())
	if len(keys) < 60 {
		t.Fatalf("only %d keys found in the config structs: %v", len(keys), keys)
	}
	t.Logf("%d keys in the config structs, %d documented", len(keys), len(documented))
	valid := map[string]bool{}
	for _, k := range keys {
		valid[k] = true
		if !documented[k] {
			t.Errorf("docs/edge.md does not document %s", k)
		}
	}
	for k := range documented {
		if !valid[k] {
			t.Errorf("docs/edge.md documents %s, which edge.yaml does not have", k)
		}
	}
	// Every example block of the reference must itself be a valid part of an edge.yaml: the
	// full examples are checked by loading them.
	for _, name := range []string{"modbus", "opcua"} {
		if !strings.Contains(string(data), "\n"+name+":\n") {
			t.Errorf("docs/edge.md has no example of %s", name)
		}
	}
}

func topLevel(key string) bool {
	switch key {
	case "site", "edge", "mqtt", "http", "spool", "modbus", "opcua":
		return true
	}
	return false
}

// TestReferenceExamplesLoad assembles the reference's top-level, mqtt-less examples into one file
// and loads it, so the documented keys are spelled as the loader reads them.
func TestReferenceExamplesLoad(t *testing.T) {
	data, err := os.ReadFile("../../docs/edge.md")
	if err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	doc.WriteString("mqtt: {servers: [\"tcp://127.0.0.1:1883\"]}\n")
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	for _, b := range blocks {
		text := b[1]
		// Fragments of a list (they begin indented) and the broker example (it points at files
		// this machine does not have) are shown for reading only.
		if strings.HasPrefix(text, " ") || strings.HasPrefix(text, "mqtt:") {
			continue
		}
		doc.WriteString(text)
	}
	text := strings.ReplaceAll(doc.String(), "    server_certificate: /etc/aqualoop-edge/scada-server.der\n", "")
	text = strings.ReplaceAll(text, "/etc/aqualoop-edge/opcua.password", os.DevNull)
	var cfg Config
	if err := config.Parse("docs/edge.md examples", []byte(text), &cfg); err != nil {
		t.Fatalf("the examples of docs/edge.md do not load:\n%v\n%s", err, text)
	}
	if len(cfg.Modbus) == 0 || len(cfg.OPCUA) == 0 || cfg.OPCUA[0].RepublishInterval.String() != "1m0s" {
		t.Errorf("examples loaded as %+v", cfg)
	}
}
