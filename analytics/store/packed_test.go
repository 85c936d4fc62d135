package store

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// sameSums compares floats by value, NaN equal to NaN, and keeps -0 apart from 0.
func sameSums(a, b sums) bool {
	same := func(x, y float64) bool {
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.IsNaN(x) && math.IsNaN(y)
		}
		return math.Float64bits(x) == math.Float64bits(y)
	}
	return same(a.volume, b.volume) && same(a.coverage, b.coverage) && a.n == b.n && a.flags == b.flags
}

// randomID is a UTF-8 meter id of 1 to 256 bytes, heavy in the characters the text escapes.
func randomID(rng *rand.Rand) string {
	special := []rune{' ', '\n', '\r', '\t', '\\', '"', '%', ';', ',', '=', 0, 0x7f, 'é', '水', '🚰', '\u2028'}
	var b strings.Builder
	limit := 1 + rng.IntN(256)
	for {
		var r rune
		switch rng.IntN(3) {
		case 0:
			r = special[rng.IntN(len(special))]
		case 1:
			r = rune('A' + rng.IntN(26))
		default:
			r = rune(rng.IntN(0x10000))
			if !utf8.ValidRune(r) {
				r = 'x'
			}
		}
		if b.Len()+utf8.RuneLen(r) > limit {
			break
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "m"
	}
	return b.String()
}

func randomFloat(rng *rand.Rand) float64 {
	switch rng.IntN(8) {
	case 0:
		return math.Float64frombits(rng.Uint64()) // any bits: subnormals, NaN, ±Inf, -0
	case 1:
		return []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1}[rng.IntN(8)]
	case 2:
		return float64(rng.IntN(1e6)) / 1e3
	}
	return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(40)-20))
}

func randomSums(rng *rand.Rand) sums {
	return sums{volume: randomFloat(rng), coverage: randomFloat(rng), n: rng.Int64() >> rng.IntN(64), flags: ledger.Flag(rng.Uint32())}
}

// TestPackedRoundTrip: decodePart(encodePart(k, rows)) gives back k and rows exactly (in meter
// order), for ids of any UTF-8 up to 256 bytes and any float64, and the text holds none of the
// characters the line protocol would escape.
func TestPackedRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 2000 {
		k := 1 + rng.IntN(maxParts)
		seen := map[string]bool{}
		var rows []meterSums
		for range rng.IntN(20) {
			id := randomID(rng)
			if seen[id] {
				continue
			}
			seen[id] = true
			rows = append(rows, meterSums{id, randomSums(rng)})
		}
		text := encodePart(k, rows)
		slices.SortFunc(rows, func(a, b meterSums) int { return strings.Compare(a.meter, b.meter) })
		if i := strings.IndexAny(text, "\t\n\f\r\\\""); i >= 0 {
			t.Fatalf("text has %q at %d: %q", text[i], i, text)
		}
		gotK, got, err := decodePart(text)
		if err != nil {
			t.Fatalf("decode %q: %v", text, err)
		}
		if gotK != k || len(got) != len(rows) {
			t.Fatalf("decode %q = %d parts, %d rows; want %d, %d", text, gotK, len(got), k, len(rows))
		}
		for i := range rows {
			if got[i].meter != rows[i].meter || !sameSums(got[i].sums, rows[i].sums) {
				t.Fatalf("row %d: got %+v, want %+v", i, got[i], rows[i])
			}
		}
	}
}

// FuzzPackedRoundTrip: the same for the fuzzer's ids and values.
func FuzzPackedRoundTrip(f *testing.F) {
	f.Add("M01", "pump B", 12.5, 60.0, int64(60), uint16(0))
	f.Add("a\nb\\c", "%41;\"", math.Inf(-1), math.NaN(), int64(-1), uint16(0xffff))
	f.Add("", "水表 7", math.Copysign(0, -1), 5e-324, int64(math.MaxInt64), uint16(4))
	f.Fuzz(func(t *testing.T, id1, id2 string, v, c float64, n int64, flags uint16) {
		rows := []meterSums{{id1, sums{v, c, n, ledger.Flag(flags)}}}
		if id2 != id1 {
			rows = append(rows, meterSums{id2, sums{c, v, -n, ledger.Flag(^flags)}})
		}
		if len(rows) == 2 && id2 < id1 {
			rows[0], rows[1] = rows[1], rows[0] // the text is in meter order
		}
		k, got, err := decodePart(encodePart(3, rows))
		if err != nil || k != 3 || len(got) != len(rows) {
			t.Fatalf("decode(encode(%+v)) = %d, %+v, %v", rows, k, got, err)
		}
		for i := range rows {
			if got[i].meter != rows[i].meter || !sameSums(got[i].sums, rows[i].sums) {
				t.Fatalf("row %d: got %+v, want %+v", i, got[i], rows[i])
			}
		}
	})
}

// FuzzPackedDecode: any text either decodes or is an error, never a panic, and what decodes
// encodes to a text that decodes the same.
func FuzzPackedDecode(f *testing.F) {
	f.Add("1;M01 12.5 60 60 0;")
	f.Add("2;a%20b 1 2 3 4;c 5 6 7 8;")
	f.Add("1;%")
	f.Add("1;x 1 2 3")
	f.Fuzz(func(t *testing.T, text string) {
		k, rows, err := decodePart(text)
		if err != nil {
			if !errors.Is(err, errPacked) {
				t.Fatalf("decode %q: error %v does not wrap errPacked", text, err)
			}
			return
		}
		k2, rows2, err := decodePart(encodePart(k, rows))
		if err != nil || k2 != k || len(rows2) != len(rows) {
			t.Fatalf("re-decode of %q: %d, %d rows, %v", text, k2, len(rows2), err)
		}
		for i := range rows {
			if rows2[i].meter != rows[i].meter || !sameSums(rows2[i].sums, rows[i].sums) {
				t.Fatalf("re-decode of %q: row %d %+v, want %+v", text, i, rows2[i], rows[i])
			}
		}
	})
}

func TestPackedMalformed(t *testing.T) {
	for _, text := range []string{
		"",
		"M01 1 2 3 4;",               // no header
		"0;",                         // no parts
		"01;",                        // not the canonical count
		"99999;",                     // more than maxParts
		"1;M01 1 2 3 4",              // record without ';'
		"1;M01 1 2 3;",               // four fields
		"1;M01 1 2 3 4 5;",           // six fields
		"1;M01  1 2 3 4;",            // an empty field
		"1;M01 x 2 3 4;",             // volume
		"1;M01 1 x 3 4;",             // coverage
		"1;M01 1 2 3.5 4;",           // n
		"1;M01 1 2 3 65536;",         // flags beyond 16 bits
		"1;M01 1 2 3 -1;",            // negative flags
		"1;M%2 1 2 3 4;",             // escape cut short
		"1;M%zz 1 2 3 4;",            // not hex
		"1;M01 1 2 3 4;M01 1 2 3 4;", // a meter twice
		"1;b 1 2 3 4;a 1 2 3 4;",     // out of order
	} {
		if _, _, err := decodePart(text); err == nil || !errors.Is(err, errPacked) {
			t.Errorf("decodePart(%q) = %v, want an errPacked error", text, err)
		}
	}
	pr := packedRows{}
	if err := pr.add(0, "x", "1;"); err == nil {
		t.Error("part tag x accepted")
	}
	if err := pr.add(0, "1", "1;"); err == nil {
		t.Error("part 1 of a one-part row accepted")
	}
}

// TestPackParts: every meter is in exactly one part, the part fnv1a(meter) mod k; each part fits
// partLimit; k is at least minParts and grows only as far as needed.
func TestPackParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		meters, minParts int
		long             bool
	}{{0, 0, false}, {0, 2, false}, {1, 0, false}, {100, 0, false}, {100, 4, false}, {10000, 0, false}, {400, 1, true}} {
		rows := map[string]sums{}
		for i := range tc.meters {
			id := fmt.Sprintf("M%05d", i)
			if tc.long {
				id = strings.Repeat("\\ %", 80) + strconv.Itoa(i) // about 240 bytes, 720 escaped
			}
			rows[id] = randomSums(rng)
		}
		texts, err := packParts(rows, tc.minParts)
		if err != nil {
			t.Fatal(err)
		}
		k := len(texts)
		if k < max(1, tc.minParts) {
			t.Errorf("%d meters, minParts %d: %d parts", tc.meters, tc.minParts, k)
		}
		got := map[string]sums{}
		for p, text := range texts {
			if len(text) > partLimit {
				t.Errorf("%d meters: part %d has %d bytes", tc.meters, p, len(text))
			}
			pk, recs, err := decodePart(text)
			if err != nil || pk != k {
				t.Fatalf("part %d: %d, %v", p, pk, err)
			}
			for _, r := range recs {
				if int(meterHash(r.meter)%uint64(k)) != p {
					t.Errorf("meter %q in part %d", r.meter, p)
				}
				if _, dup := got[r.meter]; dup {
					t.Errorf("meter %q twice", r.meter)
				}
				got[r.meter] = r.sums
			}
		}
		if len(got) != len(rows) {
			t.Errorf("%d meters packed, %d read back", len(rows), len(got))
		}
		for m, v := range rows {
			if !sameSums(got[m], v) {
				t.Errorf("meter %q: %+v, want %+v", m, got[m], v)
			}
		}
		if k > max(1, tc.minParts) {
			// Half as many parts would not have fitted.
			if smaller, err := packParts(rows, k/2); err == nil && len(smaller) == k/2 {
				t.Errorf("%d meters: %d parts where %d fit", tc.meters, k, k/2)
			}
		}
		t.Logf("%d meters (long ids %v), minParts %d: %d parts", tc.meters, tc.long, tc.minParts, k)
	}
	if _, err := packParts(map[string]sums{strings.Repeat("x", partLimit): {}}, 0); !errors.Is(err, ErrRejected) {
		t.Errorf("a meter id longer than a part: %v, want ErrRejected", err)
	}
}

// TestCycleFilter: the condition names exactly the cycle values of the days in the range, and
// is left out where it would name many.
func TestCycleFilter(t *testing.T) {
	at := func(y int, m time.Month, d, h int) int64 { return time.Date(y, m, d, h, 0, 0, 0, time.UTC).UnixNano() }
	for _, tc := range []struct {
		measurement string
		lo, hi      int64
		want        string
	}{
		{"site_hour", at(2026, 2, 26, 3), at(2026, 2, 26, 5) - 1, `("yday" = '57')`},
		{"site_hour", at(2026, 2, 26, 16), at(2026, 2, 27, 16) - 1, `("yday" = '57' OR "yday" = '58')`},
		{"site_hour", at(2026, 12, 31, 16), at(2027, 1, 1, 16) - 1, `("yday" = '365' OR "yday" = '1')`},
		{"site_day", at(2026, 3, 1, 0), at(2026, 3, 31, 0) - 1, `("month" = '3')`},
		{"site_day", at(2026, 1, 15, 0), at(2026, 2, 20, 0) - 1, `("month" = '1' OR "month" = '2')`},
		{"site_day", at(2026, 1, 1, 0), at(2027, 1, 1, 0) - 1, ``},
		{"site_month", at(2026, 1, 1, 0), at(2027, 1, 1, 0) - 1, ``},
		{"site_hour", maxNanos - 3*hourNs, maxNanos, `("yday" = '101')`},
		{"site_hour", minNanos, minNanos + hourNs, `("yday" = '264')`},
	} {
		if got := cycleFilter(tc.measurement, tc.lo, tc.hi); got != tc.want {
			t.Errorf("cycleFilter(%s, %v, %v) = %s, want %s", tc.measurement, fromNanos(tc.lo), fromNanos(tc.hi), got, tc.want)
		}
	}
}
