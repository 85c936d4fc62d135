// Package store persists raw readings and the volume ledger. It has two back ends with one
// contract: InfluxDB (1.8 through its v2-compatible API, 2.x, 3.x) for production, and a SQLite
// file for the embedded demo and small sites. One contract test runs against both, so the ledger
// and every indicator computed from it are identical whichever store a site uses.
package store

import (
	"context"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

// Store is what ingest, the ledger and the engine need from persistence.
type Store interface {
	// WriteReadings stores raw readings, append-only: the first reading of a (site, meter, time)
	// stays. The same reading again is stored once; a different one is set aside as a conflict
	// (see Evidence).
	WriteReadings(ctx context.Context, rs []collector.Reading) error
	// Readings returns the readings of one meter with from <= time < to, oldest first.
	Readings(ctx context.Context, site, meter string, from, to time.Time) ([]collector.Reading, error)
	// LastReading returns the newest reading of a meter at or before t; ok is false if none.
	LastReading(ctx context.Context, site, meter string, t time.Time) (r collector.Reading, ok bool, err error)
	// WriteBuckets stores ledger buckets; a bucket with the same (site, meter, start) replaces the
	// stored one.
	WriteBuckets(ctx context.Context, bs []ledger.Bucket) error
	// Buckets returns a site's buckets with from <= start < to, ordered by meter then start.
	Buckets(ctx context.Context, site string, from, to time.Time) ([]ledger.Bucket, error)
	Close() error
}
