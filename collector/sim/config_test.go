package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDemoPlantConfigLoads(t *testing.T) {
	c, err := LoadConfig("../../configs/demo/plant.yaml")
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if c.UpdateInterval != 250*time.Millisecond || c.Profiles.Office.Ramp != time.Hour {
		t.Errorf("durations decoded as %v and %v", c.UpdateInterval, c.Profiles.Office.Ramp)
	}
	p, err := New(c, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ms := p.Meters()
	if len(ms) != 16 {
		t.Fatalf("%d meters, want 16", len(ms))
	}
	byID := map[string]MeterInfo{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	modbus := "M01 M02 M03 M04 M05 M07 M10 M11 M16"
	for _, m := range ms {
		want := ProtocolOPCUA
		if strings.Contains(modbus, m.ID) {
			want = ProtocolModbus
		}
		if m.Protocol != want {
			t.Errorf("%s served over %s, want %s", m.ID, m.Protocol, want)
		}
	}
	if m := byID["M01"]; m.SlaveID != 1 || m.RegisterMax != ModbusRegisterMax || m.FlowByteOrder != "CDAB" || m.TotalByteOrder != "ABCD" {
		t.Errorf("M01 = %+v", m)
	}
	if m := byID["M12"]; m.RegisterMax != 1e8 || m.TotalNode != "nsu=urn:aqualoop:sim;s=M12.total" || m.Kind != "circulating" {
		t.Errorf("M12 = %+v", m)
	}
}

func TestBadConfigsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/bad-keys.yaml", []string{"bad-keys.yaml:5: modbus.lisen: unknown key"}},
		{"testdata/bad-values.yaml", []string{
			`bad-values.yaml:1: site: "demo plant" is not a valid site id`,
			`bad-values.yaml:2: timezone: "Mars/Olympus" is not a known time zone`,
			`bad-values.yaml:3: time_scale: -5 must be above 0`,
			`bad-values.yaml:4: update_interval: 1ms is below the 10ms minimum`,
			`bad-values.yaml:6: opcua.listen: "localhost" is not host:port`,
			`bad-values.yaml:7: opcua.security_policies[1]: "Basic128" is not one of None, Basic256Sha256`,
			`bad-values.yaml:9: profiles.office.end_hour: 8 must be after start_hour (9)`,
			`bad-values.yaml:11: cooling.cycles: 1 cycles of concentration must be above 1`,
			`bad-values.yaml:13: meters[0].slave_id: 300 is not a Modbus unit id (1 to 247)`,
			`bad-values.yaml:14: meters[1].slave_id: 4 is already the unit id of M04`,
			`bad-values.yaml:15: meters[2].id: "M17" is not a meter of the plant`,
			`bad-values.yaml:16: meters[3].total_register: registers 1..2 overlap the flow rate's 0..1`,
			`bad-values.yaml:17: meters[4].id: meter "M01" is listed twice`,
			`bad-values.yaml:18: meters[5].initial_total: 2000 m³ is not below register_max (1000 m³)`,
			`bad-values.yaml:19: meters[6].slave_id: applies to modbus meters only, and M13 is served over opcua`,
		}},
		{"testdata/infeasible.yaml", []string{"infeasible.yaml:3: network: these flows would be negative", "cooling_well (M11)"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadConfig(tt.file)
			if err == nil {
				t.Fatal("LoadConfig accepted a bad file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	c := testConfig(t)
	c.Noise = ptr(-1.0)
	c.Meters = []MeterConfig{{ID: "M06", Protocol: "bacnet"}}
	_, err := New(c, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "noise: -1") || !strings.Contains(err.Error(), `meters[0].protocol: "bacnet"`) {
		t.Fatalf("New error = %v, want noise and meters[0].protocol named", err)
	}
}

// An explicit 0 in a file stays 0; keys left out, even inside a group that is present, keep
// their defaults.
func TestExplicitZerosKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plant.yaml")
	data := "leak: 0\nnoise: 0\nnetwork:\n  office: 0\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if *c.Leak != 0 || *c.Noise != 0 || c.Network.Office != 0 {
		t.Errorf("leak %v noise %v office %v, want all 0", *c.Leak, *c.Noise, c.Network.Office)
	}
	if c.Network.WS1Supply != 40 || c.Cooling.Circulating != 5000 || c.TimeScale != 1 {
		t.Errorf("defaults lost: ws1_supply %v circulating %v time_scale %v", c.Network.WS1Supply, c.Cooling.Circulating, c.TimeScale)
	}
	p, err := New(c, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tr := p.Truth(p.Start(), p.Start().Add(time.Hour))
	if tr.VL != 0 || tr.Flows["office_supply"] != 0 {
		t.Errorf("leak %v and office %v m³, want 0", tr.VL, tr.Flows["office_supply"])
	}
}
