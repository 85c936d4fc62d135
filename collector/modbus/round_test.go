package modbus

import (
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/collector/wire"
)

// TestScaledValuesRounded checks every scaled integer point of every testdata case: the value
// sent on the wire is raw · scale + offset in exact decimal arithmetic (math/big, from the
// register words and the config's own text, not through our decoder), with no float noise.
func TestScaledValuesRounded(t *testing.T) {
	checked := 0
	for _, dir := range caseDirs(t) {
		cfg := loadCaseConfig(t, dir)
		img := loadImage(t, filepath.Join(dir, "registers.yaml"))
		type want struct{ meter, point, text string }
		var wants []want
		for _, m := range cfg.Meters {
			for _, p := range m.Points {
				p.defaults()
				if p.Scale == 0 {
					p.Scale = 1
				}
				if p.Scale == 1 && p.Offset == 0 {
					continue
				}
				typ, _ := parseType(p.Type)
				if typ == typeFloat32 || typ == typeFloat64 || typ == typeBool {
					continue
				}
				u := img.Units[m.SlaveID]
				words := u.Holding
				if p.Register == RegisterInput {
					words = u.Input
				}
				flat := flatWords(words)
				addr := uint16(int(p.Address) - cfg.AddressBase)
				raw := exactRaw(t, flat, addr, typ, p.ByteOrder)
				v := new(big.Rat).Mul(raw, decimalRat(t, p.Scale))
				v.Add(v, decimalRat(t, p.Offset))
				wants = append(wants, want{m.Meter, p.Name, trimDecimal(v.FloatString(maxDecimals))})
			}
		}
		if len(wants) == 0 {
			continue
		}
		srv := startServer(t, img)
		cfg.Transport, cfg.Controller = TransportTCP, srv.controller()
		rs, _ := pollCase(t, cfg)
		for _, w := range wants {
			for _, r := range rs {
				if r.Meter != w.meter {
					continue
				}
				p, _ := r.Point(w.point)
				if got := strconv.FormatFloat(p.Value, 'f', -1, 64); got != w.text {
					t.Errorf("%s %s.%s = %s, want exactly %s", filepath.Base(dir), w.meter, w.point, got, w.text)
				}
				r.Edge = ""
				payload, err := wire.Encode(r)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(payload), `"value":`+w.text+`,`) && !strings.Contains(string(payload), `"value":`+jsonNumber(w.text)+`,`) {
					t.Errorf("%s.%s: payload %s does not carry %s", w.meter, w.point, payload, w.text)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no scaled integer point in the testdata cases")
	}
	t.Logf("%d scaled points checked", checked)
}

// exactRaw assembles a register value from its words by byte order, as the Modbus manuals draw
// it: ABCD big-endian words high first, CDAB low word first, BADC bytes swapped in each word,
// DCBA both.
func exactRaw(t *testing.T, words map[uint16]uint16, addr uint16, typ dataType, order string) *big.Rat {
	t.Helper()
	n := typ.width()
	var ws []uint16
	for i := range n {
		w, ok := words[addr+uint16(i)]
		if !ok {
			t.Fatalf("no register %d in the image", int(addr)+i)
		}
		ws = append(ws, w)
	}
	if order == "CDAB" || order == "DCBA" {
		for i, j := 0, len(ws)-1; i < j; i, j = i+1, j-1 {
			ws[i], ws[j] = ws[j], ws[i]
		}
	}
	u := new(big.Int)
	for _, w := range ws {
		if order == "BADC" || order == "DCBA" {
			w = w<<8 | w>>8
		}
		u.Lsh(u, 16).Or(u, big.NewInt(int64(w)))
	}
	switch typ {
	case typeInt16, typeInt32, typeInt64:
		bits := uint(16 * n)
		if u.Bit(int(bits)-1) == 1 {
			u.Sub(u, new(big.Int).Lsh(big.NewInt(1), bits))
		}
	}
	return new(big.Rat).SetInt(u)
}

// decimalRat is the number as written in a config file: 0.01 is exactly 1/100.
func decimalRat(t *testing.T, x float64) *big.Rat {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(x, 'f', -1, 64))
	if !ok {
		t.Fatalf("cannot read %v", x)
	}
	return r
}

func trimDecimal(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// jsonNumber is how encoding/json writes a float whose shortest text is s (exponent form for
// large values).
func jsonNumber(s string) string {
	f, _ := strconv.ParseFloat(s, 64)
	b := strconv.AppendFloat(nil, f, 'f', -1, 64)
	if abs := f; abs >= 1e21 || abs <= -1e21 {
		b = strconv.AppendFloat(nil, f, 'e', -1, 64)
	}
	return string(b)
}

func TestScaledTotalNoise(t *testing.T) {
	// The example: UINT32 9 999 993 at 0.01 m³.
	if got := scaled(typeUint32, 9999993, 0.01, 0); strconv.FormatFloat(got, 'f', -1, 64) != "99999.93" {
		t.Errorf("scaled = %v, want 99999.93", got)
	}
	if naive := float64(9999993) * 0.01; strconv.FormatFloat(naive, 'f', -1, 64) == "99999.93" {
		t.Log("the naive product happens to be exact on this platform")
	}
}
