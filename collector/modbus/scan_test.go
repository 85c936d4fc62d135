package modbus

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestProbeCountPastTheEnd: a slave with registers 0..3 only, probed with the default count of
// 10, prints the four registers and a hint instead of failing.
func TestProbeCountPastTheEnd(t *testing.T) {
	srv := startServer(t, &registerImage{Units: map[byte]*unitImage{
		2: {Holding: map[uint16][]uint16{0: {0x0001, 0x86A0, 0x4148, 0x0000}}},
	}})
	var out bytes.Buffer
	err := Probe(t.Context(), ProbeConfig{Controller: srv.controller(), SlaveID: 2, Timeout: time.Second}, &out)
	if err != nil {
		t.Fatalf("probe of 10 registers on a 4-register slave: %v", err)
	}
	text := out.String()
	t.Log("\n" + text)
	if !strings.Contains(text, "address 0..3") || !strings.Contains(text, "100000") {
		t.Errorf("the four registers are not shown:\n%s", text)
	}
	if !strings.Contains(text, "note: register 4 ") || !strings.Contains(text, "try --count 4") {
		t.Errorf("no hint about the device's end:\n%s", text)
	}
	// A first register that does not exist says so, with no doubled prefix.
	err = Probe(t.Context(), ProbeConfig{Controller: srv.controller(), SlaveID: 2, Address: 50, Count: 2, Timeout: time.Second}, &out)
	var rerr *RequestError
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "--scan") || strings.HasPrefix(err.Error(), "probe:") {
		t.Errorf("probe of a missing register: %v", err)
	}
}

// TestScan maps a device with gaps in two tables and finds its totalizer (a UINT32 in CDAB at
// 0.01 m³ that counts up between the reads) and its flow (a FLOAT32).
func TestScan(t *testing.T) {
	srv := startServer(t, &registerImage{Units: map[byte]*unitImage{
		3: {
			// total 1 234 567.89 m³ as UINT32 CDAB ×0.01: 123456789 = 0x075BCD15
			Holding: map[uint16][]uint16{0: {0xCD15, 0x075B}, 7: {1, 2, 3}, 200: {9}},
			// flow 12.5 m³/h as FLOAT32 ABCD
			Input: map[uint16][]uint16{10: {0x4148, 0x0000}},
		},
	}})
	var out bytes.Buffer
	reads := 0
	cfg := ScanConfig{
		ProbeConfig: ProbeConfig{Controller: srv.controller(), SlaveID: 3, Timeout: time.Second},
		From:        0, To: 249, Wait: time.Millisecond,
		betweenReads: func() {
			reads = srv.served()
			srv.mu.Lock()
			srv.holding[3][0] = 0xCD15 + 3 // the totalizer counts on: 0.03 m³
			srv.mu.Unlock()
		},
	}
	if err := Scan(t.Context(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{
		"holding registers 0..1 answer (2)",
		"holding registers 7..9 answer (3)",
		"holding registers 200 answer (1)",
		"input registers 10..11 answer (2)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	totals := section(text, "totalizer candidates")
	if first := firstLine(totals); !strings.Contains(first, "holding 0 UINT32 CDAB: 123456789 then 123456792") {
		t.Errorf("best totalizer candidate %q, want holding 0 UINT32 CDAB", first)
	}
	flows := section(text, "flow candidates")
	if first := firstLine(flows); !strings.Contains(first, "input 10 FLOAT32 ABCD: 12.5") {
		t.Errorf("best flow candidate %q, want input 10 FLOAT32 ABCD", first)
	}
	if !strings.Contains(text, "1234567.89") {
		t.Error("no ×0.01 column shows 1234567.89")
	}
	// Blocks shrink on exception 2: far fewer reads than one per register of the two tables.
	// At best one read per missing register, plus a few to narrow down each edge of a gap.
	if reads == 0 || reads > 560 {
		t.Errorf("%d reads to scan 2 × 250 registers", reads)
	}
}

func section(text, title string) string {
	_, after, _ := strings.Cut(text, title)
	if i := strings.Index(after, "\n\n"); i >= 0 {
		after = after[:i]
	}
	return after
}

func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return ""
	}
	return strings.TrimSpace(lines[1])
}
