package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Results of a notification, the values of LogEntry.Result.
const (
	ResultSent   = "sent"
	ResultFailed = "failed"
	// ResultSkipped is an all-resolved notification to an integration with send_resolved off:
	// nothing left the platform, but the log notes that the group is over.
	ResultSkipped = "skipped"
)

// LogEntry is one row of the notification log: what was sent to which integration of which
// receiver, for which group and alert set, when, with what result.
type LogEntry struct {
	ID          int64
	At          time.Time
	Receiver    string
	Integration string // kind and index within the receiver: "webhook[0]", "dingtalk[1]"
	GroupKey    string
	Hash        string   // of the alert set: fingerprints with their status
	Status      string   // firing | resolved
	Firing      []string // fingerprints
	Resolved    []string
	Result      string // sent | failed | skipped
	Attempts    int
	Error       string
	Took        time.Duration
}

// LogFilter selects log entries; zero fields match everything.
type LogFilter struct {
	Receiver    string
	Integration string
	GroupKey    string
	Fingerprint string // entries whose alert set holds this alert
	Result      string
	Since       time.Time
	Until       time.Time
	Limit       int // newest first; default 100, at most 10000
}

// nflog is the notification log and the per-group delivery state in the state DB.
type nflog struct {
	db *sql.DB
	mu sync.Mutex // one writer at a time, so our own writes never meet SQLITE_BUSY
}

const nflogSchema = `
CREATE TABLE IF NOT EXISTS notify_log (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at_ms       INTEGER NOT NULL,
	receiver    TEXT NOT NULL,
	integration TEXT NOT NULL,
	group_key   TEXT NOT NULL,
	hash        TEXT NOT NULL,
	status      TEXT NOT NULL,
	firing      TEXT NOT NULL,
	resolved    TEXT NOT NULL,
	result      TEXT NOT NULL,
	attempts    INTEGER NOT NULL,
	error       TEXT NOT NULL,
	took_ms     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_log_at ON notify_log(at_ms);
CREATE INDEX IF NOT EXISTS notify_log_group ON notify_log(receiver, group_key);
CREATE TABLE IF NOT EXISTS notify_state (
	receiver    TEXT NOT NULL,
	integration TEXT NOT NULL,
	group_key   TEXT NOT NULL,
	firing      TEXT NOT NULL,
	resolved    TEXT NOT NULL,
	sent_ms     INTEGER NOT NULL,
	PRIMARY KEY (receiver, integration, group_key)
);`

func openNflog(ctx context.Context, db *sql.DB) (*nflog, error) {
	for _, stmt := range strings.Split(nflogSchema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create notification log tables: %w", err)
		}
	}
	return &nflog{db: db}, nil
}

// sentState is what an integration last delivered for a group.
type sentState struct {
	firing, resolved []string // sorted fingerprints
	at               time.Time
}

func (l *nflog) state(ctx context.Context, receiver, integ, group string) (*sentState, error) {
	var firing, resolved string
	var ms int64
	err := l.db.QueryRowContext(ctx,
		`SELECT firing, resolved, sent_ms FROM notify_state WHERE receiver = ? AND integration = ? AND group_key = ?`,
		receiver, integ, group).Scan(&firing, &resolved, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read notification state: %w", err)
	}
	s := &sentState{at: time.UnixMilli(ms)}
	if err := json.Unmarshal([]byte(firing), &s.firing); err != nil {
		return nil, fmt.Errorf("decode notification state: %w", err)
	}
	if err := json.Unmarshal([]byte(resolved), &s.resolved); err != nil {
		return nil, fmt.Errorf("decode notification state: %w", err)
	}
	return s, nil
}

// record appends e to the log and, for a delivered (or deliberately skipped) notification,
// makes it the group's state, in one transaction.
func (l *nflog) record(ctx context.Context, e *LogEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	firing, _ := json.Marshal(nonNil(e.Firing))
	resolved, _ := json.Marshal(nonNil(e.Resolved))
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, `INSERT INTO notify_log
		(at_ms, receiver, integration, group_key, hash, status, firing, resolved, result, attempts, error, took_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), e.Receiver, e.Integration, e.GroupKey, e.Hash, e.Status, string(firing), string(resolved),
		e.Result, e.Attempts, e.Error, e.Took.Milliseconds())
	if err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	e.ID, _ = res.LastInsertId()
	if e.Result != ResultFailed {
		_, err = tx.ExecContext(ctx, `INSERT INTO notify_state (receiver, integration, group_key, firing, resolved, sent_ms)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (receiver, integration, group_key) DO UPDATE SET firing = excluded.firing,
				resolved = excluded.resolved, sent_ms = excluded.sent_ms`,
			e.Receiver, e.Integration, e.GroupKey, string(firing), string(resolved), e.At.UnixMilli())
		if err != nil {
			return fmt.Errorf("record notification state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	return nil
}

// prune drops log entries and group states older than the retention.
func (l *nflog) prune(ctx context.Context, before time.Time) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.db.ExecContext(ctx, `DELETE FROM notify_log WHERE at_ms < ?`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune notification log: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := l.db.ExecContext(ctx, `DELETE FROM notify_state WHERE sent_ms < ?`, before.UnixMilli()); err != nil {
		return n, fmt.Errorf("prune notification state: %w", err)
	}
	return n, nil
}

func (l *nflog) query(ctx context.Context, f LogFilter) ([]LogEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Receiver != "" {
		add("receiver = ?", f.Receiver)
	}
	if f.Integration != "" {
		add("integration = ?", f.Integration)
	}
	if f.GroupKey != "" {
		add("group_key = ?", f.GroupKey)
	}
	if f.Result != "" {
		add("result = ?", f.Result)
	}
	if !f.Since.IsZero() {
		add("at_ms >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("at_ms < ?", f.Until.UnixMilli())
	}
	if f.Fingerprint != "" {
		fp, _ := json.Marshal(f.Fingerprint)
		where = append(where, "(instr(firing, ?) > 0 OR instr(resolved, ?) > 0)")
		args = append(args, string(fp), string(fp))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	q := `SELECT id, at_ms, receiver, integration, group_key, hash, status, firing, resolved, result, attempts, error, took_ms FROM notify_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit)
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query notification log: %w", err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		var e LogEntry
		var at, took int64
		var firing, resolved string
		if err := rows.Scan(&e.ID, &at, &e.Receiver, &e.Integration, &e.GroupKey, &e.Hash, &e.Status, &firing, &resolved,
			&e.Result, &e.Attempts, &e.Error, &took); err != nil {
			return nil, fmt.Errorf("read notification log: %w", err)
		}
		e.At, e.Took = time.UnixMilli(at), time.Duration(took)*time.Millisecond
		_ = json.Unmarshal([]byte(firing), &e.Firing)
		_ = json.Unmarshal([]byte(resolved), &e.Resolved)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notification log: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// subset reports whether every element of a is in b; both sorted.
func subset(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}
