package modbus

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// probeTable parses Probe's output into start address → type → the four byte-order columns.
func probeTable(t *testing.T, out string) map[string]map[string][]string {
	t.Helper()
	blocks := map[string]map[string][]string{}
	var cur map[string][]string
	for _, line := range strings.Split(out, "\n")[3:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if len(f) > 5 {
			cur = map[string][]string{}
			blocks[f[0]] = cur
		}
		if cur == nil {
			t.Fatalf("row before any address: %q", line)
		}
		cur[f[len(f)-5]] = f[len(f)-4:]
	}
	return blocks
}

func TestProbe(t *testing.T) {
	words := []uint16{0x42F6, 0xE979, 0xE979, 0x42F6, 0x0001, 0xFFFE}
	long := make([]uint16, 130)
	for i := range long {
		long[i] = uint16(i)
	}
	srv := startServer(t, &registerImage{Units: map[byte]*unitImage{
		4: {Holding: map[uint16][]uint16{10: words}, Input: map[uint16][]uint16{0: long}},
	}})
	var out bytes.Buffer
	err := Probe(t.Context(), ProbeConfig{
		Controller: srv.controller(), SlaveID: 4, Address: 11, Count: 6, AddressBase: 1, Timeout: time.Second,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Log("\n" + text)
	if !strings.HasPrefix(text, srv.controller()+", slave 4, holding registers, address 10..15 (register 11..16)\n") {
		t.Errorf("header: %q", strings.SplitN(text, "\n", 2)[0])
	}
	if strings.Contains(text, " \n") {
		t.Error("output has trailing spaces")
	}
	tab := probeTable(t, text)
	if len(tab) != 6 {
		t.Fatalf("%d blocks, want one per start register (6)", len(tab))
	}
	col := map[string]int{"ABCD": 0, "CDAB": 1, "BADC": 2, "DCBA": 3}
	checks := []struct{ start, typ, order, want string }{
		{"10", "FLOAT32", "ABCD", "123.456"}, // 42F6 E979
		{"12", "FLOAT32", "CDAB", "123.456"}, // E979 42F6: low word first
		{"10", "INT16", "ABCD", "17142"},
		{"10", "INT16", "BADC", "-2494"}, // F642
		{"14", "UINT32", "ABCD", "131070"},
		{"14", "INT32", "CDAB", "-131071"}, // FFFE 0001
		{"15", "INT16", "ABCD", "-2"},
		{"10", "UINT64", "ABCD", "4825300760591418102"}, // exact, not rounded through a float64
	}
	for _, c := range checks {
		if got := tab[c.start][c.typ]; len(got) != 4 || got[col[c.order]] != c.want {
			t.Errorf("address %s %s %s = %v, want %s", c.start, c.typ, c.order, got, c.want)
		}
	}
	if _, ok := tab["13"]["INT64"]; ok {
		t.Error("64-bit row at address 13 with only three registers left")
	}
	if _, ok := tab["15"]["INT32"]; ok {
		t.Error("32-bit row at the last register")
	}

	// More than 125 registers take several reads; base 0 shows no register column.
	before := srv.served()
	out.Reset()
	if err := Probe(t.Context(), ProbeConfig{Controller: srv.controller(), SlaveID: 4, Register: "input", Count: 130}, &out); err != nil {
		t.Fatal(err)
	}
	if n := srv.served() - before; n != 2 {
		t.Errorf("130 registers took %d reads, want 2", n)
	}
	tab = probeTable(t, out.String())
	if got := tab["129"]["UINT16"]; len(got) != 4 || got[0] != "129" {
		t.Errorf("last input register: %v", got)
	}
	if strings.Contains(out.String(), "register ") {
		t.Error("address base 0 output mentions register numbers")
	}
}

func TestProbeException(t *testing.T) {
	srv := startServer(t, &registerImage{Units: map[byte]*unitImage{4: {Holding: map[uint16][]uint16{0: {1}}}}})
	var out bytes.Buffer
	err := Probe(t.Context(), ProbeConfig{
		Controller: srv.controller(), SlaveID: 4, Address: 100, Count: 2, AddressBase: 1, Timeout: time.Second,
	}, &out)
	want := "modbus exception 2 (illegal data address): slave 4, holding address 99..100 (register 100..101)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	if err := Probe(t.Context(), ProbeConfig{Controller: srv.controller(), Register: "coil"}, &out); err == nil {
		t.Error("probe of coils accepted")
	}
}
