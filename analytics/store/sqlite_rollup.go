package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// flagBits is how many low bits of ledger.Flag are defined (TestFlagBits keeps it true).
const flagBits = 8

// flagsOr is the union of a column of flags as SQL: SQLite has no bitwise-OR aggregate, so it
// takes the MAX of each bit. It is used where few rows are read (an hour of buckets, a day of
// hours, one meter's period when its flags differ), and is kept to the defined bits, each of
// which costs a MAX per row.
func flagsOr(col string) string {
	parts := make([]string, flagBits)
	for i := range parts {
		parts[i] = fmt.Sprintf("MAX(%s & %d)", col, 1<<i)
	}
	return "(" + strings.Join(parts, " | ") + ")"
}

// sqliteRollupMigration creates the hour and day roll-ups and fills them from the buckets
// already stored (hour starts are floor(start / 1 h) in Unix time, so UTC hours and days).
func sqliteRollupMigration() string {
	table := func(name string) string {
		return `CREATE TABLE ` + name + ` (
			site     TEXT    NOT NULL,
			meter    TEXT    NOT NULL,
			start    INTEGER NOT NULL,
			volume   REAL    NOT NULL,
			coverage REAL    NOT NULL,
			n        INTEGER NOT NULL,
			flags    INTEGER NOT NULL,
			PRIMARY KEY (site, meter, start)
		) WITHOUT ROWID;`
	}
	return table("rollup_hours") + table("rollup_days") + sqliteRollupFill + sqliteRollupTriggers
}

// sqliteRollupTriggers keep the roll-ups as buckets are written, inside the statement that
// writes them: a new bucket adds itself to its hour and day, a rewritten one adds the
// difference. The flags of an hour or day only grow by OR, unless the rewrite clears a flag
// (late data filling a gap), which sums that hour's (and day's) flags again from what is
// stored. In SQL rather than as statements of their own: they run inside the statement that
// writes the buckets, compiled with it once (the writes are prepared at open), with no further
// trip through the driver per write.
var sqliteRollupTriggers = fmt.Sprintf(`
	CREATE TRIGGER rollup_bucket_insert AFTER INSERT ON buckets BEGIN
		INSERT INTO rollup_hours (site, meter, start, volume, coverage, n, flags)
			VALUES (NEW.site, NEW.meter, NEW.start - (((NEW.start %% %[1]d) + %[1]d) %% %[1]d), NEW.volume, NEW.coverage, 1, NEW.flags)
			ON CONFLICT (site, meter, start) DO UPDATE SET volume = volume + excluded.volume,
				coverage = coverage + excluded.coverage, n = n + 1, flags = flags | excluded.flags;
		INSERT INTO rollup_days (site, meter, start, volume, coverage, n, flags)
			VALUES (NEW.site, NEW.meter, NEW.start - (((NEW.start %% %[2]d) + %[2]d) %% %[2]d), NEW.volume, NEW.coverage, 1, NEW.flags)
			ON CONFLICT (site, meter, start) DO UPDATE SET volume = volume + excluded.volume,
				coverage = coverage + excluded.coverage, n = n + 1, flags = flags | excluded.flags;
	END;
	CREATE TRIGGER rollup_bucket_update AFTER UPDATE ON buckets BEGIN
		UPDATE rollup_hours SET volume = volume + NEW.volume - OLD.volume, coverage = coverage + NEW.coverage - OLD.coverage,
			flags = CASE WHEN (OLD.flags & ~NEW.flags) = 0 THEN flags | NEW.flags ELSE
				(SELECT %[3]s FROM buckets AS b WHERE b.site = NEW.site AND b.meter = NEW.meter
					AND b.start >= NEW.start - (((NEW.start %% %[1]d) + %[1]d) %% %[1]d)
					AND b.start < NEW.start - (((NEW.start %% %[1]d) + %[1]d) %% %[1]d) + %[1]d) END
			WHERE site = NEW.site AND meter = NEW.meter AND start = NEW.start - (((NEW.start %% %[1]d) + %[1]d) %% %[1]d);
		UPDATE rollup_days SET volume = volume + NEW.volume - OLD.volume, coverage = coverage + NEW.coverage - OLD.coverage,
			flags = CASE WHEN (OLD.flags & ~NEW.flags) = 0 THEN flags | NEW.flags ELSE
				(SELECT %[4]s FROM rollup_hours AS h WHERE h.site = NEW.site AND h.meter = NEW.meter
					AND h.start >= NEW.start - (((NEW.start %% %[2]d) + %[2]d) %% %[2]d)
					AND h.start < NEW.start - (((NEW.start %% %[2]d) + %[2]d) %% %[2]d) + %[2]d) END
			WHERE site = NEW.site AND meter = NEW.meter AND start = NEW.start - (((NEW.start %% %[2]d) + %[2]d) %% %[2]d);
	END;`, hourNs, dayNs, flagsOr("b.flags"), flagsOr("h.flags"))

// sqliteRollupFill sums every stored bucket into the roll-ups (the migration, and benchmark
// fixtures that generate buckets in SQL).
var sqliteRollupFill = fmt.Sprintf(`
	INSERT INTO rollup_hours (site, meter, start, volume, coverage, n, flags)
		SELECT site, meter, start - (((start %% %[1]d) + %[1]d) %% %[1]d) AS h, SUM(volume), SUM(coverage), COUNT(*), %[3]s
		FROM buckets GROUP BY site, meter, h;
	INSERT INTO rollup_days (site, meter, start, volume, coverage, n, flags)
		SELECT site, meter, start - (((start %% %[2]d) + %[2]d) %% %[2]d) AS d, SUM(volume), SUM(coverage), SUM(n), %[3]s
		FROM rollup_hours GROUP BY site, meter, d;`, hourNs, dayNs, flagsOr("flags"))

// rollupTables are the tables of the pieces, by kind.
var rollupTables = map[rangeKind]string{fromBuckets: "buckets", fromHours: "rollup_hours", fromDays: "rollup_days"}

// totalsSQL is the MeterTotals query for a sequence of pieces. Each piece is summed per meter
// walking that meter's primary-key range (bucket_meters drives the outer loop, so the rows come
// grouped and are not sorted), and the few rows per meter that result are summed again.
//
// The union of flags comes from MIN and MAX: equal (nearly always: no flag, or the same flag
// throughout) they are the union; otherwise flagsOf looks again at that meter alone. A
// bitwise OR in SQL (one MAX per bit) on every row tripled the cost of a year's sum.
func totalsSQL(kinds []rangeKind) string {
	var parts []string
	for _, k := range kinds {
		n := "COUNT(*)"
		if k != fromBuckets {
			n = "SUM(r.n)"
		}
		parts = append(parts, `SELECT m.meter AS meter, SUM(r.volume) AS v, SUM(r.coverage) AS c, `+n+` AS n, MIN(r.flags) AS lo, MAX(r.flags) AS hi
			FROM bucket_meters AS m CROSS JOIN `+rollupTables[k]+` AS r ON r.site = m.site AND r.meter = m.meter AND r.start >= ? AND r.start <= ?
			WHERE m.site = ? GROUP BY m.meter`)
	}
	return `SELECT meter, SUM(v), SUM(c), SUM(n), MIN(lo), MAX(hi) FROM (` + strings.Join(parts, " UNION ALL ") + `) GROUP BY meter ORDER BY meter`
}

// flagsOfSQL is the union of one meter's flags in one piece, by kind.
func flagsOfSQL(k rangeKind) string {
	return `SELECT ` + flagsOr("flags") + ` FROM ` + rollupTables[k] + ` WHERE site = ? AND meter = ? AND start >= ? AND start <= ?`
}

// flagsOf ORs the flags of one meter over the pieces.
func (s *SQLite) flagsOf(ctx context.Context, site, meter string, pieces []piece) (ledger.Flag, error) {
	var f ledger.Flag
	for _, p := range pieces {
		var v sql.NullInt64
		if err := s.r.QueryRowContext(ctx, flagsOfSQL(p.kind), site, meter, p.lo, p.hi).Scan(&v); err != nil {
			return 0, fmt.Errorf("read flags of %s/%s: %w", site, meter, err)
		}
		f |= ledger.Flag(v.Int64)
	}
	return f, nil
}

// totalsStmt returns the prepared MeterTotals statement for a shape of pieces (there are only
// a handful of shapes).
func (s *SQLite) totalsStmt(kinds []rangeKind) (*sql.Stmt, error) {
	key := fmt.Sprint(kinds)
	s.totalsMu.Lock()
	defer s.totalsMu.Unlock()
	if st, ok := s.totals[key]; ok {
		return st, nil
	}
	st, err := s.r.Prepare(totalsSQL(kinds))
	if err != nil {
		return nil, fmt.Errorf("prepare totals query: %w", err)
	}
	if s.totals == nil {
		s.totals = map[string]*sql.Stmt{}
	}
	s.totals[key] = st
	return st, nil
}

// MeterTotals sums a site's buckets with from <= start < to per meter, in meter order, reading
// the hour and day roll-ups for the whole hours and days inside the period and buckets only at
// its edges. Meters without a bucket in the range are left out.
func (s *SQLite) MeterTotals(ctx context.Context, site string, from, to time.Time) ([]engine.MeterTotal, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	pieces := split(lo, hi)
	kinds := make([]rangeKind, len(pieces))
	args := make([]any, 0, 3*len(pieces))
	for i, p := range pieces {
		kinds[i] = p.kind
		args = append(args, p.lo, p.hi, site)
	}
	st, err := s.totalsStmt(kinds)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sum buckets of %s: %w", site, err)
	}
	var out []engine.MeterTotal
	var mixed []int
	for rows.Next() {
		var t engine.MeterTotal
		var lo, hi int64
		if err := rows.Scan(&t.Meter, &t.Volume, &t.Coverage, &t.Buckets, &lo, &hi); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sum buckets of %s: %w", site, err)
		}
		t.Flags = ledger.Flag(hi)
		if lo != hi {
			mixed = append(mixed, len(out))
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("sum buckets of %s: %w", site, err)
	}
	rows.Close()
	for _, i := range mixed {
		if out[i].Flags, err = s.flagsOf(ctx, site, out[i].Meter, pieces); err != nil {
			return nil, err
		}
	}
	return out, nil
}
