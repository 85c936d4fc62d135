package ingest

import (
	"fmt"
	"hash/maphash"
	"math"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
)

// Limits bound what one message may carry and what a site's credential can make the platform
// remember, so that no message, and no flood of them, can stop ingest or grow its memory without
// bound. Each rejection is counted under its kind and dead-lettered with the reason.
type Limits struct {
	// MaxPayloadBytes is the largest message accepted (default 64 KiB; a reading with a few
	// points is a few hundred bytes). Set the broker's max_packet_size to match.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// MaxPoints is the most points one reading may carry (default 64).
	MaxPoints int `yaml:"max_points"`
	// MaxStringBytes is the longest point name, unit or error text (default 256 bytes).
	MaxStringBytes int `yaml:"max_string_bytes"`
	// MaxEdgesPerSite is how many distinct edge ids a site may publish from (default 64). The
	// first ones seen since start are admitted; a reading from one more is rejected.
	MaxEdgesPerSite int `yaml:"max_edges_per_site"`
	// MaxMetersPerSite bounds the meters of a site when no site model says which exist
	// (default 10 000); with a model only its meters are accepted.
	MaxMetersPerSite int `yaml:"max_meters_per_site"`
	// MaxAbsValue is the largest magnitude a point's value may have (default 1e15): far above
	// any register, far enough below the float range that differences and sums stay exact.
	MaxAbsValue float64 `yaml:"max_abs_value"`
	// MaxAhead is how far a reading may be ahead of the platform's clock (default 24h): an edge
	// clock set wrong must not write the future.
	MaxAhead time.Duration `yaml:"max_ahead"`
	// MaxBehind is how far a reading may be older than the newest reading of its meter
	// (default 8784h, a leap year): late data from an edge's spool is fine, a meter that jumps
	// back decades (an edge booted without NTP reads 1970) is not.
	MaxBehind time.Duration `yaml:"max_behind"`
	// NotBefore is the earliest time a reading may have (default 2000-01-01T00:00:00Z): before
	// any meter of the platform was commissioned.
	NotBefore time.Time `yaml:"not_before"`
	// MaxAttempts is how often one reading is put through the ledger before it is dead-lettered
	// (default 5). The reading stays stored; the ledger books its volume with its neighbours.
	MaxAttempts int `yaml:"max_attempts"`
}

// Default fills in what the file left out.
func (l *Limits) Default() {
	if l.MaxPayloadBytes == 0 {
		l.MaxPayloadBytes = 64 << 10
	}
	if l.MaxPoints == 0 {
		l.MaxPoints = 64
	}
	if l.MaxStringBytes == 0 {
		l.MaxStringBytes = 256
	}
	if l.MaxEdgesPerSite == 0 {
		l.MaxEdgesPerSite = 64
	}
	if l.MaxMetersPerSite == 0 {
		l.MaxMetersPerSite = 10000
	}
	if l.MaxAbsValue == 0 {
		l.MaxAbsValue = 1e15
	}
	if l.MaxAhead == 0 {
		l.MaxAhead = 24 * time.Hour
	}
	if l.MaxBehind == 0 {
		l.MaxBehind = 366 * 24 * time.Hour
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if l.MaxAttempts == 0 {
		l.MaxAttempts = 5
	}
}

// Validate reports every problem under path (for example "ingest.limits").
func (l *Limits) Validate(p *config.Problems, path string) {
	pos := func(key string, v int, hint string) {
		if v < 1 {
			p.Addf(path+"."+key, "%d must be at least 1 (%s)", v, hint)
		}
	}
	pos("max_payload_bytes", l.MaxPayloadBytes, "try 65536")
	pos("max_points", l.MaxPoints, "try 64")
	pos("max_string_bytes", l.MaxStringBytes, "try 256")
	pos("max_edges_per_site", l.MaxEdgesPerSite, "try 64")
	pos("max_meters_per_site", l.MaxMetersPerSite, "try 10000")
	pos("max_attempts", l.MaxAttempts, "try 5")
	if !(l.MaxAbsValue > 0) || math.IsInf(l.MaxAbsValue, 0) {
		p.Addf(path+".max_abs_value", "%v must be a positive number (try 1e15)", l.MaxAbsValue)
	}
	if l.MaxAhead < 0 {
		p.Addf(path+".max_ahead", "%v is negative (try 24h)", l.MaxAhead)
	}
	if l.MaxBehind < 0 {
		p.Addf(path+".max_behind", "%v is negative (try 8784h)", l.MaxBehind)
	}
	if l.NotBefore.Before(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)) {
		p.Addf(path+".not_before", "%v is before 1900 (try 2000-01-01T00:00:00Z)", l.NotBefore)
	}
}

// Rejection kinds of the limits.
const (
	KindTooLarge    = "payload_too_large"
	KindTooMany     = "too_many_points"
	KindLongString  = "string_too_long"
	KindValueRange  = "value_out_of_range"
	KindEdgeLimit   = "edge_limit"
	KindMeterLimit  = "meter_limit"
	KindAhead       = "time_ahead"
	KindTooOld      = "time_before_floor"
	KindBehind      = "time_behind_meter"
	KindPanic       = "panic"
	KindLedgerError = "ledger_failed"
	// KindBucketRejected counts ledger buckets the store refused (not messages; nothing is
	// dead-lettered for them).
	KindBucketRejected = "bucket_rejected"
)

// admission remembers, per site, the edges and meters seen since start and each meter's newest
// reading time: memory proportional to the limits, whatever a credential sends.
type admission struct {
	edges  map[string]map[string]struct{}
	meters map[string]map[string]int64 // site → meter → newest reading (Unix ns)
}

func newAdmission() *admission {
	return &admission{edges: map[string]map[string]struct{}{}, meters: map[string]map[string]int64{}}
}

// check applies the limits to a decoded reading; it changes nothing. The caller holds in.mu.
func (in *Ingester) check(r collector.Reading) (string, error) {
	lim := in.cfg.Limits
	if len(r.Points) > lim.MaxPoints {
		return KindTooMany, fmt.Errorf("reading of %s has %d points, more than max_points %d", r.Meter, len(r.Points), lim.MaxPoints)
	}
	for i, p := range r.Points {
		for what, s := range map[string]string{"name": p.Name, "unit": p.Unit, "error": p.Error} {
			if len(s) > lim.MaxStringBytes {
				return KindLongString, fmt.Errorf("points[%d] %s is %d bytes, more than max_string_bytes %d", i, what, len(s), lim.MaxStringBytes)
			}
		}
	}
	for i, p := range r.Points {
		if p.Quality != collector.Bad && math.Abs(p.Value) > lim.MaxAbsValue {
			return KindValueRange, fmt.Errorf("points[%d] %s value %g is beyond max_abs_value %g", i, p.Name, p.Value, lim.MaxAbsValue)
		}
	}
	now := in.opts.Now()
	switch {
	case r.Time.After(now.Add(lim.MaxAhead)):
		return KindAhead, fmt.Errorf("reading time %s is more than max_ahead %v ahead of the platform clock %s",
			r.Time.Format(time.RFC3339), lim.MaxAhead, now.UTC().Format(time.RFC3339))
	case r.Time.Before(lim.NotBefore):
		return KindTooOld, fmt.Errorf("reading time %s is before not_before %s", r.Time.Format(time.RFC3339), lim.NotBefore.Format(time.RFC3339))
	}
	edges := in.adm.edges[r.Site]
	if _, ok := edges[r.Edge]; !ok && len(edges) >= lim.MaxEdgesPerSite {
		return KindEdgeLimit, fmt.Errorf("edge %q would be edge number %d of site %s, more than max_edges_per_site %d", r.Edge, len(edges)+1, r.Site, lim.MaxEdgesPerSite)
	}
	meters := in.adm.meters[r.Site]
	newest, ok := meters[r.Meter]
	if !ok && in.opts.Known == nil && len(meters) >= lim.MaxMetersPerSite {
		return KindMeterLimit, fmt.Errorf("meter %s would be meter number %d of site %s, more than max_meters_per_site %d", r.Meter, len(meters)+1, r.Site, lim.MaxMetersPerSite)
	}
	if ok && r.Time.UnixNano() < newest-int64(lim.MaxBehind) {
		return KindBehind, fmt.Errorf("reading time %s is more than max_behind %v before the meter's newest reading %s",
			r.Time.Format(time.RFC3339), lim.MaxBehind, time.Unix(0, newest).UTC().Format(time.RFC3339))
	}
	return "", nil
}

// admit records an accepted reading's edge and meter. The caller holds in.mu.
func (in *Ingester) admit(r collector.Reading) {
	if in.adm.edges[r.Site] == nil {
		in.adm.edges[r.Site] = map[string]struct{}{}
		in.adm.meters[r.Site] = map[string]int64{}
	}
	in.adm.edges[r.Site][r.Edge] = struct{}{}
	t := r.Time.UnixNano()
	if newest, ok := in.adm.meters[r.Site][r.Meter]; !ok || t > newest {
		in.adm.meters[r.Site][r.Meter] = t
	}
}

// edgeHash hashes an edge id for the duplicate memory, which keeps 8 bytes an entry instead of
// the id.
func (in *Ingester) edgeHash(edge string) uint64 { return maphash.String(in.seed, edge) }
