package main

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigsLoad checks every example under configs/ the way an operator would.
func TestConfigsLoad(t *testing.T) {
	var files []string
	filepath.WalkDir("../../configs", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 4 {
		t.Fatalf("found only %v under configs/", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{"check", f}, &out, &errb); code != 0 {
				t.Fatalf("aqualoop check %s exited %d:\n%s", f, code, errb.String())
			}
			if !strings.Contains(out.String(), "ok") {
				t.Errorf("output %q", out.String())
			}
		})
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/bad-platform.yaml", []string{
			"bad-platform.yaml:4: ingest.mqtt.servers[0]:",
			"bad-platform.yaml:9: sqlite.journal: unknown key",
		}},
		{"testdata/bad-edge-types.yaml", []string{
			`bad-edge-types.yaml:11: modbus[0].interval: "1min" is not a duration such as 15s, 2m or 1h30m`,
			`bad-edge-types.yaml:14: modbus[0].meters[0].slave_id: 300 is not a whole number from 0 to 255`,
			`bad-edge-types.yaml:18: modbus[0].meters[0].points[0].data_type: unknown key (did you mean "type"?)`,
			`bad-edge-types.yaml:16: modbus[0].meters[0].points[0].type: is required for holding registers`,
			`bad-edge-types.yaml:22: modbus[0].meters[0].points[1].type: "FLOAT" is not one of`,
			`bad-edge-types.yaml:26: opcua[0].republish: unknown key (did you mean "republish_interval"?)`,
			`bad-edge-types.yaml:30: opcua[0].meters[0].nodes[0].scale: "ten" is not a number`,
		}},
		{"testdata/bad-alerts.yaml", []string{
			`bad-alerts.yaml:3: rules[0].kind: unknown rule kind "leakage"`,
			`bad-alerts.yaml:5: silences[0].matchers[0]: matcher meter=~"(M01": bad regular expression`,
		}},
		{"testdata/bad-edge.yaml", []string{
			`bad-edge.yaml:2: edge: "edge 1" is not a valid edge id`,
			`bad-edge.yaml:13: modbus[0].meters[0].points[0].byte_order: "XYZ"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{"check", "--config", tt.file}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

func TestCheckPlatformProblemsAfterDecoding(t *testing.T) {
	// Without the unknown key, the same file reports its validation problems, all at once.
	var out, errb bytes.Buffer
	code := run([]string{"check", "--kind", "platform", "testdata/bad-platform-valid-keys.yaml"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errb.String())
	}
	for _, w := range []string{
		`bad-platform-valid-keys.yaml:4: ingest.mqtt.servers[0]: "http//broker" is not a URL`,
		`bad-platform-valid-keys.yaml:5: ingest.mqtt.qos: 3 is not 0, 1 or 2`,
		`bad-platform-valid-keys.yaml:6: ingest.sites[0]: "demo/+" is neither a site id nor +`,
	} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
}
