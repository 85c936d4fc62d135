package opcua

import (
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aqualoop/aqualoop/collector"
)

func TestToPoint(t *testing.T) {
	p := &point{name: "total", unit: "m3", scale: 0.5}
	val := func(v any, status ua.StatusCode) *ua.DataValue {
		dv := &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
		if status != 0 {
			dv.EncodingMask |= ua.DataValueStatusCode
			dv.Status = status
		}
		return dv
	}
	for _, tc := range []struct {
		name string
		in   *ua.DataValue
		want collector.Point
	}{
		{"double", val(float64(10), 0), collector.Point{Value: 5, Quality: collector.Good}},
		{"float", val(float32(3), 0), collector.Point{Value: 1.5, Quality: collector.Good}},
		{"int16", val(int16(-8), 0), collector.Point{Value: -4, Quality: collector.Good}},
		{"uint32", val(uint32(4000000000), 0), collector.Point{Value: 2000000000, Quality: collector.Good}},
		{"int64", val(int64(1)<<40, 0), collector.Point{Value: float64(int64(1)<<40) / 2, Quality: collector.Good}},
		{"byte", val(uint8(200), 0), collector.Point{Value: 100, Quality: collector.Good}},
		{"good with info bits", val(float64(2), ua.StatusCode(0x00000400)), collector.Point{Value: 1, Quality: collector.Good}},
		{"uncertain", val(float64(4), ua.StatusCode(0x40920000)), collector.Point{Value: 2, Quality: collector.Uncertain, Code: 0x40920000, Error: "UncertainInitialValue"}},
		{"bad status", &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown},
			collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadNodeIDUnknown), Error: "BadNodeIDUnknown"}},
		{"bad status with a value", val(float64(1), ua.StatusBadSensorFailure),
			collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadSensorFailure), Error: "BadSensorFailure"}},
		{"boolean", val(true, 0), collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadTypeMismatch), Error: "BadTypeMismatch: Boolean value is not a number"}},
		{"string", val("12", 0), collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadTypeMismatch), Error: "BadTypeMismatch: String value is not a number"}},
		{"array", val([]float64{1, 2}, 0), collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadTypeMismatch), Error: "BadTypeMismatch: array of Double value is not a number"}},
		{"no value", &ua.DataValue{}, collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadTypeMismatch), Error: "BadTypeMismatch: no value"}},
		{"nan", val(math.NaN(), 0), collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadOutOfRange), Error: "BadOutOfRange: value NaN is not finite"}},
		{"nil", nil, collector.Point{Quality: collector.Bad, Code: uint32(ua.StatusBadNoData), Error: "BadNoData: no data value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Name, tc.want.Unit = "total", "m3"
			if got := toPoint(p, tc.in); got != tc.want {
				t.Errorf("toPoint = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStampOf(t *testing.T) {
	src, srv := t0, t0.Add(time.Second)
	both := &ua.DataValue{EncodingMask: ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp, SourceTimestamp: src, ServerTimestamp: srv}
	onlyServer := &ua.DataValue{EncodingMask: ua.DataValueServerTimestamp, ServerTimestamp: srv}
	onlySource := &ua.DataValue{EncodingMask: ua.DataValueSourceTimestamp, SourceTimestamp: src}
	for _, tc := range []struct {
		name         string
		dv           *ua.DataValue
		preferServer bool
		want         time.Time
		wantSource   collector.TimeSource
	}{
		{"source preferred", both, false, src, collector.TimeSourceDevice},
		{"server preferred", both, true, srv, collector.TimeSourceServer},
		{"source missing falls back to server", onlyServer, false, srv, collector.TimeSourceServer},
		{"server missing falls back to source", onlySource, true, src, collector.TimeSourceDevice},
		{"none", &ua.DataValue{}, false, time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotSource := stampOf(tc.dv, tc.preferServer)
			if !got.Equal(tc.want) || gotSource != tc.wantSource {
				t.Errorf("stampOf = %v %q, want %v %q", got, gotSource, tc.want, tc.wantSource)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	s := &Source{
		cfg:    Config{Timestamp: TimestampSource},
		site:   "site1",
		meters: []string{"m1", "m2"},
		points: []point{
			{meter: 0, name: "total", scale: 1},
			{meter: 0, name: "flow", scale: 1},
			{meter: 1, name: "total", scale: 1},
		},
		m:        NewMetrics(nil).server("t"),
		lastCode: make([]uint32, 3),
		lastBad:  make([]bool, 3),
	}
	s.log = discardLogger()
	dv := func(v float64, at time.Time) *ua.DataValue {
		return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp, Value: ua.MustVariant(v), SourceTimestamp: at}
	}
	now := t0.Add(time.Hour)

	b := newBatch(s)
	b.addValue(0, dv(1, t0))
	b.addValue(2, dv(7, t0.Add(5*time.Second)))
	b.addValue(1, dv(2, t0.Add(2*time.Second)))
	b.addValue(0, dv(3, t0.Add(10*time.Second))) // a second sample of m1/total from a queue
	b.addBad(1, ua.StatusBadTimeout, "late")
	rs := b.readings(now)

	type short struct {
		meter string
		at    time.Time
		src   collector.TimeSource
		n     int
	}
	want := []short{
		{"m1", t0.Add(2 * time.Second), collector.TimeSourceDevice, 2}, // newest of its points
		{"m2", t0.Add(5 * time.Second), collector.TimeSourceDevice, 1},
		{"m1", t0.Add(10 * time.Second), collector.TimeSourceDevice, 2}, // good total; the bad flow has no time
	}
	if len(rs) != len(want) {
		t.Fatalf("got %d readings %+v, want %d", len(rs), rs, len(want))
	}
	for i, w := range want {
		r := rs[i]
		if r.Site != "site1" || r.Meter != w.meter || !r.Time.Equal(w.at) || r.TimeSource != w.src || len(r.Points) != w.n {
			t.Errorf("reading %d = %+v, want %+v", i, r, w)
		}
	}

	b = newBatch(s)
	b.addBad(2, ua.StatusBadNodeIDUnknown, "gone")
	rs = b.readings(now)
	if len(rs) != 1 || !rs[0].Time.Equal(now) || rs[0].TimeSource != collector.TimeSourceCollector {
		t.Errorf("all-bad reading = %+v, want the collector's time", rs)
	}
	if st := s.State(); st.BadNodes != 2 {
		t.Errorf("bad nodes = %d, want 2 (m1/flow and m2/total)", st.BadNodes)
	}
}

func TestStatusName(t *testing.T) {
	for code, want := range map[ua.StatusCode]string{
		ua.StatusBadNodeIDUnknown:         "BadNodeIDUnknown",
		ua.StatusCode(0x80340000 | 0x400): "BadNodeIDUnknown",
		ua.StatusCode(0x8FFF0000):         "0x8FFF0000",
	} {
		if got := statusName(code); got != want {
			t.Errorf("statusName(%#x) = %q, want %q", uint32(code), got, want)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
