package store

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// ErrRejected is wrapped by write errors caused by the data itself (a time outside the storable
// range, a non-finite value, a point name that clashes with the schema). Retrying the same data
// cannot succeed; every other write error may be temporary and is worth retrying.
var ErrRejected = errors.New("rejected by the store")

// The storable time range is InfluxDB's (models.MinNanoTime, models.MaxNanoTime), applied to both
// back ends so that they accept the same data: about 1677-09-21 to 2262-04-11.
const (
	minNanos = math.MinInt64 + 2
	maxNanos = math.MaxInt64 - 1
)

var (
	minTime = time.Unix(0, minNanos)
	maxTime = time.Unix(0, maxNanos)
)

// storableNanos returns t in Unix nanoseconds, or an error when t is zero or outside the range.
func storableNanos(t time.Time) (int64, error) {
	if t.IsZero() || t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("%w: time %v is outside %v .. %v", ErrRejected, t, minTime.UTC(), maxTime.UTC())
	}
	return t.UnixNano(), nil
}

// clampNanos converts a query bound to Unix nanoseconds, clamping it to the storable range, so
// that time.Time{} and far-future bounds mean "from the start" and "to the end".
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return minNanos
	case t.After(maxTime):
		return maxNanos
	}
	return t.UnixNano()
}

// bounds turns [from, to) into the closed nanosecond range [lo, hi]; ok is false when it is empty.
func bounds(from, to time.Time) (lo, hi int64, ok bool) {
	lo = clampNanos(from)
	if to.After(maxTime) {
		hi = maxNanos
	} else {
		hi = clampNanos(to) - 1
	}
	return lo, hi, lo <= hi
}

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// checkReading rejects what either back end cannot store faithfully.
func checkReading(r collector.Reading) error {
	if r.Site == "" || r.Meter == "" {
		return fmt.Errorf("%w: reading has no site or meter (site %q, meter %q)", ErrRejected, r.Site, r.Meter)
	}
	if _, err := storableNanos(r.Time); err != nil {
		return fmt.Errorf("reading of %s/%s: %w", r.Site, r.Meter, err)
	}
	if r.Seq > math.MaxInt64 {
		return fmt.Errorf("%w: reading of %s/%s: seq %d does not fit a signed 64-bit integer", ErrRejected, r.Site, r.Meter, r.Seq)
	}
	seen := make(map[string]bool, len(r.Points))
	for _, p := range r.Points {
		if p.Name == "" {
			return fmt.Errorf("%w: reading of %s/%s has a point without a name", ErrRejected, r.Site, r.Meter)
		}
		if seen[p.Name] {
			return fmt.Errorf("%w: reading of %s/%s has point %q twice", ErrRejected, r.Site, r.Meter, p.Name)
		}
		seen[p.Name] = true
		if p.Quality > collector.Bad {
			return fmt.Errorf("%w: reading of %s/%s: point %q has unknown quality %d", ErrRejected, r.Site, r.Meter, p.Name, p.Quality)
		}
		if p.Quality != collector.Bad && !finite(p.Value) {
			return fmt.Errorf("%w: reading of %s/%s: point %q value %v is not finite", ErrRejected, r.Site, r.Meter, p.Name, p.Value)
		}
	}
	return nil
}

func checkBucket(b ledger.Bucket) error {
	if b.Site == "" || b.Meter == "" {
		return fmt.Errorf("%w: bucket has no site or meter (site %q, meter %q)", ErrRejected, b.Site, b.Meter)
	}
	if _, err := storableNanos(b.Start); err != nil {
		return fmt.Errorf("bucket of %s/%s: %w", b.Site, b.Meter, err)
	}
	if !finite(b.Volume) || !finite(b.Coverage) {
		return fmt.Errorf("%w: bucket of %s/%s at %v: volume %v or coverage %v is not finite", ErrRejected, b.Site, b.Meter, b.Start, b.Volume, b.Coverage)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// pointMeta is a point without its value: what both back ends keep in a JSON text beside the
// values. Short keys, since it is stored once per reading.
type pointMeta struct {
	Name    string            `json:"n"`
	Unit    string            `json:"u,omitempty"`
	Quality collector.Quality `json:"q,omitempty"`
	Code    uint32            `json:"c,omitempty"`
	Error   string            `json:"e,omitempty"`
}
