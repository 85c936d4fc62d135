package modbus

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// dataType is how a point's registers are interpreted.
type dataType uint8

const (
	typeInt16 dataType = iota
	typeUint16
	typeInt32
	typeUint32
	typeInt64
	typeUint64
	typeFloat32
	typeFloat64
	typeBool
)

var typeNames = [...]string{
	typeInt16: "INT16", typeUint16: "UINT16", typeInt32: "INT32", typeUint32: "UINT32",
	typeInt64: "INT64", typeUint64: "UINT64", typeFloat32: "FLOAT32", typeFloat64: "FLOAT64",
	typeBool: "BOOL",
}

func (t dataType) String() string { return typeNames[t] }

// width is the number of registers (or bits, for BOOL) a value of type t occupies.
func (t dataType) width() int {
	switch t {
	case typeInt32, typeUint32, typeFloat32:
		return 2
	case typeInt64, typeUint64, typeFloat64:
		return 4
	}
	return 1
}

func parseType(s string) (dataType, bool) {
	for i, n := range typeNames {
		if strings.EqualFold(n, s) {
			return dataType(i), true
		}
	}
	return 0, false
}

// byteOrder is the arrangement of a value's bytes over its registers, written as the letters of a
// big-endian 32-bit value ABCD. Two independent swaps describe all four: CDAB reverses the order
// of the words (low word first, the most common float layout), BADC swaps the two bytes inside
// every word, DCBA does both. The same swaps extend to 64-bit values (CDAB: the four words in
// reverse order) and reduce to AB / BA for 16-bit ones.
type byteOrder uint8

const (
	orderABCD byteOrder = iota
	orderCDAB
	orderBADC
	orderDCBA
)

var orderNames = [...]string{orderABCD: "ABCD", orderCDAB: "CDAB", orderBADC: "BADC", orderDCBA: "DCBA"}

func (o byteOrder) String() string { return orderNames[o] }

func (o byteOrder) wordSwap() bool { return o == orderCDAB || o == orderDCBA }
func (o byteOrder) byteSwap() bool { return o == orderBADC || o == orderDCBA }

func parseOrder(s string) (byteOrder, bool) {
	for i, n := range orderNames {
		if strings.EqualFold(n, s) {
			return byteOrder(i), true
		}
	}
	return 0, false
}

// rawBits assembles the first n registers of b (big-endian register bytes, as on the wire) into
// an integer whose most significant word comes first, undoing the byte order. len(b) must be at
// least 2n.
func rawBits(b []byte, n int, o byteOrder) uint64 {
	var v uint64
	for w := range n {
		src := w
		if o.wordSwap() {
			src = n - 1 - w
		}
		hi, lo := b[2*src], b[2*src+1]
		if o.byteSwap() {
			hi, lo = lo, hi
		}
		v = v<<16 | uint64(hi)<<8 | uint64(lo)
	}
	return v
}

// putBits is the inverse of rawBits: it lays the low 16·n bits of v into b in byte order o.
func putBits(b []byte, n int, o byteOrder, v uint64) {
	for w := n - 1; w >= 0; w-- {
		dst := w
		if o.wordSwap() {
			dst = n - 1 - w
		}
		hi, lo := byte(v>>8), byte(v)
		if o.byteSwap() {
			hi, lo = lo, hi
		}
		b[2*dst], b[2*dst+1] = hi, lo
		v >>= 16
	}
}

// valueOf interprets the raw bits of a register value of type t as a number. 64-bit integers
// beyond 2⁵³ lose precision in the float64; no water meter counts that far.
func valueOf(t dataType, v uint64) float64 {
	switch t {
	case typeInt16:
		return float64(int16(v))
	case typeUint16:
		return float64(uint16(v))
	case typeInt32:
		return float64(int32(v))
	case typeUint32:
		return float64(uint32(v))
	case typeInt64:
		return float64(int64(v))
	case typeUint64:
		return float64(v)
	case typeFloat32:
		return float64(math.Float32frombits(uint32(v)))
	case typeFloat64:
		return math.Float64frombits(v)
	case typeBool:
		if v != 0 {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// bitsOf is the inverse of valueOf for values the type can hold; ok is false otherwise.
func bitsOf(t dataType, x float64) (v uint64, ok bool) {
	if t != typeFloat32 && t != typeFloat64 && (x != math.Trunc(x) || math.IsInf(x, 0)) {
		return 0, false
	}
	switch t {
	case typeInt16:
		ok = x >= math.MinInt16 && x <= math.MaxInt16
		return uint64(uint16(int16(x))), ok
	case typeUint16:
		ok = x >= 0 && x <= math.MaxUint16
		return uint64(uint16(x)), ok
	case typeInt32:
		ok = x >= math.MinInt32 && x <= math.MaxInt32
		return uint64(uint32(int32(x))), ok
	case typeUint32:
		ok = x >= 0 && x <= math.MaxUint32
		return uint64(uint32(x)), ok
	case typeInt64:
		ok = x >= math.MinInt64 && x < math.MaxInt64
		return uint64(int64(x)), ok
	case typeUint64:
		ok = x >= 0 && x < math.MaxUint64
		return uint64(x), ok
	case typeFloat32:
		f := float32(x)
		return uint64(math.Float32bits(f)), float64(f) == x || math.IsNaN(x)
	case typeFloat64:
		return math.Float64bits(x), true
	case typeBool:
		return uint64(x), x == 0 || x == 1
	}
	return 0, false
}

// Decode interprets registers (as read, one uint16 per register) as a value of the named type in
// the named byte order, both spelled as in a point's config ("FLOAT32", "CDAB"). It returns the
// raw value, before scale and offset. BOOL is true when the first register is non-zero.
func Decode(regs []uint16, typ, order string) (float64, error) {
	t, o, err := parseTypeOrder(typ, order)
	if err != nil {
		return 0, err
	}
	n := t.width()
	if len(regs) < n {
		return 0, fmt.Errorf("decode %s: %d registers, need %d", t, len(regs), n)
	}
	var b [8]byte
	for i := range n {
		b[2*i], b[2*i+1] = byte(regs[i]>>8), byte(regs[i])
	}
	return valueOf(t, rawBits(b[:], n, o)), nil
}

// Encode is the inverse of Decode: the registers a device would hold for value. It fails when
// the type cannot hold the value exactly (a fraction in an integer type, an overflow).
func Encode(value float64, typ, order string) ([]uint16, error) {
	t, o, err := parseTypeOrder(typ, order)
	if err != nil {
		return nil, err
	}
	v, ok := bitsOf(t, value)
	if !ok {
		return nil, fmt.Errorf("encode %s: %s does not hold %v exactly", t, t, value)
	}
	n := t.width()
	var b [8]byte
	putBits(b[:], n, o, v)
	regs := make([]uint16, n)
	for i := range regs {
		regs[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return regs, nil
}

func parseTypeOrder(typ, order string) (dataType, byteOrder, error) {
	t, ok := parseType(typ)
	if !ok {
		return 0, 0, fmt.Errorf("type %q is not one of %s", typ, strings.Join(typeNames[:], ", "))
	}
	o := orderABCD
	if order != "" {
		if o, ok = parseOrder(order); !ok {
			return 0, 0, fmt.Errorf("byte order %q is not one of %s", order, strings.Join(orderNames[:], ", "))
		}
	}
	return t, o, nil
}

// formatBits prints a raw register value of type t exactly: integers in full (64-bit ones too,
// which a float64 would round), floats with the digits their width carries.
func formatBits(t dataType, v uint64) string {
	switch t {
	case typeInt16:
		return strconv.FormatInt(int64(int16(v)), 10)
	case typeUint16:
		return strconv.FormatUint(uint64(uint16(v)), 10)
	case typeInt32:
		return strconv.FormatInt(int64(int32(v)), 10)
	case typeUint32:
		return strconv.FormatUint(uint64(uint32(v)), 10)
	case typeInt64:
		return strconv.FormatInt(int64(v), 10)
	case typeUint64:
		return strconv.FormatUint(v, 10)
	case typeFloat32:
		return strconv.FormatFloat(float64(math.Float32frombits(uint32(v))), 'g', -1, 32)
	case typeFloat64:
		return strconv.FormatFloat(math.Float64frombits(v), 'g', -1, 64)
	}
	return strconv.FormatUint(v, 10)
}
