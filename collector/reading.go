// Package collector defines what an edge collector reads from a water meter (Reading, Point,
// Quality), the Source contract every protocol implements, and the poll scheduler that drives
// the polling sources, one goroutine per physical bus or connection.
package collector

import (
	"fmt"
	"time"
)

// Quality says whether a point's value can be used. It travels with every point so that one bad
// register never hides the good ones read beside it.
type Quality uint8

const (
	// Good is a value read without error.
	Good Quality = iota
	// Uncertain is a value the device returned but flagged (for example an OPC UA Uncertain status).
	Uncertain
	// Bad is no usable value: an exception, a timeout, an unknown node. Value is then meaningless.
	Bad
)

var qualityNames = [...]string{Good: "good", Uncertain: "uncertain", Bad: "bad"}

// String returns the lowercase name used on the wire and in the store.
func (q Quality) String() string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return fmt.Sprintf("quality(%d)", uint8(q))
}

// ParseQuality is the inverse of Quality.String.
func ParseQuality(s string) (Quality, error) {
	for i, n := range qualityNames {
		if n == s {
			return Quality(i), nil
		}
	}
	return Bad, fmt.Errorf("quality %q is not one of good, uncertain, bad", s)
}

// TimeSource names the clock a reading's Time comes from, so an auditor can tell a device's own
// timestamp from the collector's.
type TimeSource string

const (
	// TimeSourceDevice is the meter's or OPC UA server's source timestamp.
	TimeSourceDevice TimeSource = "source"
	// TimeSourceServer is the OPC UA server timestamp.
	TimeSourceServer TimeSource = "server"
	// TimeSourceCollector is the edge's clock at the moment the poll returned (Modbus has no timestamps).
	TimeSourceCollector TimeSource = "collector"
)

// Well-known point names. A meter may carry others (pressure, conductivity, temperature).
const (
	// PointTotal is the forward totalizer in m³.
	PointTotal = "total"
	// PointFlow is the instantaneous flow rate in m³/h.
	PointFlow = "flow"
)

// Point is one value of a meter at one instant.
type Point struct {
	Name    string  // "total", "flow", ...
	Value   float64 // engineering units after scale and offset
	Unit    string  // "m3", "m3/h", ...
	Quality Quality
	// Code is the protocol status behind a non-good quality: a Modbus exception code or an OPC UA
	// StatusCode. Zero when good.
	Code uint32
	// Error is a human-readable reason for a non-good quality.
	Error string
}

// Reading is everything read from one meter in one poll (or one OPC UA data change), stamped by
// the edge with a per-meter sequence number so the platform can see gaps and drop duplicates.
type Reading struct {
	Site       string
	Meter      string
	Edge       string // the collector that read it
	Seq        uint64 // per meter, strictly increasing across edge restarts
	Time       time.Time
	TimeSource TimeSource
	Points     []Point
}

// Point returns the named point and whether the reading carries it.
func (r Reading) Point(name string) (Point, bool) {
	for _, p := range r.Points {
		if p.Name == name {
			return p, true
		}
	}
	return Point{}, false
}
