package wire

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

func sample() collector.Reading {
	return collector.Reading{
		Site: "demo", Meter: "M01", Edge: "edge-1", Seq: 42,
		Time:       time.Date(2026, 11, 28, 2, 0, 0, 250_000_123, time.UTC),
		TimeSource: collector.TimeSourceCollector,
		Points: []collector.Point{
			{Name: "total", Value: 42949600.01, Unit: "m3", Quality: collector.Good},
			{Name: "flow", Unit: "m3/h", Quality: collector.Bad, Code: 2, Error: "modbus exception 2 (illegal data address)"},
			{Name: "temp", Value: -3.5, Unit: "C", Quality: collector.Uncertain, Code: 0x40000000},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the reading:\n in  %+v\n out %+v", in, out)
	}
	if strings.Contains(string(b), `"name":"flow","value"`) {
		t.Errorf("a bad point must carry no value: %s", b)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, payload, want string
	}{
		{"not json", `{"v":1,`, "unexpected end"},
		{"future version", `{"v":2,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"collector","points":[{"name":"total","value":1,"quality":"good"}]}`, "version 2"},
		{"bad time", `{"v":1,"site":"demo","meter":"M01","seq":1,"time":"yesterday","time_source":"collector","points":[{"name":"total","value":1,"quality":"good"}]}`, "time"},
		{"no points", `{"v":1,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"collector","points":[]}`, "no points"},
		{"good without value", `{"v":1,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"collector","points":[{"name":"total","quality":"good"}]}`, "has no value"},
		{"unknown quality", `{"v":1,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"collector","points":[{"name":"total","value":1,"quality":"great"}]}`, "quality"},
		{"wildcard in site", `{"v":1,"site":"de/mo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"collector","points":[{"name":"total","value":1,"quality":"good"}]}`, "site"},
		{"duplicate point", `{"v":1,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"collector","points":[{"name":"total","value":1,"quality":"good"},{"name":"total","value":2,"quality":"good"}]}`, "twice"},
		{"bad time source", `{"v":1,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T00:00:00Z","time_source":"sundial","points":[{"name":"total","value":1,"quality":"good"}]}`, "time_source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.payload))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestEncodeRefusesWhatDecodeRejects(t *testing.T) {
	r := sample()
	r.Points[0].Value = math.NaN()
	if _, err := Encode(r); !errors.Is(err, ErrMalformed) {
		t.Errorf("NaN value encoded, err = %v", err)
	}
	r = sample()
	r.Meter = "M+1"
	if _, err := Encode(r); !errors.Is(err, ErrMalformed) {
		t.Errorf("wildcard meter encoded, err = %v", err)
	}
}

func TestTopics(t *testing.T) {
	topic := ReadingTopic("plant-7", "M.12")
	site, meter, err := ParseReadingTopic(topic)
	if err != nil || site != "plant-7" || meter != "M.12" {
		t.Fatalf("ParseReadingTopic(%q) = %q, %q, %v", topic, site, meter, err)
	}
	for _, bad := range []string{"aqualoop/v1/demo/meters", "aqualoop/v2/demo/meters/M01", "aqualoop/v1/demo/edges/M01", "aqualoop/v1/demo/meters/M01/x", "aqualoop/v1/+/meters/M01"} {
		if _, _, err := ParseReadingTopic(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseReadingTopic(%q) accepted", bad)
		}
	}
	if got, want := ReadingFilter("g1", "+"), "$share/g1/aqualoop/v1/+/meters/+"; got != want {
		t.Errorf("ReadingFilter = %q, want %q", got, want)
	}
	if got, want := ReadingFilter("", "demo"), "aqualoop/v1/demo/meters/+"; got != want {
		t.Errorf("ReadingFilter = %q, want %q", got, want)
	}
}

// FuzzDecode checks that no payload panics the decoder and that whatever it accepts survives an
// encode/decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b)
	f.Add([]byte(`{"v":1,"site":"a","meter":"b","seq":0,"time":"2026-01-01T00:00:00Z","time_source":"source","points":[{"name":"x","value":1e308,"quality":"uncertain"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		again, err := Encode(r)
		if err != nil {
			t.Fatalf("decoded reading does not encode: %v", err)
		}
		r2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded reading does not decode: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the reading:\n %+v\n %+v", r, r2)
		}
	})
}

func TestDecodeHeader(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 250_000_000, time.UTC)
	r := collector.Reading{
		Site: "plant-a", Meter: "FT-101", Edge: "edge-1", Seq: 18446744073709551, Time: at,
		TimeSource: collector.TimeSourceCollector,
		Points:     []collector.Point{{Name: "total", Value: 99999.93, Quality: collector.Good}},
	}
	noEdge := r
	noEdge.Edge = ""
	enc := func(r collector.Reading) []byte {
		b, err := Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{name: "encoded", in: enc(r)},
		{name: "encoded without edge", in: enc(noEdge)},
		// Another writer's field order still decodes, through the full decoder.
		{name: "other order", in: []byte(`{"seq":18446744073709551,"v":1,"meter":"FT-101","site":"plant-a","time":"2026-11-28T10:00:00.25Z","time_source":"collector","points":[{"name":"total","value":1,"quality":"good"}]}`)},
		{name: "bad version", in: []byte(`{"v":2,"site":"plant-a","meter":"FT-101","seq":1,"time":"2026-11-28T10:00:00.25Z"}`), wantErr: true},
		{name: "escaped site", in: []byte(`{"v":1,"site":"pl\u0061nt","meter":"FT-101","seq":1,"time":"x"}`), wantErr: true},
		{name: "truncated", in: enc(r)[:40], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := DecodeHeader(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error for %s, header %+v", tt.in, h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Site != r.Site || h.Meter != r.Meter || h.Seq != r.Seq || !h.Time.Equal(at) {
				t.Errorf("header %+v, want site %s meter %s seq %d time %s", h, r.Site, r.Meter, r.Seq, at)
			}
			if h.Topic() != ReadingTopic(r.Site, r.Meter) {
				t.Errorf("topic %s", h.Topic())
			}
		})
	}
}
