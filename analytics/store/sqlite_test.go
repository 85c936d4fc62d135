package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
