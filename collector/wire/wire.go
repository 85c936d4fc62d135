// Package wire is the contract between aqualoop edges and the platform: the MQTT topic scheme and
// the versioned JSON payload of a reading. Both sides import it, so they cannot drift apart.
//
// # Topics
//
//	aqualoop/v1/<site>/meters/<meter>          a Reading, QoS 1, not retained
//	aqualoop/v1/<site>/edges/<edge>/status     "online" / "offline", retained; "offline" is the last will
//	aqualoop/v1/<site>/deadletter              messages the platform could not accept, with the reason
//
// Site, meter and edge ids are restricted to letters, digits, '-', '_' and '.', so they can never
// contain the MQTT separators '/', '+' or '#'. A platform instance that owns only some sites
// subscribes to "$share/<group>/aqualoop/v1/<site>/meters/+" per site (or "+" for every site); the
// shared-subscription group lets several instances split one site's load.
//
// # Payload, version 1
//
//	{
//	  "v": 1,
//	  "site": "demo", "meter": "M01", "edge": "edge-1",
//	  "seq": 1042,                                  // per meter, strictly increasing
//	  "time": "2026-11-28T10:00:00.250Z",           // RFC 3339 with nanoseconds, UTC
//	  "time_source": "collector",                   // source | server | collector
//	  "points": [
//	    {"name": "total", "value": 123456.78, "unit": "m3", "quality": "good"},
//	    {"name": "flow", "quality": "bad", "code": 2, "error": "modbus exception 2 (illegal data address)"}
//	  ]
//	}
//
// A bad point carries no value. Decoders reject unknown versions, so a future v2 payload goes to the
// dead-letter topic of a v1 platform instead of being misread.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// Version is the payload version this package writes and the only one it reads.
const Version = 1

// Root is the first level of every aqualoop topic.
const Root = "aqualoop/v1"

// Status payloads, published retained on StatusTopic.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// ErrMalformed is wrapped by every decoding and topic error, so ingest can count them as one kind.
var ErrMalformed = errors.New("malformed message")

// ValidID reports whether s can be used as a site, meter or edge id.
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ReadingTopic is where an edge publishes a meter's readings.
func ReadingTopic(site, meter string) string { return Root + "/" + site + "/meters/" + meter }

// StatusTopic is where an edge keeps its retained online/offline status.
func StatusTopic(site, edge string) string { return Root + "/" + site + "/edges/" + edge + "/status" }

// DeadLetterTopic is where the platform republishes what it could not accept for a site. For a
// topic whose site cannot be read, site is "_".
func DeadLetterTopic(site string) string { return Root + "/" + site + "/deadletter" }

// ReadingFilter is the subscription filter for the readings of site ("+" for all sites). With a
// non-empty group it is a shared subscription.
func ReadingFilter(group, site string) string {
	f := Root + "/" + site + "/meters/+"
	if group != "" {
		f = "$share/" + group + "/" + f
	}
	return f
}

// ParseReadingTopic returns the site and meter of a reading topic.
func ParseReadingTopic(topic string) (site, meter string, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[1] != "meters" || !ValidID(parts[0]) || !ValidID(parts[2]) {
		return "", "", fmt.Errorf("%w: topic %q is not %s/<site>/meters/<meter>", ErrMalformed, topic, Root)
	}
	return parts[0], parts[2], nil
}

type payload struct {
	V          int            `json:"v"`
	Site       string         `json:"site"`
	Meter      string         `json:"meter"`
	Edge       string         `json:"edge,omitempty"`
	Seq        uint64         `json:"seq"`
	Time       string         `json:"time"`
	TimeSource string         `json:"time_source"`
	Points     []payloadPoint `json:"points"`
}

type payloadPoint struct {
	Name    string   `json:"name"`
	Value   *float64 `json:"value,omitempty"`
	Unit    string   `json:"unit,omitempty"`
	Quality string   `json:"quality"`
	Code    uint32   `json:"code,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Encode writes r as a version 1 payload. It refuses what Decode would reject, so an edge never
// publishes a message the platform must dead-letter.
func Encode(r collector.Reading) ([]byte, error) {
	if err := validate(r); err != nil {
		return nil, err
	}
	p := payload{
		V: Version, Site: r.Site, Meter: r.Meter, Edge: r.Edge, Seq: r.Seq,
		Time:       r.Time.UTC().Format(time.RFC3339Nano),
		TimeSource: string(r.TimeSource),
		Points:     make([]payloadPoint, len(r.Points)),
	}
	for i, pt := range r.Points {
		pp := payloadPoint{Name: pt.Name, Unit: pt.Unit, Quality: pt.Quality.String(), Code: pt.Code, Error: pt.Error}
		if pt.Quality != collector.Bad {
			v := pt.Value
			pp.Value = &v
		}
		p.Points[i] = pp
	}
	return json.Marshal(p)
}

// Decode parses a version 1 payload. Every error wraps ErrMalformed and says what was wrong.
func Decode(b []byte) (collector.Reading, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return collector.Reading{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.V != Version {
		return collector.Reading{}, fmt.Errorf("%w: payload version %d, want %d", ErrMalformed, p.V, Version)
	}
	t, err := time.Parse(time.RFC3339Nano, p.Time)
	if err != nil {
		return collector.Reading{}, fmt.Errorf("%w: time: %v", ErrMalformed, err)
	}
	r := collector.Reading{
		Site: p.Site, Meter: p.Meter, Edge: p.Edge, Seq: p.Seq, Time: t.UTC(),
		TimeSource: collector.TimeSource(p.TimeSource),
		Points:     make([]collector.Point, len(p.Points)),
	}
	for i, pp := range p.Points {
		q, err := collector.ParseQuality(pp.Quality)
		if err != nil {
			return collector.Reading{}, fmt.Errorf("%w: points[%d]: %v", ErrMalformed, i, err)
		}
		pt := collector.Point{Name: pp.Name, Unit: pp.Unit, Quality: q, Code: pp.Code, Error: pp.Error}
		switch {
		case pp.Value != nil:
			pt.Value = *pp.Value
		case q != collector.Bad:
			return collector.Reading{}, fmt.Errorf("%w: points[%d] %q is %s but has no value", ErrMalformed, i, pp.Name, pp.Quality)
		}
		r.Points[i] = pt
	}
	if err := validate(r); err != nil {
		return collector.Reading{}, err
	}
	return r, nil
}

func validate(r collector.Reading) error {
	switch {
	case !ValidID(r.Site):
		return fmt.Errorf("%w: site %q is not a valid id", ErrMalformed, r.Site)
	case !ValidID(r.Meter):
		return fmt.Errorf("%w: meter %q is not a valid id", ErrMalformed, r.Meter)
	case r.Edge != "" && !ValidID(r.Edge):
		return fmt.Errorf("%w: edge %q is not a valid id", ErrMalformed, r.Edge)
	case r.Time.IsZero():
		return fmt.Errorf("%w: reading of %s has no time", ErrMalformed, r.Meter)
	case len(r.Points) == 0:
		return fmt.Errorf("%w: reading of %s has no points", ErrMalformed, r.Meter)
	}
	switch r.TimeSource {
	case collector.TimeSourceDevice, collector.TimeSourceServer, collector.TimeSourceCollector:
	default:
		return fmt.Errorf("%w: time_source %q is not one of source, server, collector", ErrMalformed, r.TimeSource)
	}
	seen := make(map[string]bool, len(r.Points))
	for i, p := range r.Points {
		if p.Name == "" {
			return fmt.Errorf("%w: points[%d] has no name", ErrMalformed, i)
		}
		if seen[p.Name] {
			return fmt.Errorf("%w: point %q appears twice", ErrMalformed, p.Name)
		}
		seen[p.Name] = true
		if p.Quality != collector.Bad && (math.IsNaN(p.Value) || math.IsInf(p.Value, 0)) {
			return fmt.Errorf("%w: point %q value %v is not finite", ErrMalformed, p.Name, p.Value)
		}
	}
	return nil
}

// Header is what a forwarder needs of an encoded reading to publish it unchanged: its topic
// parts, its sequence number for messages, and its time for the age of a backlog.
type Header struct {
	Site, Meter string
	Seq         uint64
	Time        time.Time
}

// Topic is the reading's topic.
func (h Header) Topic() string { return ReadingTopic(h.Site, h.Meter) }

// DecodeHeader reads the header of a payload written by Encode without decoding its points, so an
// edge can publish the bytes it spooled as they are. A payload in Encode's own field order (every
// one Encode wrote) is scanned in place; any other is decoded and validated in full.
func DecodeHeader(b []byte) (Header, error) {
	if h, ok := scanHeader(b); ok {
		return h, nil
	}
	r, err := Decode(b)
	if err != nil {
		return Header{}, err
	}
	return Header{Site: r.Site, Meter: r.Meter, Seq: r.Seq, Time: r.Time}, nil
}

// scanHeader matches the prefix Encode writes: {"v":1,"site":"…","meter":"…",["edge":"…",]"seq":N,"time":"…".
// Ids never need JSON escapes (ValidID), so a quote ends each of them.
func scanHeader(b []byte) (Header, bool) {
	var h Header
	rest, ok := cutPrefix(b, `{"v":1,"site":"`)
	if !ok {
		return h, false
	}
	if h.Site, rest, ok = cutString(rest); !ok {
		return h, false
	}
	if rest, ok = cutPrefix(rest, `,"meter":"`); !ok {
		return h, false
	}
	if h.Meter, rest, ok = cutString(rest); !ok {
		return h, false
	}
	if r2, ok := cutPrefix(rest, `,"edge":"`); ok {
		if _, rest, ok = cutString(r2); !ok {
			return h, false
		}
	}
	if rest, ok = cutPrefix(rest, `,"seq":`); !ok {
		return h, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		if n == 19 {
			return h, false // beyond what a uint64 surely holds: let Decode judge it
		}
		h.Seq = h.Seq*10 + uint64(rest[n]-'0')
		n++
	}
	if n == 0 {
		return h, false
	}
	if rest, ok = cutPrefix(rest[n:], `,"time":"`); !ok {
		return h, false
	}
	ts, _, ok := cutString(rest)
	if !ok {
		return h, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || !ValidID(h.Site) || !ValidID(h.Meter) {
		return h, false
	}
	h.Time = t.UTC()
	return h, true
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// cutString returns the text up to the next quote and what follows the quote; a backslash (an
// escape Encode never writes in these fields) fails the scan.
func cutString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		switch c {
		case '"':
			return string(b[:i]), b[i+1:], true
		case '\\':
			return "", b, false
		}
	}
	return "", b, false
}
