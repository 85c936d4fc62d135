package modbus

import (
	"math"
	"strconv"
	"strings"
)

// maxDecimals bounds rounding: a value needing more decimals than a float64 carries is left as
// computed.
const maxDecimals = 15

// decimals is how many decimal places the shortest text of x has ("0.01" → 2, "100" → 0), as
// written in a config file; -1 when it has more than maxDecimals.
func decimals(x float64, bits int) int {
	s := strconv.FormatFloat(x, 'f', -1, bits)
	_, frac, ok := strings.Cut(s, ".")
	if !ok {
		return 0
	}
	if len(frac) > maxDecimals {
		return -1
	}
	return len(frac)
}

// scaled is raw · scale + offset rounded to the register's resolution: a reading can carry no
// more decimals than the raw value (none for integers; the shortest text of a float, as the
// device meant it) and the scale together, or the offset. Without it a UINT32 total of 9999993
// at 0.01 m³ travels as 99999.93000000001 instead of 99999.93.
func scaled(t dataType, raw uint64, scale, offset float64) float64 {
	x := valueOf(t, raw)
	v := x*scale + offset
	if scale == 1 && offset == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		// Unscaled values are left exactly as the device sent them.
		return v
	}
	var dx int
	switch t {
	case typeFloat32:
		dx = decimals(x, 32)
	case typeFloat64:
		dx = decimals(x, 64)
	}
	ds, do := decimals(scale, 64), decimals(offset, 64)
	if dx < 0 || ds < 0 || do < 0 {
		return v
	}
	d := max(dx+ds, do)
	if d > maxDecimals {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', d, 64), 64)
	if err != nil {
		return v
	}
	return r
}
