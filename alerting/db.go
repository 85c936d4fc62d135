package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// schema creates the package's tables in the state database; every statement is idempotent.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS alert_alerts (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		fingerprint TEXT NOT NULL,
		rule TEXT NOT NULL,
		kind TEXT NOT NULL,
		site TEXT NOT NULL,
		severity TEXT NOT NULL,
		state TEXT NOT NULL,
		labels TEXT NOT NULL,
		annotations TEXT NOT NULL,
		value REAL NOT NULL,
		active_at INTEGER NOT NULL,
		starts_at INTEGER NOT NULL,
		ends_at INTEGER NOT NULL,
		acked_by TEXT NOT NULL DEFAULT '',
		ack_comment TEXT NOT NULL DEFAULT '',
		acked_at INTEGER NOT NULL DEFAULT 0,
		assignee TEXT NOT NULL DEFAULT '',
		assigned_at INTEGER NOT NULL DEFAULT 0,
		closed_by TEXT NOT NULL DEFAULT '',
		close_note TEXT NOT NULL DEFAULT '',
		closed_at INTEGER NOT NULL DEFAULT 0,
		uses TEXT NOT NULL DEFAULT '[]',
		runbook TEXT NOT NULL DEFAULT '{}',
		sent_state TEXT NOT NULL DEFAULT '',
		sent_at INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS alert_alerts_state ON alert_alerts(state)`,
	`CREATE INDEX IF NOT EXISTS alert_alerts_fp ON alert_alerts(fingerprint)`,
	`CREATE TABLE IF NOT EXISTS alert_events (
		alert_id INTEGER NOT NULL,
		at INTEGER NOT NULL,
		event TEXT NOT NULL,
		who TEXT NOT NULL DEFAULT '',
		note TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events(alert_id)`,
	`CREATE TABLE IF NOT EXISTS alert_detectors (
		site TEXT NOT NULL,
		rule TEXT NOT NULL,
		state TEXT NOT NULL,
		PRIMARY KEY (site, rule)
	)`,
	`CREATE TABLE IF NOT EXISTS alert_silences (
		id TEXT PRIMARY KEY,
		matchers TEXT NOT NULL,
		starts_at INTEGER NOT NULL,
		ends_at INTEGER NOT NULL,
		author TEXT NOT NULL,
		comment TEXT NOT NULL,
		created_at INTEGER NOT NULL
	)`,
}

// db is the alert state in the state database.
type db struct{ sql *sql.DB }

func openDB(ctx context.Context, s *sql.DB) (*db, error) {
	if s == nil {
		return nil, errors.New("open alert state: no state database")
	}
	for _, q := range schema {
		if _, err := s.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("create alert tables: %w", err)
		}
	}
	return &db{s}, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// save inserts a new record (ID 0, which it sets) or updates an existing one.
func (d *db) save(ctx context.Context, r *record) error {
	args := []any{r.Fingerprint, r.Rule, r.Kind, r.Site, r.Severity, r.State, js(r.Labels), js(r.Annotations), r.Value,
		nanos(r.ActiveAt), nanos(r.StartsAt), nanos(r.EndsAt), r.AckedBy, r.AckComment, nanos(r.AckedAt), r.Assignee,
		nanos(r.AssignedAt), r.ClosedBy, r.CloseNote, nanos(r.ClosedAt), js(r.Uses), js(r.Runbook), r.SentState, nanos(r.SentAt)}
	if r.ID == 0 {
		res, err := d.sql.ExecContext(ctx, `INSERT INTO alert_alerts (fingerprint, rule, kind, site, severity, state, labels,
			annotations, value, active_at, starts_at, ends_at, acked_by, ack_comment, acked_at, assignee, assigned_at,
			closed_by, close_note, closed_at, uses, runbook, sent_state, sent_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		if err != nil {
			return fmt.Errorf("insert alert %s: %w", r.Rule, err)
		}
		r.ID, err = res.LastInsertId()
		return err
	}
	_, err := d.sql.ExecContext(ctx, `UPDATE alert_alerts SET fingerprint = ?, rule = ?, kind = ?, site = ?, severity = ?,
		state = ?, labels = ?, annotations = ?, value = ?, active_at = ?, starts_at = ?, ends_at = ?, acked_by = ?,
		ack_comment = ?, acked_at = ?, assignee = ?, assigned_at = ?, closed_by = ?, close_note = ?, closed_at = ?,
		uses = ?, runbook = ?, sent_state = ?, sent_at = ? WHERE id = ?`, append(args, r.ID)...)
	if err != nil {
		return fmt.Errorf("update alert %d: %w", r.ID, err)
	}
	return nil
}

// drop deletes a pending record that never fired (nothing to keep of it).
func (d *db) drop(ctx context.Context, id int64) error {
	if _, err := d.sql.ExecContext(ctx, `DELETE FROM alert_alerts WHERE id = ? AND state = ?`, id, StatePending); err != nil {
		return fmt.Errorf("delete pending alert %d: %w", id, err)
	}
	return nil
}

func (d *db) event(ctx context.Context, id int64, at time.Time, event, who, note string) error {
	if _, err := d.sql.ExecContext(ctx, `INSERT INTO alert_events (alert_id, at, event, who, note) VALUES (?, ?, ?, ?, ?)`,
		id, nanos(at), event, who, note); err != nil {
		return fmt.Errorf("record alert event %s: %w", event, err)
	}
	return nil
}

const selectAlert = `SELECT id, fingerprint, rule, kind, site, severity, state, labels, annotations, value, active_at,
	starts_at, ends_at, acked_by, ack_comment, acked_at, assignee, assigned_at, closed_by, close_note, closed_at, uses,
	runbook, sent_state, sent_at FROM alert_alerts`

// query reads records; where is a condition after WHERE (or "").
func (d *db) query(ctx context.Context, where string, args ...any) ([]*record, error) {
	q := selectAlert
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := d.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	var out []*record
	for rows.Next() {
		var r record
		var labels, ann, uses, rb string
		var act, st, end, ack, asg, cl, sent int64
		if err := rows.Scan(&r.ID, &r.Fingerprint, &r.Rule, &r.Kind, &r.Site, &r.Severity, &r.State, &labels, &ann, &r.Value,
			&act, &st, &end, &r.AckedBy, &r.AckComment, &ack, &r.Assignee, &asg, &r.ClosedBy, &r.CloseNote, &cl, &uses, &rb,
			&r.SentState, &sent); err != nil {
			return nil, fmt.Errorf("read alert row: %w", err)
		}
		r.ActiveAt, r.StartsAt, r.EndsAt, r.AckedAt = fromNanos(act), fromNanos(st), fromNanos(end), fromNanos(ack)
		r.AssignedAt, r.ClosedAt, r.SentAt = fromNanos(asg), fromNanos(cl), fromNanos(sent)
		_ = json.Unmarshal([]byte(labels), &r.Labels)
		_ = json.Unmarshal([]byte(ann), &r.Annotations)
		_ = json.Unmarshal([]byte(uses), &r.Uses)
		_ = json.Unmarshal([]byte(rb), &r.Runbook)
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (d *db) saveSilence(ctx context.Context, s *Silence) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO alert_silences (id, matchers, starts_at, ends_at, author, comment, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET matchers = excluded.matchers, starts_at = excluded.starts_at,
		ends_at = excluded.ends_at, author = excluded.author, comment = excluded.comment`,
		s.ID, js(s.Matchers), nanos(s.StartsAt), nanos(s.EndsAt), s.Author, s.Comment, nanos(s.CreatedAt))
	if err != nil {
		return fmt.Errorf("save silence %s: %w", s.ID, err)
	}
	return nil
}

func (d *db) silences(ctx context.Context) ([]*Silence, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT id, matchers, starts_at, ends_at, author, comment, created_at FROM alert_silences`)
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	defer rows.Close()
	var out []*Silence
	for rows.Next() {
		var s Silence
		var ms string
		var st, end, cr int64
		if err := rows.Scan(&s.ID, &ms, &st, &end, &s.Author, &s.Comment, &cr); err != nil {
			return nil, fmt.Errorf("read silence row: %w", err)
		}
		s.StartsAt, s.EndsAt, s.CreatedAt = fromNanos(st), fromNanos(end), fromNanos(cr)
		var raw []Matcher
		_ = json.Unmarshal([]byte(ms), &raw)
		for _, m := range raw {
			if c, err := NewMatcher(m.Name, m.Op, m.Value); err == nil {
				s.Matchers = append(s.Matchers, c)
			}
		}
		out = append(out, &s)
	}
	return out, rows.Err()
}

// saveDetector stores a detector's state (JSON) so a restart continues its sums.
func (d *db) saveDetector(ctx context.Context, site, rule, state string) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO alert_detectors (site, rule, state) VALUES (?, ?, ?)
		ON CONFLICT(site, rule) DO UPDATE SET state = excluded.state`, site, rule, state)
	if err != nil {
		return fmt.Errorf("save detector %s/%s: %w", site, rule, err)
	}
	return nil
}

func (d *db) detectors(ctx context.Context) (map[string]string, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT site, rule, state FROM alert_detectors`)
	if err != nil {
		return nil, fmt.Errorf("read detectors: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var site, rule, st string
		if err := rows.Scan(&site, &rule, &st); err != nil {
			return nil, fmt.Errorf("read detector row: %w", err)
		}
		out[site+"/"+rule] = st
	}
	return out, rows.Err()
}
