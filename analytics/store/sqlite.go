package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"

	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver
)

var _ Store = (*SQLite)(nil)

// SQLite is the store in one SQLite file, for the embedded demo and small sites. Readings keep
// their points as JSON beside the row; a bad point's value is not kept and reads back as 0, as in
// InfluxDB.
//
// It is safe for concurrent use. Writes go through a single connection, so concurrent writers
// queue in Go (respecting their contexts) instead of spinning on SQLITE_BUSY; reads use their own
// connections and, in WAL mode, never wait for a writer.
type SQLite struct {
	w, r        *sql.DB
	getReadings *sql.Stmt
	getLast     *sql.Stmt
	getBuckets  *sql.Stmt
	putMeter    *sql.Stmt
	putInput    *sql.Stmt
	getInputs   *sql.Stmt
	delResult   *sql.Stmt
	putResult   *sql.Stmt
	getResults  *sql.Stmt

	upserts map[*upsert]*[upsertSizes]*sql.Stmt // multi-row writes by number of rows, prepared at open

	totalsMu sync.Mutex
	totals   map[string]*sql.Stmt // MeterTotals statements by shape of pieces
}

// sqliteMigrations are applied in order; the schema version is the number applied. Append only:
// a released migration is never edited.
var sqliteMigrations = []string{
	// 1: readings keyed by (site, meter, time), so a replayed reading overwrites itself, and the
	// volume ledger keyed by (site, meter, start). Times are Unix nanoseconds.
	`CREATE TABLE readings (
		site        TEXT    NOT NULL,
		meter       TEXT    NOT NULL,
		time        INTEGER NOT NULL,
		edge        TEXT    NOT NULL,
		seq         INTEGER NOT NULL,
		time_source TEXT    NOT NULL,
		points      TEXT    NOT NULL,
		PRIMARY KEY (site, meter, time)
	) WITHOUT ROWID;
	CREATE TABLE buckets (
		site     TEXT    NOT NULL,
		meter    TEXT    NOT NULL,
		start    INTEGER NOT NULL,
		volume   REAL    NOT NULL,
		flags    INTEGER NOT NULL,
		coverage REAL    NOT NULL,
		PRIMARY KEY (site, meter, start)
	) WITHOUT ROWID;
	-- A site's buckets over a short range, across all its meters, without scanning each meter's history.
	CREATE INDEX buckets_by_start ON buckets (site, start);`,

	// 2: the engine's tables. bucket_meters lists the meters that have buckets, so that summing a
	// site's ledger walks each meter's primary-key range in order instead of sorting a month of
	// rows. inputs holds production figures (NULL = not given) keyed by their period's start;
	// results one row per figure, so a chart selects one field without decoding anything.
	`CREATE TABLE bucket_meters (
		site  TEXT NOT NULL,
		meter TEXT NOT NULL,
		PRIMARY KEY (site, meter)
	) WITHOUT ROWID;
	INSERT INTO bucket_meters (site, meter) SELECT DISTINCT site, meter FROM buckets;
	CREATE TABLE inputs (
		site         TEXT    NOT NULL,
		start        INTEGER NOT NULL,
		end          INTEGER NOT NULL,
		product      REAL,
		product_unit TEXT    NOT NULL,
		output_value REAL,
		steam        REAL,
		PRIMARY KEY (site, start)
	) WITHOUT ROWID;
	CREATE TABLE results (
		site     TEXT    NOT NULL,
		boundary TEXT    NOT NULL,
		period   TEXT    NOT NULL,
		start    INTEGER NOT NULL,
		field    TEXT    NOT NULL,
		value    REAL    NOT NULL,
		PRIMARY KEY (site, boundary, period, start, field)
	) WITHOUT ROWID;`,

	// 3: hour and day roll-ups of the ledger (see rollup.go), filled from the stored buckets.
	sqliteRollupMigration(),
}

// OpenSQLite opens (creating if needed) the store file at path and brings its schema up to date.
func OpenSQLite(path string) (*SQLite, error) {
	// The path goes in a file: URI so that '?' or '#' in it cannot be taken for parameters.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)"
	w, err := sql.Open("sqlite", dsn+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32768)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{w: w}
	if err := s.migrate(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if err := s.createConflicts(context.Background()); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// 32 MiB of page cache per reading connection: a year's roll-ups of a park are a few
	// thousand pages, read again by every period query.
	s.r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)&_pragma=cache_size(-32768)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s for reading: %w", path, err)
	}
	s.r.SetMaxOpenConns(4)
	if err := s.prepare(); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate() error {
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS store_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	var have int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM store_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(sqliteMigrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d; upgrade aqualoop", have, len(sqliteMigrations))
	}
	for v := have + 1; v <= len(sqliteMigrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, sqliteMigrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO store_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return fmt.Errorf("record schema version %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit schema version %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion is the number of migrations applied to the file.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM store_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func (s *SQLite) prepare() error {
	var err error
	prep := func(db *sql.DB, dst **sql.Stmt, q string) {
		if err == nil {
			*dst, err = db.Prepare(q)
		}
	}
	prep(s.r, &s.getReadings, `SELECT time, edge, seq, time_source, points FROM readings
		WHERE site = ? AND meter = ? AND time >= ? AND time <= ? ORDER BY time`)
	prep(s.r, &s.getLast, `SELECT time, edge, seq, time_source, points FROM readings
		WHERE site = ? AND meter = ? AND time <= ? ORDER BY time DESC LIMIT 1`)
	prep(s.r, &s.getBuckets, `SELECT meter, start, volume, flags, coverage FROM buckets INDEXED BY buckets_by_start
		WHERE site = ? AND start >= ? AND start <= ? ORDER BY meter, start`)
	prep(s.w, &s.putMeter, `INSERT INTO bucket_meters (site, meter) VALUES (?, ?) ON CONFLICT DO NOTHING`)
	prep(s.w, &s.putInput, `INSERT INTO inputs (site, start, end, product, product_unit, output_value, steam)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (site, start) DO UPDATE SET end = excluded.end, product = excluded.product,
			product_unit = excluded.product_unit, output_value = excluded.output_value, steam = excluded.steam`)
	prep(s.r, &s.getInputs, `SELECT start, end, product, product_unit, output_value, steam FROM inputs
		WHERE site = ? AND start < ? AND end > ? ORDER BY start`)
	prep(s.w, &s.delResult, `DELETE FROM results WHERE site = ? AND boundary = ? AND period = ? AND start = ?`)
	// One statement per result, its figures as a JSON object: a statement per figure would run
	// a few hundred times a snapshot.
	prep(s.w, &s.putResult, `INSERT INTO results (site, boundary, period, start, field, value)
		SELECT ?, ?, ?, ?, key, value FROM json_each(?)`)
	prep(s.r, &s.getResults, `SELECT start, field, value FROM results
		WHERE site = ? AND boundary = ? AND period = ? AND start >= ? AND start <= ? ORDER BY start, field`)
	if err == nil {
		err = s.prepareUpserts()
	}
	if err != nil {
		return fmt.Errorf("prepare statements: %w", err)
	}
	return nil
}

// sqlPoint is a point as stored in readings.points.
type sqlPoint struct {
	pointMeta
	Value *float64 `json:"v,omitempty"` // nil for a bad point
}

// WriteReadings stores rs in one transaction: all of them or none. A reading for a (site, meter,
// time) already stored is set aside as a conflict when it differs, and dropped when it is the
// same (see conflicts.go).
func (s *SQLite) WriteReadings(ctx context.Context, rs []collector.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		if err := checkReading(r); err != nil {
			return fmt.Errorf("write readings: %w", err)
		}
	}
	args := make([]any, 0, 7*len(rs))
	pts := make([]sqlPoint, 0, 4)
	for _, r := range rs {
		pts = pts[:0]
		for _, p := range r.Points {
			sp := sqlPoint{pointMeta: pointMeta{Name: p.Name, Unit: p.Unit, Quality: p.Quality, Code: p.Code, Error: p.Error}}
			if p.Quality != collector.Bad {
				sp.Value = &p.Value
			}
			pts = append(pts, sp)
		}
		js, err := json.Marshal(pts)
		if err != nil {
			return fmt.Errorf("write readings: encode points of %s/%s: %w", r.Site, r.Meter, err)
		}
		args = append(args, r.Site, r.Meter, r.Time.UnixNano(), r.Edge, int64(r.Seq), string(r.TimeSource), string(js))
	}
	received := time.Now()
	return s.inTx(ctx, "write readings", func(tx *sql.Tx) error {
		return s.insertReadings(ctx, tx, args, received)
	})
}

// WriteBuckets stores bs in one transaction: all of them or none.
func (s *SQLite) WriteBuckets(ctx context.Context, bs []ledger.Bucket) error {
	if len(bs) == 0 {
		return nil
	}
	for _, b := range bs {
		if err := checkBucket(b); err != nil {
			return fmt.Errorf("write buckets: %w", err)
		}
	}
	args := make([]any, 0, 6*len(bs))
	type siteMeter struct{ site, meter string }
	meters := map[siteMeter]bool{}
	for _, b := range bs {
		args = append(args, b.Site, b.Meter, b.Start.UnixNano(), b.Volume, int64(b.Flags), b.Coverage)
		meters[siteMeter{b.Site, b.Meter}] = true
	}
	return s.inTx(ctx, "write buckets", func(tx *sql.Tx) error {
		if err := s.upsertRows(ctx, tx, bucketsUpsert, args); err != nil {
			return err
		}
		pm := tx.StmtContext(ctx, s.putMeter)
		for k := range meters {
			if _, err := pm.ExecContext(ctx, k.site, k.meter); err != nil {
				return fmt.Errorf("record meter %s/%s: %w", k.site, k.meter, err)
			}
		}
		return nil
	})
}

// upsert is an INSERT of many rows in one statement: a statement per row would spend more time
// in the driver than in SQLite. Its statements are prepared once per number of rows, and the
// driver (modernc.org/sqlite v1.62 and later) keeps a prepared statement compiled, so a write
// costs binding and execution only, not parsing and code generation (with the roll-up triggers
// on buckets, compiling was a quarter of a one-reading write).
type upsert struct {
	head, tail string
	cols       int
}

// readingCols is the number of values of a readings row.
const readingCols = 7

// upsertChunk is the most rows per statement. modernc's driver matches each bound parameter to
// its argument by a linear search, so binding is quadratic in the parameters of a statement:
// 256 rows of 7 columns spent a fifth of ingest's time binding. 64 rows keep the search short
// and the statements few (BenchmarkIngest, docs/performance.md).
const upsertChunk = 64

// upsertSizes is the number of statement sizes: the powers of two up to upsertChunk. A write of
// n rows is cut into the binary digits of n (at most upsertSizes statements past the full
// ones), so a handful of prepared statements serve every size.
const upsertSizes = 7

func newUpsert(head, tail string, cols int) *upsert {
	return &upsert{head: head, tail: tail, cols: cols}
}

func (u *upsert) sql(rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", u.cols), ", ") + ")"
	return u.head + " VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ") + " " + u.tail
}

// chunkRows is the number of rows of the next statement for rows rows left: the largest power
// of two not above them, at most upsertChunk; size is its index in upsertSizes.
func chunkRows(rows int) (n, size int) {
	n = upsertChunk
	size = upsertSizes - 1
	for n > rows {
		n >>= 1
		size--
	}
	return n, size
}

var (
	// A row with the key of a stored one (or of an earlier row of the same statement) is not
	// written over it: readings are evidence (see conflicts.go). The keys returned are those
	// inserted; the others go to insertReadings' conflict check.
	readingsInsert = newUpsert(`INSERT INTO readings (site, meter, time, edge, seq, time_source, points)`,
		`ON CONFLICT (site, meter, time) DO NOTHING RETURNING site, meter, time`, readingCols)
	bucketsUpsert = newUpsert(`INSERT INTO buckets (site, meter, start, volume, flags, coverage)`,
		`ON CONFLICT (site, meter, start) DO UPDATE SET
			volume = excluded.volume, flags = excluded.flags, coverage = excluded.coverage`, 6)
)

// prepareUpserts prepares every size of every multi-row write on the writer, at open: the
// writer has a single connection, which a transaction holds, so nothing can be prepared
// outside the transaction later, and a statement prepared in a transaction ends with it.
func (s *SQLite) prepareUpserts() error {
	s.upserts = map[*upsert]*[upsertSizes]*sql.Stmt{}
	for _, u := range []*upsert{readingsInsert, bucketsUpsert} {
		sts := new([upsertSizes]*sql.Stmt)
		s.upserts[u] = sts
		for size := range upsertSizes {
			st, err := s.w.Prepare(u.sql(1 << size))
			if err != nil {
				return fmt.Errorf("prepare %d-row write: %w", 1<<size, err)
			}
			sts[size] = st
		}
	}
	return nil
}

// upsertStmt returns u's statement of 1<<size rows in tx.
func (s *SQLite) upsertStmt(ctx context.Context, tx *sql.Tx, u *upsert, size int) *sql.Stmt {
	return tx.StmtContext(ctx, s.upserts[u][size])
}

// upsertRows writes args, u.cols values a row, in statements of at most upsertChunk rows.
func (s *SQLite) upsertRows(ctx context.Context, tx *sql.Tx, u *upsert, args []any) error {
	for len(args) > 0 {
		n, size := chunkRows(len(args) / u.cols)
		_, err := s.upsertStmt(ctx, tx, u, size).ExecContext(ctx, args[:n*u.cols]...)
		if err != nil {
			return fmt.Errorf("%d rows from %v/%v at %v: %w", n, args[0], args[1], args[2], err)
		}
		args = args[n*u.cols:]
	}
	return nil
}

func (s *SQLite) inTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// Readings returns the readings of one meter with from <= time < to, oldest first.
func (s *SQLite) Readings(ctx context.Context, site, meter string, from, to time.Time) ([]collector.Reading, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	rows, err := s.getReadings.QueryContext(ctx, site, meter, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read readings of %s/%s: %w", site, meter, err)
	}
	defer rows.Close()
	var out []collector.Reading
	for rows.Next() {
		r, err := scanReading(rows, site, meter)
		if err != nil {
			return nil, fmt.Errorf("read readings of %s/%s: %w", site, meter, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read readings of %s/%s: %w", site, meter, err)
	}
	return out, nil
}

// LastReading returns the newest reading of a meter at or before t.
func (s *SQLite) LastReading(ctx context.Context, site, meter string, t time.Time) (collector.Reading, bool, error) {
	if t.Before(minTime) {
		return collector.Reading{}, false, nil
	}
	rows, err := s.getLast.QueryContext(ctx, site, meter, clampNanos(t))
	if err != nil {
		return collector.Reading{}, false, fmt.Errorf("read last reading of %s/%s: %w", site, meter, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return collector.Reading{}, false, fmt.Errorf("read last reading of %s/%s: %w", site, meter, err)
		}
		return collector.Reading{}, false, nil
	}
	r, err := scanReading(rows, site, meter)
	if err != nil {
		return collector.Reading{}, false, fmt.Errorf("read last reading of %s/%s: %w", site, meter, err)
	}
	return r, true, nil
}

func scanReading(rows *sql.Rows, site, meter string) (collector.Reading, error) {
	var (
		ns      int64
		seq     int64
		ts, pjs string
		r       = collector.Reading{Site: site, Meter: meter}
	)
	if err := rows.Scan(&ns, &r.Edge, &seq, &ts, &pjs); err != nil {
		return r, err
	}
	r.Time, r.Seq, r.TimeSource = fromNanos(ns), uint64(seq), collector.TimeSource(ts)
	return r, decodeSQLPoints(&r, pjs)
}

// decodeSQLPoints sets r.Points from the readings.points JSON text.
func decodeSQLPoints(r *collector.Reading, pjs string) error {
	var pts []sqlPoint
	if err := json.Unmarshal([]byte(pjs), &pts); err != nil {
		return fmt.Errorf("decode points at %v: %w", r.Time, err)
	}
	r.Points = make([]collector.Point, len(pts))
	for i, p := range pts {
		r.Points[i] = collector.Point{Name: p.Name, Unit: p.Unit, Quality: p.Quality, Code: p.Code, Error: p.Error}
		if p.Value != nil {
			r.Points[i].Value = *p.Value
		}
	}
	return nil
}

// Buckets returns a site's buckets with from <= start < to, ordered by meter then start.
func (s *SQLite) Buckets(ctx context.Context, site string, from, to time.Time) ([]ledger.Bucket, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	rows, err := s.getBuckets.QueryContext(ctx, site, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read buckets of %s: %w", site, err)
	}
	defer rows.Close()
	var out []ledger.Bucket
	for rows.Next() {
		b := ledger.Bucket{Site: site}
		var start, flags int64
		if err := rows.Scan(&b.Meter, &start, &b.Volume, &flags, &b.Coverage); err != nil {
			return nil, fmt.Errorf("read buckets of %s: %w", site, err)
		}
		b.Start, b.Flags = fromNanos(start), ledger.Flag(flags)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read buckets of %s: %w", site, err)
	}
	return out, nil
}

// Close closes the file. Pending writes have already committed or failed.
func (s *SQLite) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.getReadings, s.getLast, s.getBuckets,
		s.putMeter, s.putInput, s.getInputs, s.delResult, s.putResult, s.getResults} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, sts := range s.upserts {
		for _, st := range sts {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
	}
	s.totalsMu.Lock()
	for _, st := range s.totals {
		errs = append(errs, st.Close())
	}
	s.totalsMu.Unlock()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}
