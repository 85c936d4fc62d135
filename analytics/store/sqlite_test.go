package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	// '?' and '#' would end the file name in a DSN; the store must not care.
	path := filepath.Join(t.TempDir(), "odd ?name#.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	r := reading(site, "M", t0, 1, 42)
	if err := s.WriteReadings(ctx, []collector.Reading{r}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the store is not at the path it was given: %v", err)
	}

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != len(sqliteMigrations) {
		t.Errorf("schema version %d, want %d", v, len(sqliteMigrations))
	}
	got, err := s.Readings(ctx, site, "M", time.Time{}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sameReadings(t, "after reopen", got, []collector.Reading{r})
	var mode string
	if err := s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A later aqualoop has migrated the file further.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO store_migrations (version, applied_at) VALUES (?, 0)`, len(sqliteMigrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if s, err := OpenSQLite(path); err == nil {
		s.Close()
		t.Fatal("opened a file with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("OpenSQLite = %v, want it to say the schema is newer", err)
	}
}

// TestSQLiteTotalsPlan checks that every piece of a period (buckets, hour and day roll-ups) is
// read along each meter's primary-key range: a scan would read every row of the site.
func TestSQLiteTotalsPlan(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+totalsSQL([]rangeKind{fromBuckets, fromHours, fromDays, fromHours, fromBuckets}),
		0, 1, site, 0, 1, site, 0, 1, site, 0, 1, site, 0, 1, site)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", all)
	for _, line := range plan {
		if strings.Contains(line, " b ") || strings.Contains(line, " r ") || strings.HasSuffix(line, " b") || strings.HasSuffix(line, " r") {
			if !strings.Contains(line, "PRIMARY KEY") {
				t.Errorf("a piece of the totals query does not use the primary key: %s", line)
			}
		}
	}
	if n := strings.Count(all, "PRIMARY KEY"); n < 5 {
		t.Errorf("%d pieces use the primary key, want 5:\n%s", n, all)
	}
}

// TestSQLiteMigrationListsExistingMeters opens a file written before the engine's tables existed:
// its buckets must be summed like new ones.
func TestSQLiteMigrationListsExistingMeters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	m := t0.Truncate(time.Minute)
	if err := s.WriteBuckets(ctx, []ledger.Bucket{
		{Site: site, Meter: "A", Start: m, Volume: 1, Coverage: 1},
		{Site: site, Meter: "B", Start: m, Volume: 2, Coverage: 1},
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to schema version 1, as a file of the previous release is.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TABLE bucket_meters", "DROP TABLE inputs", "DROP TABLE results", "DROP TRIGGER rollup_bucket_insert", "DROP TRIGGER rollup_bucket_update", "DROP TABLE rollup_hours", "DROP TABLE rollup_days", "DELETE FROM store_migrations WHERE version > 1"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A whole UTC hour and a whole UTC day are read from the roll-ups the migration filled.
	for _, to := range []time.Time{m.Add(time.Minute), m.Add(time.Hour), m.Add(48 * time.Hour)} {
		from := m
		if to.Sub(m) > 24*time.Hour {
			from = m.Truncate(24 * time.Hour)
		}
		got, err := s.MeterTotals(ctx, site, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Meter != "A" || got[1].Volume != 2 || got[1].Buckets != 1 {
			t.Errorf("MeterTotals [%v, %v) after migration = %+v, want meters A and B", from, to, got)
		}
	}
}
