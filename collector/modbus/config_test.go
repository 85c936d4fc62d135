package modbus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// edgeFile is how the edge embeds bus configs: a list under "modbus", validated with its path.
type edgeFile struct {
	Modbus []Config `yaml:"modbus"`
}

func (f *edgeFile) Validate(p *config.Problems) {
	for i := range f.Modbus {
		f.Modbus[i].Validate(p, fmt.Sprintf("modbus[%d]", i))
	}
}

const goodBus = `modbus:
  - name: gw-1
    controller: tcp://10.0.0.5:502
    meters:
      - meter: M01
        slave_id: 1
        points:
          - {name: total, address: 0, type: UINT32, scale: 0.01, unit: m3}
          - {name: flow, address: 2, type: FLOAT32, byte_order: CDAB, unit: m3/h}
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every line must appear in the error; none means valid
	}{
		{name: "valid", yaml: goodBus},
		{
			name: "bad byte order",
			yaml: strings.Replace(goodBus, "byte_order: CDAB", "byte_order: XYZ", 1),
			want: []string{`edge.yaml:9: modbus[0].meters[0].points[1].byte_order: "XYZ" is not one of ABCD, CDAB, BADC, DCBA`},
		},
		{
			name: "bad type",
			yaml: strings.Replace(goodBus, "type: FLOAT32", "type: FLOAT16", 1),
			want: []string{`modbus[0].meters[0].points[1].type: "FLOAT16" is not one of INT16, UINT16, INT32, UINT32, INT64, UINT64, FLOAT32, FLOAT64, BOOL`},
		},
		{
			name: "bad register table",
			yaml: strings.Replace(goodBus, "{name: total, ", "{name: total, register: holdings, ", 1),
			want: []string{`modbus[0].meters[0].points[0].register: "holdings" is not one of holding, input, coil, discrete`},
		},
		{
			name: "address overflow",
			yaml: strings.Replace(goodBus, "address: 2, type: FLOAT32", "address: 65535, type: FLOAT32", 1),
			want: []string{`modbus[0].meters[0].points[1].address: 65535 plus the 2 registers of FLOAT32 ends at protocol address 65536, beyond 65535`},
		},
		{
			name: "duplicate point",
			yaml: strings.Replace(goodBus, "{name: flow,", "{name: total,", 1),
			want: []string{`modbus[0].meters[0].points[1].name: "total" is already the name of points[0]`},
		},
		{
			name: "address base 1 without register 0",
			yaml: strings.Replace(goodBus, "    meters:", "    address_base: 1\n    meters:", 1),
			want: []string{`modbus[0].meters[0].points[0].address: 0 is not a register number: with address_base 1, register 1 is protocol address 0`},
		},
		{
			name: "type missing on a holding register",
			yaml: strings.Replace(goodBus, "address: 0, type: UINT32,", "address: 0,", 1),
			want: []string{`modbus[0].meters[0].points[0].type: is required for holding registers`},
		},
		{
			name: "coil with a numeric type",
			yaml: strings.Replace(goodBus, "{name: total, ", "{name: total, register: coil, ", 1),
			want: []string{`modbus[0].meters[0].points[0].type: UINT32 for a coil: coils and discrete inputs are BOOL`},
		},
		{
			name: "float64 wider than max_registers",
			yaml: strings.Replace(strings.Replace(goodBus, "type: FLOAT32", "type: FLOAT64", 1), "    meters:", "    max_registers: 2\n    meters:", 1),
			want: []string{`modbus[0].meters[0].points[1].type: FLOAT64 needs 4 registers but max_registers is 2`},
		},
		{
			name: "serial slave 0",
			yaml: strings.Replace(strings.Replace(goodBus, "tcp://10.0.0.5:502", "/dev/ttyUSB0", 1), "slave_id: 1", "slave_id: 0", 1),
			want: []string{`modbus[0].meters[0].slave_id: 0 is outside 1..247`},
		},
		{
			name: "unknown transport and bad controller",
			yaml: strings.Replace(goodBus, "    controller: tcp://10.0.0.5:502", "    transport: udp\n    controller: 10.0.0.5", 1),
			want: []string{`modbus[0].transport: "udp" is not one of tcp, rtu, rtu_over_tcp`},
		},
		{
			name: "rtu over tcp needs a tcp controller",
			yaml: strings.Replace(goodBus, "    controller: tcp://10.0.0.5:502", "    transport: rtu_over_tcp\n    controller: /dev/ttyS0", 1),
			want: []string{`modbus[0].controller: "/dev/ttyS0" is not tcp://host:port`},
		},
		{
			name: "bad serial settings",
			yaml: strings.Replace(goodBus, "    controller: tcp://10.0.0.5:502", "    controller: /dev/ttyUSB0\n    baud_rate: 9601\n    parity: X\n    stop_bits: 3", 1),
			want: []string{
				`modbus[0].baud_rate: 9601 is not a standard baud rate`,
				`modbus[0].parity: "X" is not one of N, E, O`,
				`modbus[0].stop_bits: 3 is not 1 or 2`,
			},
		},
		{
			name: "every problem at once",
			yaml: strings.Replace(strings.Replace(strings.Replace(goodBus, "byte_order: CDAB", "byte_order: XYZ", 1),
				"name: gw-1", "name: ''", 1), "meter: M01", "meter: M/01", 1),
			want: []string{
				`modbus[0].name: is required`,
				`modbus[0].meters[0].meter: "M/01" is not a valid meter id`,
				`modbus[0].meters[0].points[1].byte_order: "XYZ"`,
			},
		},
		{
			name: "unknown key",
			yaml: strings.Replace(goodBus, "    meters:", "    max_gaps: 3\n    meters:", 1),
			want: []string{`edge.yaml:4: modbus[0].max_gaps: unknown key (did you mean "max_gap"?)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f edgeFile
			err := config.Parse("edge.yaml", []byte(tt.yaml), &f)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if len(ce.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(tt.want), err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := faultConfig("tcp://127.0.0.1:502")
	cfg.Meters[0].Points[0].ByteOrder = "XYZ"
	_, err := New(cfg, "s", Options{})
	if err == nil || !strings.Contains(err.Error(), `meters[0].points[0].byte_order: "XYZ" is not one of`) {
		t.Fatalf("New with a bad byte order: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{Controller: "/dev/ttyUSB0", Meters: []Meter{{Meter: "m", SlaveID: 1, Points: []Point{
		{Name: "a", Address: 1, Type: "float32", ByteOrder: "cdab"},
		{Name: "b", Register: "Coil", Address: 1},
	}}}}
	cfg.Default()
	want := Config{
		Transport: TransportRTU, Controller: "/dev/ttyUSB0", BaudRate: 9600, DataBits: 8, Parity: "N", StopBits: 1,
		Interval: 10 * time.Second, Timeout: time.Second, MaxRegisters: 125, MaxGap: 10,
	}
	got := cfg
	got.Meters = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bus defaults:\n got %+v\nwant %+v", got, want)
	}
	a, b := cfg.Meters[0].Points[0], cfg.Meters[0].Points[1]
	if a.Register != "holding" || a.Type != "FLOAT32" || a.ByteOrder != "CDAB" || a.Scale != 1 {
		t.Errorf("point a defaults: %+v", a)
	}
	if b.Register != "coil" || b.Type != "BOOL" || b.ByteOrder != "ABCD" {
		t.Errorf("point b defaults: %+v", b)
	}
	// The caller's config is not changed by New, which defaults a copy.
	orig := faultConfig("tcp://127.0.0.1:502")
	if _, err := New(orig, "s", Options{}); err != nil {
		t.Fatal(err)
	}
	if orig.Meters[0].Points[0].ByteOrder != "" || orig.Meters[0].Points[0].Scale != 0 {
		t.Errorf("New changed the caller's points: %+v", orig.Meters[0].Points[0])
	}
}
