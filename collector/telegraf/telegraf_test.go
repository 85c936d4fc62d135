package telegraf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/edge"
	"github.com/aqualoop/aqualoop/collector/modbus"
)

// convert runs a testdata conf through Convert and YAML and loads the result as the edge would.
func convert(t *testing.T, name string) (*Result, edge.Config, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(name, data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var cfg edge.Config
	if err := config.Parse("edge.yaml", out, &cfg); err != nil {
		t.Fatalf("converted file does not pass the check:\n%v\n%s", err, out)
	}
	return res, cfg, string(out)
}

func point(t *testing.T, cfg edge.Config, bus, meter, name string) modbus.Point {
	t.Helper()
	for _, b := range cfg.Modbus {
		for _, m := range b.Meters {
			for _, p := range m.Points {
				if b.Name == bus && m.Meter == meter && p.Name == name {
					return p
				}
			}
		}
	}
	t.Fatalf("no point %s/%s/%s", bus, meter, name)
	return modbus.Point{}
}

func hasNote(res *Result, parts ...string) bool {
	for _, n := range res.Notes {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(n, p)
		}
		if all {
			return true
		}
	}
	return false
}

func TestRegisterStyle(t *testing.T) {
	res, cfg, out := convert(t, "register-style.conf")
	if cfg.Edge != "wtp-edge-01" || cfg.MQTT.Servers[0] != "tcp://broker.plant.local:1883" {
		t.Errorf("edge %q, mqtt %v", cfg.Edge, cfg.MQTT.Servers)
	}
	b := cfg.Modbus[0]
	if b.Name != "Reuse-Skid" || b.Interval.String() != "15s" || b.Timeout.String() != "2s" ||
		b.PauseBetweenRequests.String() != "50ms" || !b.CloseAfterPoll || b.Meters[0].SlaveID != 3 {
		t.Errorf("bus %+v", b)
	}
	tests := []struct {
		name, register, typ, order string
		address                    uint16
		scale                      float64
	}{
		{"total", "holding", "UINT32", "CDAB", 100, 0.01},
		{"flow", "holding", "FLOAT32", "ABCD", 102, 1},
		{"level", "holding", "INT16", "ABCD", 110, 0.1},
		{"energy", "holding", "FLOAT64", "DCBA", 120, 1},
		{"pressure", "input", "UINT16", "BADC", 5, 0.001},
		{"legacy", "input", "UINT32", "ABCD", 6, 0.01},
		{"pump_run", "coil", "BOOL", "ABCD", 0, 1},
		{"leak-alarm", "discrete", "BOOL", "ABCD", 4, 1},
	}
	for _, tt := range tests {
		p := point(t, cfg, "Reuse-Skid", "Reuse-Skid", tt.name)
		if p.Register != tt.register || p.Type != tt.typ || p.ByteOrder != tt.order || p.Address != tt.address || p.Scale != tt.scale {
			t.Errorf("%s = %+v, want %s %s %s @%d ×%v", tt.name, p, tt.register, tt.typ, tt.order, tt.address, tt.scale)
		}
	}
	for _, want := range [][]string{
		{"holding_registers[4]", "STRING", "left out"},
		{"input_registers[1]", "deprecated fixed-point"},
		{"busy_retries", "not mapped"},
		{"site", "placeholder"},
	} {
		if !hasNote(res, want...) {
			t.Errorf("no note with %q in %q", want, res.Notes)
		}
	}
	if !strings.HasPrefix(out, "# edge.yaml converted") || !strings.Contains(out, "#   - inputs.modbus[0].holding_registers[4]") {
		t.Errorf("notes missing from the file's comment:\n%s", out)
	}
}

func TestRequestStyle(t *testing.T) {
	res, cfg, _ := convert(t, "request-style.conf")
	if len(cfg.Modbus) != 1 {
		t.Fatalf("%d buses, want 1 (the ASCII one is left out)", len(cfg.Modbus))
	}
	b := cfg.Modbus[0]
	if b.Transport != modbus.TransportRTUOverTCP || len(b.Meters) != 2 || b.Meters[0].Meter != "FT-201" ||
		b.Meters[0].SlaveID != 11 || b.Meters[1].Meter != "FT-202" || b.Meters[1].SlaveID != 12 {
		t.Fatalf("bus %+v", b)
	}
	if p := point(t, cfg, "gateway-b", "FT-201", "total"); p.Type != "UINT32" || p.ByteOrder != "CDAB" || p.Scale != 0.001 || p.Address != 0 {
		t.Errorf("FT-201 total %+v", p)
	}
	if p := point(t, cfg, "gateway-b", "FT-202", "total"); p.Register != "input" || p.Type != "INT64" || p.Address != 30 || p.Scale != 0.1 {
		t.Errorf("FT-202 total %+v", p)
	}
	if p := point(t, cfg, "gateway-b", "FT-202", "valve_open"); p.Register != "coil" || p.Address != 3 {
		t.Errorf("FT-202 valve %+v", p)
	}
	if len(b.Meters[0].Points) != 2 {
		t.Errorf("FT-201 points %+v: the omitted status and the STRING label must be left out", b.Meters[0].Points)
	}
	for _, want := range [][]string{
		{"request[0].fields[3]", "STRING"},
		{"transmission_mode", "ASCII", "left out"},
		{"tags", "not mapped"},
	} {
		if !hasNote(res, want...) {
			t.Errorf("no note with %q in %q", want, res.Notes)
		}
	}
}

func TestOPCUA(t *testing.T) {
	res, cfg, out := convert(t, "opcua.conf")
	if len(cfg.OPCUA) != 2 {
		t.Fatalf("%d servers", len(cfg.OPCUA))
	}
	s := cfg.OPCUA[0]
	if s.SecurityPolicy != "Basic256Sha256" || s.SecurityMode != "SignAndEncrypt" || s.Auth != "UserName" ||
		s.Username != "telegraf" || s.PasswordFile == "" || s.Mode != "poll" || s.Timestamp != "server" || s.Timeout.String() != "10s" {
		t.Errorf("server %+v", s)
	}
	if strings.Contains(out, "not-in-yaml") {
		t.Error("the password was copied into edge.yaml")
	}
	if len(s.Meters) != 2 || s.Meters[0].Nodes[0].NodeID != "ns=2;s=Intake.FT100.Total" || s.Meters[1].Meter != "FT-300" ||
		s.Meters[1].Nodes[1].NodeID != "ns=3;i=1002" || len(s.Meters[0].Nodes) != 2 {
		t.Errorf("meters %+v", s.Meters)
	}
	if cfg.OPCUA[1].Meters[0].Nodes[0].NodeID != "i=2258" {
		t.Errorf("namespace 0 node %+v", cfg.OPCUA[1].Meters[0].Nodes[0])
	}
	for _, want := range [][]string{
		{"nodes[2]", "identifier_type"},
		{"Basic128Rsa15", "not supported"},
		{"gather"},
		{"password", "password_file"},
	} {
		if !hasNote(res, want...) {
			t.Errorf("no note with %q in %q", want, res.Notes)
		}
	}
}

func TestNoInputs(t *testing.T) {
	if _, err := Convert("x.conf", []byte("[agent]\ninterval = \"10s\"\n")); err == nil || !strings.Contains(err.Error(), "no [[inputs.modbus]]") {
		t.Errorf("err = %v", err)
	}
	if _, err := Convert("x.conf", []byte("[[inputs.modbus]\n")); err == nil || !strings.Contains(err.Error(), "read x.conf") {
		t.Errorf("err = %v", err)
	}
}
