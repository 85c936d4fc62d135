package modbus

import (
	"math"
	"slices"
	"testing"
)

// TestDecodeByteOrders pins the meaning of the four orders with values worked out by hand:
// 123.456 as FLOAT32 is 0x42F6E979, -2 as INT16 is 0xFFFE.
func TestDecodeByteOrders(t *testing.T) {
	tests := []struct {
		name  string
		regs  []uint16
		typ   string
		order string
		want  float64
	}{
		{"float32 ABCD big-endian", []uint16{0x42F6, 0xE979}, "FLOAT32", "ABCD", float64(float32(123.456))},
		{"float32 CDAB low word first", []uint16{0xE979, 0x42F6}, "FLOAT32", "CDAB", float64(float32(123.456))},
		{"float32 BADC bytes swapped in words", []uint16{0xF642, 0x79E9}, "FLOAT32", "BADC", float64(float32(123.456))},
		{"float32 DCBA little-endian", []uint16{0x79E9, 0xF642}, "FLOAT32", "DCBA", float64(float32(123.456))},
		{"int16 AB", []uint16{0xFFFE}, "INT16", "ABCD", -2},
		{"int16 BA", []uint16{0xFEFF}, "INT16", "BADC", -2},
		{"int16 CDAB is AB", []uint16{0xFFFE}, "INT16", "CDAB", -2},
		{"uint32 CDAB", []uint16{0x0002, 0x0001}, "UINT32", "CDAB", 0x00010002},
		{"uint64 ABCD", []uint16{0x0001, 0x0002, 0x0003, 0x0004}, "UINT64", "ABCD", 0x0001000200030004},
		{"uint64 CDAB reverses all four words", []uint16{0x0004, 0x0003, 0x0002, 0x0001}, "UINT64", "CDAB", 0x0001000200030004},
		{"uint64 BADC", []uint16{0x0100, 0x0200, 0x0300, 0x0400}, "UINT64", "BADC", 0x0001000200030004},
		{"uint64 DCBA", []uint16{0x0400, 0x0300, 0x0200, 0x0100}, "UINT64", "DCBA", 0x0001000200030004},
		{"int64 negative", []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, "INT64", "ABCD", -1},
		{"float64 CDAB", []uint16{0x0000, 0x0000, 0x0000, 0x4059}, "FLOAT64", "CDAB", 100},
		{"lower-case names", []uint16{0x0000, 0x4059}, "float32", "cdab", float64(math.Float32frombits(0x40590000))},
		{"bool", []uint16{0x0100}, "BOOL", "ABCD", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.regs, tt.typ, tt.order)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Decode(%04X, %s, %s) = %v, want %v", tt.regs, tt.typ, tt.order, got, tt.want)
			}
			if tt.typ == "BOOL" {
				return
			}
			back, err := Encode(got, tt.typ, tt.order)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back, tt.regs) {
				t.Errorf("Encode(%v) = %04X, want %04X", got, back, tt.regs)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode([]uint16{1}, "FLOAT32", "ABCD"); err == nil {
		t.Error("FLOAT32 from one register decoded")
	}
	if _, err := Decode([]uint16{1, 2}, "FLOAT16", "ABCD"); err == nil {
		t.Error("unknown type decoded")
	}
	if _, err := Decode([]uint16{1, 2}, "FLOAT32", "ABDC"); err == nil {
		t.Error("unknown byte order decoded")
	}
	if _, err := Encode(1.5, "INT32", "ABCD"); err == nil {
		t.Error("1.5 encoded as INT32")
	}
	if _, err := Encode(70000, "UINT16", "ABCD"); err == nil {
		t.Error("70000 encoded as UINT16")
	}
	if _, err := Encode(0.1, "FLOAT32", "ABCD"); err == nil {
		t.Error("0.1 (not a float32) encoded as FLOAT32")
	}
}

// FuzzDecode feeds arbitrary register bytes through every type and order: decoding never panics,
// rejects short input, the raw bits survive a round trip through the byte order, and every value
// a type holds exactly survives Encode then Decode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x42, 0xF6, 0xE9, 0x79}, uint8(typeFloat32), uint8(orderCDAB))
	f.Add([]byte{0xFF, 0xFE}, uint8(typeInt16), uint8(orderBADC))
	f.Add([]byte{0x7F, 0xC0, 0, 0}, uint8(typeFloat32), uint8(orderABCD))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(typeUint64), uint8(orderDCBA))
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 1}, uint8(typeInt64), uint8(orderCDAB))
	f.Add([]byte{1}, uint8(typeFloat64), uint8(orderABCD))
	f.Fuzz(func(t *testing.T, data []byte, ti, oi uint8) {
		typ := dataType(ti % uint8(len(typeNames)))
		order := byteOrder(oi % uint8(len(orderNames)))
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		n := typ.width()
		v, err := Decode(regs, typ.String(), order.String())
		if len(regs) < n {
			if err == nil {
				t.Fatalf("%s from %d registers decoded to %v", typ, len(regs), v)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		raw := rawBits(data, n, order)
		if want := valueOf(typ, raw); !(v == want || math.IsNaN(v) && math.IsNaN(want)) {
			t.Fatalf("Decode = %v, raw path = %v", v, want)
		}
		back := make([]byte, 2*n)
		putBits(back, n, order, raw)
		if !slices.Equal(back, data[:2*n]) {
			t.Fatalf("bits round trip: % X → %X → % X", data[:2*n], raw, back)
		}
		if n == 1 {
			// 16-bit values only know AB and BA: word order does not apply.
			other := map[byteOrder]byteOrder{orderABCD: orderCDAB, orderCDAB: orderABCD, orderBADC: orderDCBA, orderDCBA: orderBADC}[order]
			if rawBits(data, 1, other) != raw {
				t.Fatalf("%s and %s differ on one register", order, other)
			}
		}
		if typ == typeBool || math.IsNaN(v) {
			return
		}
		if (typ == typeInt64 || typ == typeUint64) && math.Abs(v) >= 1<<53 {
			return // a float64 cannot carry every 64-bit integer beyond 2⁵³
		}
		enc, err := Encode(v, typ.String(), order.String())
		if err != nil {
			t.Fatalf("Encode(%v, %s): %v", v, typ, err)
		}
		if !slices.Equal(enc, regs[:n]) {
			t.Fatalf("Encode(Decode(%04X)) = %04X (%s %s, value %v)", regs[:n], enc, typ, order, v)
		}
	})
}
