package store

import (
	"context"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// Readings are append-only evidence. The first reading stored for a (site, meter, time) is the
// one every reader and the ledger see, whatever arrives later: that is the rule that picks one.
// A later reading with the same key and the same content (edge, seq, time source, points and
// values) is a replay and stores nothing. A later one that differs in anything is a conflict: it
// is kept beside the first, never over it, and Conflicts lists it. Each distinct conflicting
// version is kept once.

// Conflict is a reading that arrived for a (site, meter, time) already holding a different one.
type Conflict struct {
	Reading collector.Reading // the reading set aside; the kept one is Readings at Reading.Time
	// Received is when the store set it aside (the platform's clock, to the second on InfluxDB
	// it is the write time).
	Received time.Time
}

// Evidence is the store's record of conflicting readings; both back ends implement it.
type Evidence interface {
	// Conflicts returns the conflicts of a site with from <= time < to, oldest first; meter ""
	// means every meter of the site.
	Conflicts(ctx context.Context, site, meter string, from, to time.Time) ([]Conflict, error)
}

var (
	_ Evidence = (*SQLite)(nil)
	_ Evidence = (*Influx)(nil)
)

// sameReading reports whether a and b carry the same evidence: a replay, not a conflict.
func sameReading(a, b collector.Reading) bool {
	if a.Edge != b.Edge || a.Seq != b.Seq || a.TimeSource != b.TimeSource || len(a.Points) != len(b.Points) {
		return false
	}
	for i, p := range a.Points {
		q := b.Points[i]
		if p.Name != q.Name || p.Unit != q.Unit || p.Quality != q.Quality || p.Code != q.Code || p.Error != q.Error {
			return false
		}
		if p.Quality != collector.Bad && p.Value != q.Value {
			return false
		}
	}
	return true
}
