package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
)

var _ Store = (*Influx)(nil)

// InfluxConfig says where the InfluxDB store lives. The same settings reach InfluxDB 1.8 (through
// its v2-compatible write API), 2.x and 3.x.
type InfluxConfig struct {
	URLs      []string `yaml:"urls"`       // the first reachable one is used
	Token     string   `yaml:"token"`      // for 1.8: "user:password", or empty without auth
	TokenFile string   `yaml:"token_file"` // a file holding the token, instead of Token
	Org       string   `yaml:"org"`        // ignored by 1.8
	Bucket    string   `yaml:"bucket"`     // "db/rp" or "db" on 1.8
	// RollupBucket is where the hour and day roll-ups go ("db/rp"; default Bucket). A year of
	// day roll-ups read across the 52 weekly shards of a default retention policy costs
	// InfluxDB 1.8 seconds; in a retention policy with year-long shard groups, milliseconds.
	// With create_database, a "db/rp" here whose rp does not exist is created with
	// SHARD DURATION 52w (1.8; on 2.x create the bucket and its DBRP mapping yourself).
	RollupBucket string `yaml:"rollup_bucket"`
	// Database is what InfluxQL reads name in db=; by default the part of Bucket before '/'. On 2.x
	// it is the database of a DBRP mapping onto Bucket.
	Database string `yaml:"database"`
	// CreateDatabase runs CREATE DATABASE at open (1.8; 2.x and 3.x refuse it).
	CreateDatabase bool          `yaml:"create_database"`
	Timeout        time.Duration `yaml:"timeout"` // per HTTP request; default 10s
}

// Default fills in what the file left out.
func (c *InfluxConfig) Default() {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Database == "" {
		c.Database, _, _ = strings.Cut(c.Bucket, "/")
	}
}

// Validate reports every problem of the section at path (for example "store.influx").
func (c *InfluxConfig) Validate(p *config.Problems, path string) {
	for _, pr := range c.problems() {
		p.Addf(join(path, pr.key), "%s", pr.msg)
	}
}

type problem struct{ key, msg string }

func (c *InfluxConfig) problems() []problem {
	var ps []problem
	if len(c.URLs) == 0 {
		ps = append(ps, problem{"urls", "at least one URL is required, e.g. http://127.0.0.1:8086"})
	}
	// The URL itself is not echoed: a malformed one may hold a password that url.Redacted cannot
	// find.
	for i, raw := range c.URLs {
		key := fmt.Sprintf("urls[%d]", i)
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			ps = append(ps, problem{key, "is not a valid URL"})
		case u.Scheme != "http" && u.Scheme != "https":
			ps = append(ps, problem{key, fmt.Sprintf("scheme %q is not http or https (write http://host:8086)", u.Scheme)})
		case u.Host == "":
			ps = append(ps, problem{key, "has no host"})
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		ps = append(ps, problem{"token_file", "set token or token_file, not both"})
	}
	if c.Bucket == "" {
		ps = append(ps, problem{"bucket", `is required ("db/rp" or "db" on InfluxDB 1.8)`})
	} else if strings.Count(c.Bucket, "/") > 1 {
		ps = append(ps, problem{"bucket", fmt.Sprintf("%q has more than one '/'", c.Bucket)})
	}
	if db, _, _ := strings.Cut(c.Bucket, "/"); c.RollupBucket != "" && c.RollupBucket != c.Bucket {
		if rdb, rrp, ok := strings.Cut(c.RollupBucket, "/"); !ok || rrp == "" || strings.Contains(rrp, "/") {
			ps = append(ps, problem{"rollup_bucket", fmt.Sprintf(`%q is not "db/rp"`, c.RollupBucket)})
		} else if rdb != db {
			ps = append(ps, problem{"rollup_bucket", fmt.Sprintf("database %q differs from the bucket's %q; roll-ups live in the same database", rdb, db)})
		}
	}
	if c.Timeout < 0 {
		ps = append(ps, problem{"timeout", fmt.Sprintf("%v is negative", c.Timeout)})
	}
	return ps
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Influx is the store in InfluxDB. Writes use the v2 write API through influxdb-client-go, one
// blocking request per batch, so an error reaches the caller, who may retry; nothing is buffered
// or dropped behind its back. Reads use InfluxQL over /query, which InfluxDB 1.8, 2.x (v1
// compatibility API) and 3.x all serve, so nothing depends on Flux.
//
// Schema. Measurement "reading", tags site and meter, one point per reading at its time (ns):
//
//	<point>        float   the value, for every point that is not bad
//	<point>_q      integer quality: 0 good, 1 uncertain, 2 bad
//	<point>_code   integer protocol status code, when not zero
//	seq            integer
//	edge           string
//	time_source    string
//	points         string  JSON list of the points in order, with unit, quality, code and error
//
// The points field is rewritten whole by every write, so it decides which points a reading has
// when the same (site, meter, time) is written again (InfluxDB merges fields and would otherwise
// keep a dropped point's old value). A point whose name would collide with another field (seq,
// edge, time_source, points, site, meter, time, or another point's _q/_code) is rejected.
//
// Measurement "volume", tags site and meter, at the bucket start: volume (float), flags
// (integer), coverage (float).
type Influx struct {
	base   *url.URL // the chosen server
	auth   string   // Authorization header value; never logged
	db, rp string
	rollRP string // retention policy of the roll-ups
	client influxdb2.Client
	writer api.WriteAPIBlocking
	roller api.WriteAPIBlocking // writes to RollupBucket
	rc     rollCache
	http   *http.Client
	logger *slog.Logger
	// maxBatch is the most points per write request, chunkSize the most rows per chunk of a
	// query answer; tests lower them to exercise the splitting.
	maxBatch, chunkSize int
	newest              newestTimes // per meter, for the conflict check (influx_conflicts.go)
}

// OpenInflux connects to the first reachable URL of cfg and, when asked, creates the database.
func OpenInflux(ctx context.Context, cfg InfluxConfig, logger *slog.Logger) (*Influx, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Default()
	if ps := cfg.problems(); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.key + ": " + p.msg
		}
		return nil, fmt.Errorf("open influx store: %s", strings.Join(msgs, "; "))
	}
	token := cfg.Token
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("open influx store: read token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	s := &Influx{
		http:      &http.Client{Timeout: cfg.Timeout},
		logger:    logger,
		maxBatch:  5000,
		chunkSize: 10000,
	}
	s.db, s.rp, _ = strings.Cut(cfg.Bucket, "/")
	if cfg.Database != "" {
		s.db = cfg.Database
	}
	if token != "" {
		s.auth = "Token " + token
	}

	var errs []string
	for _, raw := range cfg.URLs {
		u, _ := url.Parse(raw) // checked by problems
		err := s.ping(ctx, u)
		if err == nil {
			s.base = u
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open influx store: %w", ctx.Err())
		}
		logger.Warn("influxdb url unreachable, trying the next", "url", u.Redacted(), "err", err)
		errs = append(errs, u.Redacted()+": "+err.Error())
	}
	if s.base == nil {
		return nil, fmt.Errorf("open influx store: no URL is reachable: %s", strings.Join(errs, "; "))
	}

	if cfg.RollupBucket == "" {
		cfg.RollupBucket = cfg.Bucket
	}
	_, s.rollRP, _ = strings.Cut(cfg.RollupBucket, "/")
	if cfg.CreateDatabase {
		q := "CREATE DATABASE " + quoteIdent(s.db)
		if _, err := s.query(ctx, http.MethodPost, "", q); err != nil {
			return nil, fmt.Errorf("open influx store: create database %q on %s: %w", s.db, s.base.Redacted(), err)
		}
		if cfg.RollupBucket != cfg.Bucket {
			q := fmt.Sprintf("CREATE RETENTION POLICY %s ON %s DURATION INF REPLICATION 1 SHARD DURATION 52w", quoteIdent(s.rollRP), quoteIdent(s.db))
			if _, err := s.query(ctx, http.MethodPost, "", q); err != nil && !strings.Contains(err.Error(), "already exists") {
				return nil, fmt.Errorf("open influx store: create retention policy %q on %s: %w", s.rollRP, s.base.Redacted(), err)
			}
		}
	}

	opts := influxdb2.DefaultOptions().
		SetHTTPClient(s.http).
		SetPrecision(time.Nanosecond).
		SetApplicationName("aqualoop")
	s.client = influxdb2.NewClientWithOptions(s.base.String(), token, opts)
	s.writer = s.client.WriteAPIBlocking(cfg.Org, cfg.Bucket)
	s.roller = s.client.WriteAPIBlocking(cfg.Org, cfg.RollupBucket)
	if err := s.backfillRollups(ctx); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("open influx store: fill roll-ups: %w", err)
	}
	logger.Info("influxdb store open", "url", s.base.Redacted(), "bucket", cfg.Bucket, "database", s.db)
	return s, nil
}

// ping asks GET /ping, which 1.8, 2.x and 3.x serve. Any answer below 500 proves a server is
// there; an authorization problem shows up on the first write with a clearer message.
func (s *Influx) ping(ctx context.Context, base *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("ping").String(), nil)
	if err != nil {
		return err
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 500 {
		return fmt.Errorf("GET /ping: %s", resp.Status)
	}
	return nil
}

// reserved are the field and tag names a point may not take.
var reserved = map[string]bool{"seq": true, "edge": true, "time_source": true, "points": true, "site": true, "meter": true, "time": true}

// readingPoint builds the line-protocol point of r.
func readingPoint(r collector.Reading) (*write.Point, error) { return pointIn("reading", r) }

// pointIn builds the line-protocol point of r in a measurement with the reading schema.
func pointIn(measurement string, r collector.Reading) (*write.Point, error) {
	if err := checkReading(r); err != nil {
		return nil, err
	}
	used := make(map[string]string, 3*len(r.Points))
	meta := make([]pointMeta, len(r.Points))
	p := write.NewPointWithMeasurement(measurement).
		AddTag("site", r.Site).
		AddTag("meter", r.Meter).
		SetTime(r.Time)
	for i, pt := range r.Points {
		for _, key := range []string{pt.Name, pt.Name + "_q", pt.Name + "_code"} {
			if reserved[key] {
				return nil, fmt.Errorf("%w: reading of %s/%s: point %q would overwrite field %q", ErrRejected, r.Site, r.Meter, pt.Name, key)
			}
			if other, ok := used[key]; ok {
				return nil, fmt.Errorf("%w: reading of %s/%s: points %q and %q both need field %q", ErrRejected, r.Site, r.Meter, other, pt.Name, key)
			}
			used[key] = pt.Name
		}
		if pt.Quality != collector.Bad {
			p.AddField(pt.Name, pt.Value)
		}
		p.AddField(pt.Name+"_q", int64(pt.Quality))
		if pt.Code != 0 {
			p.AddField(pt.Name+"_code", int64(pt.Code))
		}
		meta[i] = pointMeta{Name: pt.Name, Unit: pt.Unit, Quality: pt.Quality, Code: pt.Code, Error: pt.Error}
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode points of %s/%s: %w", r.Site, r.Meter, err)
	}
	p.AddField("seq", int64(r.Seq)).
		AddField("edge", r.Edge).
		AddField("time_source", string(r.TimeSource)).
		AddField("points", string(js))
	return p, nil
}

// WriteReadings writes rs, in requests of at most a few thousand points. A reading for a
// (site, meter, time) already stored is not written over it: it is set aside in
// reading_conflict when it differs and dropped when it is the same (see conflicts.go). A failed
// request returns its error; requests before it stay written, which is harmless because the
// retry finds them stored and identical.
func (s *Influx) WriteReadings(ctx context.Context, rs []collector.Reading) error {
	for _, r := range rs {
		if _, err := readingPoint(r); err != nil {
			return fmt.Errorf("write readings: %w", err)
		}
	}
	pts, err := s.sortOut(ctx, rs)
	if err != nil {
		return fmt.Errorf("write readings: %w", err)
	}
	if err := s.writePoints(ctx, "write readings", pts); err != nil {
		return err
	}
	s.newest.advance(rs)
	return nil
}

// WriteBuckets writes bs, in requests of at most a few thousand points.
func (s *Influx) WriteBuckets(ctx context.Context, bs []ledger.Bucket) error {
	pts := make([]*write.Point, 0, min(len(bs), s.maxBatch))
	for _, b := range bs {
		if err := checkBucket(b); err != nil {
			return fmt.Errorf("write buckets: %w", err)
		}
		pts = append(pts, write.NewPointWithMeasurement("volume").
			AddTag("site", b.Site).
			AddTag("meter", b.Meter).
			AddField("volume", b.Volume).
			AddField("flags", int64(b.Flags)).
			AddField("coverage", b.Coverage).
			SetTime(b.Start))
	}
	if err := s.writePoints(ctx, "write buckets", pts); err != nil {
		return err
	}
	return s.rollUpCached(ctx, bs)
}

func (s *Influx) writePoints(ctx context.Context, what string, pts []*write.Point) error {
	return s.writePointsTo(ctx, s.writer, what, pts)
}

func (s *Influx) writePointsTo(ctx context.Context, w api.WriteAPIBlocking, what string, pts []*write.Point) error {
	for len(pts) > 0 {
		n := min(len(pts), s.maxBatch)
		if err := w.WritePoint(ctx, pts[:n]...); err != nil {
			return fmt.Errorf("%s to %s: %w", what, s.base.Redacted(), classify(err))
		}
		pts = pts[n:]
	}
	return nil
}

// classify marks the answers that say the data itself is wrong (400: a field type conflict, a
// malformed or out-of-range point; 422: outside the retention period) as ErrRejected. The rest
// (unreachable, 401, 404 database not found, 429, 5xx) may pass with time or an operator's fix.
func classify(err error) error {
	var he *influxhttp.Error
	if errors.As(err, &he) && (he.StatusCode == http.StatusBadRequest || he.StatusCode == http.StatusUnprocessableEntity) {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return err
}

// Close releases the HTTP connections. Writes are synchronous, so nothing is pending.
func (s *Influx) Close() error {
	s.client.Close()
	s.http.CloseIdleConnections()
	return nil
}
