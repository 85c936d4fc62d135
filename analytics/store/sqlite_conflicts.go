package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// sqliteConflictsTable holds the readings set aside as conflicts. It is created idempotently
// beside the numbered migrations. A row per distinct version: the unique key holds the whole
// content, so a conflicting reading sent again is still one row.
const sqliteConflictsTable = `CREATE TABLE IF NOT EXISTS reading_conflicts (
	site        TEXT    NOT NULL,
	meter       TEXT    NOT NULL,
	time        INTEGER NOT NULL,
	edge        TEXT    NOT NULL,
	seq         INTEGER NOT NULL,
	time_source TEXT    NOT NULL,
	points      TEXT    NOT NULL,
	received    INTEGER NOT NULL,
	UNIQUE (site, meter, time, edge, seq, time_source, points)
);
CREATE INDEX IF NOT EXISTS reading_conflicts_by_time ON reading_conflicts (site, time);`

func (s *SQLite) createConflicts(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, sqliteConflictsTable); err != nil {
		return fmt.Errorf("create reading_conflicts: %w", err)
	}
	return nil
}

// insertReadings inserts rows of readingCols values each; a row whose (site, meter, time) is
// stored already, or comes earlier in args, is not inserted but set aside with
// setAsideConflicts, which keeps it only if its content differs.
func (s *SQLite) insertReadings(ctx context.Context, tx *sql.Tx, args []any, received time.Time) error {
	type key struct {
		site, meter string
		time        int64
	}
	var rest []any
	for len(args) > 0 {
		n, size := chunkRows(len(args) / readingCols)
		chunk := args[:n*readingCols]
		args = args[n*readingCols:]
		rows, err := s.upsertStmt(ctx, tx, readingsInsert, size).QueryContext(ctx, chunk...)
		if err != nil {
			return fmt.Errorf("%d rows from %v/%v at %v: %w", n, chunk[0], chunk[1], chunk[2], err)
		}
		inserted := map[key]bool{}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.site, &k.meter, &k.time); err != nil {
				rows.Close()
				return fmt.Errorf("read inserted keys: %w", err)
			}
			inserted[k] = true
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("%d rows from %v/%v at %v: %w", n, chunk[0], chunk[1], chunk[2], err)
		}
		if len(inserted) == n {
			continue
		}
		for i := 0; i < len(chunk); i += readingCols {
			k := key{chunk[i].(string), chunk[i+1].(string), chunk[i+2].(int64)}
			if inserted[k] {
				delete(inserted, k) // the first row of this key is the one inserted
				continue
			}
			rest = append(rest, chunk[i:i+readingCols]...)
		}
	}
	return setAsideConflicts(ctx, tx, rest, received)
}

// setAsideConflicts stores in reading_conflicts the rows of args that differ from the stored
// reading of their key; identical ones (replays) leave no trace.
func setAsideConflicts(ctx context.Context, tx *sql.Tx, args []any, received time.Time) error {
	for len(args) > 0 {
		n := min(len(args)/readingCols, upsertChunk)
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", readingCols), ", ") + ")"
		q := `INSERT INTO reading_conflicts (site, meter, time, edge, seq, time_source, points, received)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, ?
			FROM (VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + `) AS v
			JOIN readings r ON r.site = v.column1 AND r.meter = v.column2 AND r.time = v.column3
			WHERE (r.edge, r.seq, r.time_source, r.points) IS NOT (v.column4, v.column5, v.column6, v.column7)
			ON CONFLICT DO NOTHING`
		chunk := append([]any{received.UnixNano()}, args[:n*readingCols]...)
		if _, err := tx.ExecContext(ctx, q, chunk...); err != nil {
			return fmt.Errorf("set aside %d conflicting rows from %v/%v at %v: %w", n, args[0], args[1], args[2], err)
		}
		args = args[n*readingCols:]
	}
	return nil
}

// Conflicts returns the readings set aside for a site with from <= time < to, oldest first.
func (s *SQLite) Conflicts(ctx context.Context, site, meter string, from, to time.Time) ([]Conflict, error) {
	lo, hi, ok := bounds(from, to)
	if !ok {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT meter, time, edge, seq, time_source, points, received FROM reading_conflicts
		WHERE site = ? AND (? = '' OR meter = ?) AND time >= ? AND time <= ? ORDER BY time, meter, received, seq`,
		site, meter, meter, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read conflicts of %s: %w", site, err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var (
			ns, seq, received int64
			ts, pjs           string
			r                 = collector.Reading{Site: site}
		)
		if err := rows.Scan(&r.Meter, &ns, &r.Edge, &seq, &ts, &pjs, &received); err != nil {
			return nil, fmt.Errorf("read conflicts of %s: %w", site, err)
		}
		r.Time, r.Seq, r.TimeSource = fromNanos(ns), uint64(seq), collector.TimeSource(ts)
		if err := decodeSQLPoints(&r, pjs); err != nil {
			return nil, fmt.Errorf("read conflicts of %s: %w", site, err)
		}
		out = append(out, Conflict{Reading: r, Received: fromNanos(received)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read conflicts of %s: %w", site, err)
	}
	return out, nil
}
