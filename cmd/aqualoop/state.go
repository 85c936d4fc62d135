package main

import (
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"

	_ "modernc.org/sqlite"
)

// statePath is the platform's state DB (alerts, tokens, audit log, meter register...): state.db
// in the data directory, beside the SQLite store's file.
func (c *platformConfig) statePath() string {
	return filepath.Join(filepath.Dir(c.path(c.SQLite.Path)), "state.db")
}

// openState opens the state DB that every package keeping platform state is handed; each
// creates its own tables.
func openState(cfg *platformConfig) (*sql.DB, error) {
	p := cfg.statePath()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("open state DB %s: %w", p, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state DB %s: %w", p, err)
	}
	return db, nil
}
