// Package ledger turns totalizer readings into an auditable volume ledger: per meter, 1-minute
// event-time buckets of m³, each carrying flags that say how its volume was obtained.
package ledger

import (
	"strings"
	"time"
)

// BucketWidth is the ledger's resolution. Every bucket starts on a whole UTC minute.
const BucketWidth = time.Minute

// Flag records how a bucket's volume came about. A bucket's flags are those of its current
// value: a late reading that fills a gap clears Gap and Estimated from the minutes it fills, so
// the ledger is the same whatever order the readings arrived in.
type Flag uint16

const (
	// Rollover: the totalizer wrapped at its register maximum inside this bucket.
	Rollover Flag = 1 << iota
	// Reset: the meter was reset or replaced; a new segment starts here.
	Reset
	// Clamped: a small reverse step (noise) was clamped to zero.
	Clamped
	// Spike: a step above Q4 × Δt was rejected; the bucket lacks that volume.
	Spike
	// Gap: readings were missing for part of the bucket; see Coverage.
	Gap
	// Derived: volume integrated from flow rate, not from a totalizer difference.
	Derived
	// Estimated: volume spread over a gap by interpolation; the total is exact, its timing is not.
	Estimated
	// Fault: a reverse step that is neither rollover, reset nor noise.
	Fault
)

var flagNames = []string{"rollover", "reset", "clamped", "spike", "gap", "derived", "estimated", "fault", "replaced"}

// String lists the set flags, comma-separated, in a fixed order.
func (f Flag) String() string {
	var parts []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ",")
}

// Bucket is the volume one meter measured in one minute.
type Bucket struct {
	Site   string
	Meter  string
	Start  time.Time // UTC, truncated to BucketWidth
	Volume float64   // m³
	Flags  Flag
	// Coverage is the fraction of the minute covered by good readings (0..1).
	Coverage float64
}

// Align returns the start of the bucket that contains t.
func Align(t time.Time) time.Time { return t.UTC().Truncate(BucketWidth) }
