package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/internal/testenv"
)

// TestHelpOnEveryCommand: -h and --help print the command's usage on stdout and exit 0, and the
// defaults the help states are the ones the code uses.
func TestHelpOnEveryCommand(t *testing.T) {
	for _, cmd := range []string{"collect", "check", "probe", "browse", "import-telegraf"} {
		for _, flag := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			if code := run([]string{cmd, flag}, &stdout, &stderr); code != 0 {
				t.Errorf("%s %s: exit %d, stderr %q", cmd, flag, code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "usage: aqualoop-edge "+cmd) {
				t.Errorf("%s %s: stdout %q", cmd, flag, stdout.String())
			}
		}
	}
	var stdout, stderr bytes.Buffer
	run([]string{"probe", "-h"}, &stdout, &stderr)
	for _, want := range []string{`serial parity N, E or O (default "N")`, "(default 9600)", "(default 10)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("probe help lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "aqualoop-edge ") || !strings.Contains(stdout.String(), "go1.") {
		t.Errorf("version: exit %d, %q", code, stdout.String())
	}
}

// TestCheckSameAsPlatform: aqualoop-edge check prints the same file:line: key.path: message lines
// as aqualoop check for the same file, every problem in one run.
func TestCheckSameAsPlatform(t *testing.T) {
	file := "../aqualoop/testdata/bad-edge-types.yaml"
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", file}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{
		file + `:11: modbus[0].interval: "1min" is not a duration such as 15s, 2m or 1h30m`,
		file + `:14: modbus[0].meters[0].slave_id: 300 is not a whole number from 0 to 255`,
		file + `:18: modbus[0].meters[0].points[0].data_type: unknown key (did you mean "type"?)`,
		file + `:22: modbus[0].meters[0].points[1].type: "FLOAT" is not one of`,
		file + `:26: opcua[0].republish: unknown key (did you mean "republish_interval"?)`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", "../../configs/demo/edge.yaml"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ok (edge)") {
		t.Errorf("demo edge.yaml: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	if code := run([]string{"check"}, &stdout, &stderr); code != 2 {
		t.Errorf("check without a file: exit %d, want 2", code)
	}
}

// TestImportTelegrafThenCheck: the converted file passes aqualoop-edge check.
func TestImportTelegrafThenCheck(t *testing.T) {
	for _, conf := range []string{"register-style.conf", "request-style.conf", "opcua.conf"} {
		var stdout, stderr bytes.Buffer
		path := filepath.Join("../../collector/telegraf/testdata", conf)
		if code := run([]string{"import-telegraf", path}, &stdout, &stderr); code != 0 {
			t.Fatalf("import-telegraf %s: exit %d\n%s", conf, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "note: ") || strings.Contains(stderr.String(), "needs fixing") {
			t.Errorf("%s: stderr %q", conf, stderr.String())
		}
		out := filepath.Join(t.TempDir(), "edge.yaml")
		if err := os.WriteFile(out, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		stderr.Reset()
		var checkOut bytes.Buffer
		if code := run([]string{"check", out}, &checkOut, &stderr); code != 0 {
			t.Errorf("check of the converted %s: exit %d\n%s\n%s", conf, code, stderr.String(), stdout.String())
		}
	}
}

// TestProbeAndBrowseThePlant runs probe --scan against the simulator's Modbus gateway and browse
// against its OPC UA server.
func TestProbeAndBrowseThePlant(t *testing.T) {
	plant := testenv.Plant(t, nil)
	var stdout, stderr bytes.Buffer
	var slave, node string
	for _, m := range plant.Meters() {
		if m.SlaveID != 0 && slave == "" {
			slave = strconv.Itoa(m.SlaveID)
		}
		if m.TotalNode != "" && node == "" {
			node = m.TotalNode
		}
	}
	args := []string{"probe", "--controller", "tcp://" + plant.ModbusAddr(), "--slave", slave, "--scan", "--from", "0", "--to", "19", "--wait", "1500ms"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("probe --scan: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "holding registers 0..") || !strings.Contains(stdout.String(), "totalizer candidates") {
		t.Errorf("scan output:\n%s", stdout.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"browse", "--endpoint", plant.OPCUAEndpoint(), "--timeout", (5 * time.Second).String()}, &stdout, &stderr); code != 0 {
		t.Fatalf("browse: exit %d\n%s", code, stderr.String())
	}
	_, ident, _ := strings.Cut(node, ";")
	if !strings.Contains(stdout.String(), "namespaces:") || ident == "" || !strings.Contains(stdout.String(), ident) {
		t.Errorf("browse output lacks the plant's node %s:\n%s", node, stdout.String())
	}
}
