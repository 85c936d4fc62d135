package opcua

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aqualoop/aqualoop/collector"
)

// quality maps a status code's severity, its two top bits, to a Quality.
func quality(s ua.StatusCode) collector.Quality {
	switch uint32(s) >> 30 {
	case 0:
		return collector.Good
	case 1:
		return collector.Uncertain
	default:
		return collector.Bad
	}
}

// statusName is the symbolic name of a status code, such as "BadNodeIDUnknown". Codes that carry
// info bits are named by their base code.
func statusName(s ua.StatusCode) string {
	for _, c := range []ua.StatusCode{s, s & 0xFFFF0000} {
		if d, ok := ua.StatusCodes[c]; ok {
			return strings.TrimPrefix(d.Name, "Status")
		}
	}
	return fmt.Sprintf("0x%08X", uint32(s))
}

// numeric turns a scalar numeric variant into a float64.
func numeric(v *ua.Variant) (float64, error) {
	if v == nil || v.Value() == nil {
		return 0, fmt.Errorf("no value")
	}
	switch x := v.Value().(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int8:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint8:
		return float64(x), nil
	case uint16:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	kind := strings.TrimPrefix(v.Type().String(), "TypeID")
	if v.Has(ua.VariantArrayValues) {
		kind = "array of " + kind
	}
	return 0, fmt.Errorf("%s value is not a number", kind)
}

// badPoint is a point without a usable value. Its Error is the status code's name, followed by
// the detail when there is one.
func badPoint(p *point, code ua.StatusCode, detail string) collector.Point {
	msg := statusName(code)
	if detail != "" && detail != msg {
		msg += ": " + detail
	}
	return collector.Point{Name: p.name, Unit: p.unit, Quality: collector.Bad, Code: uint32(code), Error: msg}
}

// toPoint converts a node's DataValue. A bad status, a missing or non-numeric value and a value
// that is not finite all give a Bad point; the value's status code travels with it.
func toPoint(p *point, dv *ua.DataValue) collector.Point {
	if dv == nil {
		return badPoint(p, ua.StatusBadNoData, "no data value")
	}
	var status ua.StatusCode
	if dv.Has(ua.DataValueStatusCode) {
		status = dv.Status
	}
	q := quality(status)
	if q == collector.Bad {
		return badPoint(p, status, "")
	}
	raw, err := numeric(dv.Value)
	if err != nil {
		return badPoint(p, ua.StatusBadTypeMismatch, err.Error())
	}
	v := raw * p.scale
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return badPoint(p, ua.StatusBadOutOfRange, fmt.Sprintf("value %v is not finite", v))
	}
	pt := collector.Point{Name: p.name, Value: v, Unit: p.unit, Quality: q}
	if q == collector.Uncertain {
		pt.Code, pt.Error = uint32(status), statusName(status)
	}
	return pt
}

// stampOf picks a DataValue's timestamp: the preferred one, else the other, else none.
func stampOf(dv *ua.DataValue, preferServer bool) (time.Time, collector.TimeSource) {
	if dv == nil {
		return time.Time{}, ""
	}
	var src, srv time.Time
	if dv.Has(ua.DataValueSourceTimestamp) {
		src = dv.SourceTimestamp
	}
	if dv.Has(ua.DataValueServerTimestamp) {
		srv = dv.ServerTimestamp
	}
	first, second := src, srv
	fs, ss := collector.TimeSourceDevice, collector.TimeSourceServer
	if preferServer {
		first, second, fs, ss = srv, src, ss, fs
	}
	switch {
	case !first.IsZero():
		return first, fs
	case !second.IsZero():
		return second, ss
	}
	return time.Time{}, ""
}

// batch turns the points of one notification message or one poll into Readings: one per meter,
// in the order the meters first appear. When a meter's point comes twice (a monitored item with
// a queue delivers several samples at once) the second starts a new Reading, so no Reading holds
// a point twice and every sample keeps its own time.
type batch struct {
	src  *Source
	out  []pending
	open map[int]int // meter → index in out of the Reading still taking points
}

type pending struct {
	r collector.Reading
	// newest timestamp of the usable points and of all points, with the clock each came from
	good, any       time.Time
	goodSrc, anySrc collector.TimeSource
}

func newBatch(s *Source) *batch {
	return &batch{src: s, open: make(map[int]int)}
}

// add puts the point of s.points[i] into its meter's Reading.
func (b *batch) add(i int, pt collector.Point, t time.Time, ts collector.TimeSource) {
	b.src.track(i, pt)
	m := b.src.points[i].meter
	k, ok := b.open[m]
	if ok {
		if _, dup := b.out[k].r.Point(pt.Name); dup {
			ok = false
		}
	}
	if !ok {
		b.out = append(b.out, pending{r: collector.Reading{Site: b.src.site, Meter: b.src.meters[m]}})
		k = len(b.out) - 1
		b.open[m] = k
	}
	p := &b.out[k]
	p.r.Points = append(p.r.Points, pt)
	if t.IsZero() {
		return
	}
	if pt.Quality != collector.Bad && t.After(p.good) {
		p.good, p.goodSrc = t, ts
	}
	if t.After(p.any) {
		p.any, p.anySrc = t, ts
	}
}

// addValue converts and adds a DataValue of s.points[i].
func (b *batch) addValue(i int, dv *ua.DataValue) {
	t, ts := stampOf(dv, b.src.cfg.Timestamp == TimestampServer)
	b.add(i, toPoint(&b.src.points[i], dv), t, ts)
}

// addBad adds a Bad point for s.points[i], stamped by the collector's clock.
func (b *batch) addBad(i int, code ua.StatusCode, msg string) {
	b.add(i, badPoint(&b.src.points[i], code, msg), time.Time{}, "")
}

// readings stamps each Reading with the newest time of its usable points (or, when all are bad,
// of any point); a Reading whose points carry no timestamp at all gets now from the collector.
func (b *batch) readings(now time.Time) []collector.Reading {
	rs := make([]collector.Reading, len(b.out))
	for i, p := range b.out {
		r := p.r
		switch {
		case !p.good.IsZero():
			r.Time, r.TimeSource = p.good, p.goodSrc
		case !p.any.IsZero():
			r.Time, r.TimeSource = p.any, p.anySrc
		default:
			r.Time, r.TimeSource = now, collector.TimeSourceCollector
		}
		rs[i] = r
	}
	return rs
}
