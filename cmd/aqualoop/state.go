package main

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"
)

// statePath is the platform's state database: state.db in the data folder, which is also where
// it lives when readings go to InfluxDB.
func statePath(cfg *platformConfig) string {
	return cfg.dataPath("state.db")
}

// openState opens (creating if needed) the state database that holds what is not a time series:
// tokens, the audit log, alerts, silences, the meter register. Each package creates its own
// tables in it; every caller shares this one handle.
func openState(cfg *platformConfig) (*sql.DB, error) {
	path := statePath(cfg)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	// Transactions take the write lock when they begin (_txlock=immediate), so two writers wait
	// for each other (busy_timeout) instead of failing with "database is locked" on upgrade.
	db.SetMaxOpenConns(8)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	// Tokens live here: keep the file private to the platform's user.
	os.Chmod(path, 0o600)
	return db, nil
}
