package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix starts every API token, so a leaked one is easy to recognise in a log or a
// repository scanner.
const TokenPrefix = "aql_"

// ErrInvalid is returned for a credential that is unknown, expired or revoked; callers answer 401
// without saying which.
var ErrInvalid = errors.New("invalid, expired or revoked credential")

// ErrNotFound is returned when revoking a token id that does not exist.
var ErrNotFound = errors.New("no such token")

// Store keeps tokens, sessions and the audit log in the state database.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// Open creates the auth tables in db if they are missing.
func Open(ctx context.Context, db *sql.DB, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS auth_tokens (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			role TEXT NOT NULL,
			sites TEXT NOT NULL DEFAULT '',
			park TEXT NOT NULL DEFAULT '',
			hash TEXT NOT NULL UNIQUE,
			created_at INTEGER NOT NULL,
			expires_at INTEGER,
			revoked_at INTEGER,
			last_used_at INTEGER)`,
		`CREATE TABLE IF NOT EXISTS auth_sessions (
			hash TEXT PRIMARY KEY,
			token_id TEXT NOT NULL,
			csrf TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			expires_at INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS auth_audit (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			time INTEGER NOT NULL,
			who TEXT NOT NULL,
			role TEXT NOT NULL,
			via TEXT NOT NULL,
			method TEXT NOT NULL,
			path TEXT NOT NULL,
			status INTEGER NOT NULL,
			remote TEXT NOT NULL,
			body_sha256 TEXT NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("create auth tables: %w", err)
		}
	}
	return &Store{db: db, now: now}, nil
}

// Token is a stored token, without its secret.
type Token struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Role     string     `json:"role"`
	Sites    []string   `json:"sites,omitempty"`
	Park     string     `json:"park,omitempty"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// NewToken is what creating a token takes. Sites and Park are exclusive; an empty scope means
// every site. A zero Expires never expires.
type NewToken struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Sites   []string  `json:"sites,omitempty"`
	Park    string    `json:"park,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Check reports what is wrong with t.
func (t NewToken) Check() error {
	var errs []error
	if strings.TrimSpace(t.Name) == "" || len(t.Name) > 100 {
		errs = append(errs, errors.New("name: required, at most 100 bytes"))
	}
	if _, err := ParseRole(t.Role); err != nil {
		errs = append(errs, fmt.Errorf("role: %w", err))
	}
	if len(t.Sites) > 0 && t.Park != "" {
		errs = append(errs, errors.New("sites and park: give one or the other"))
	}
	return errors.Join(errs...)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// Hash is how a secret (token or session id) is stored: hex SHA-256. A token carries 256 random
// bits, so a fast hash is enough; no password-style stretching is needed.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create stores a new token and returns it with its secret, which is shown once and kept nowhere.
func (s *Store) Create(ctx context.Context, t NewToken) (Token, string, error) {
	if err := t.Check(); err != nil {
		return Token{}, "", err
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(random(32))
	tok, err := s.Insert(ctx, t, secret)
	return tok, secret, err
}

// Insert stores a token whose secret the caller chose (the demo's, printed in its login link).
// The secret must carry at least 128 random bits.
func (s *Store) Insert(ctx context.Context, t NewToken, secret string) (Token, error) {
	if err := t.Check(); err != nil {
		return Token{}, err
	}
	if len(secret) < 24 {
		return Token{}, errors.New("token secret is too short")
	}
	role, _ := ParseRole(t.Role)
	now := s.now().UTC()
	tok := Token{ID: hex.EncodeToString(random(8)), Name: strings.TrimSpace(t.Name), Role: role.String(), Sites: t.Sites, Park: t.Park, Created: now}
	var exp any
	if !t.Expires.IsZero() {
		e := t.Expires.UTC()
		tok.Expires, exp = &e, e.UnixNano()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_tokens (id, name, role, sites, park, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		tok.ID, tok.Name, tok.Role, strings.Join(t.Sites, ","), t.Park, Hash(secret), now.UnixNano(), exp)
	if err != nil {
		return Token{}, fmt.Errorf("store token: %w", err)
	}
	return tok, nil
}

// List returns every token, newest first, revoked ones included.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, role, sites, park, created_at, expires_at, revoked_at, last_used_at FROM auth_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var sites string
		var created int64
		var exp, rev, used sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Role, &sites, &t.Park, &created, &exp, &rev, &used); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		if sites != "" {
			t.Sites = strings.Split(sites, ",")
		}
		t.Created = time.Unix(0, created).UTC()
		t.Expires, t.Revoked, t.LastUsed = timeOf(exp), timeOf(rev), timeOf(used)
		out = append(out, t)
	}
	return out, rows.Err()
}

func timeOf(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.Unix(0, n.Int64).UTC()
	return &t
}

// Revoke revokes a token and ends its sessions.
func (s *Store) Revoke(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, s.now().UnixNano(), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke token %s: %w", id, ErrNotFound)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_sessions WHERE token_id = ?`, id); err != nil {
		return fmt.Errorf("end sessions of token %s: %w", id, err)
	}
	return nil
}

// Authenticate returns the principal of a token secret, or ErrInvalid.
func (s *Store) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) && len(secret) < 24 {
		return Principal{}, ErrInvalid
	}
	return s.principal(ctx, `hash = ?`, Hash(secret), "token")
}

func (s *Store) principal(ctx context.Context, where, arg, via string) (Principal, error) {
	var p Principal
	var role, sites string
	var exp, used sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, role, sites, park, expires_at, last_used_at FROM auth_tokens WHERE `+where+` AND revoked_at IS NULL`, arg).
		Scan(&p.TokenID, &p.Name, &role, &sites, &p.Park, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrInvalid
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	now := s.now()
	if exp.Valid && now.UnixNano() >= exp.Int64 {
		return Principal{}, ErrInvalid
	}
	if p.Role, err = ParseRole(role); err != nil {
		return Principal{}, ErrInvalid
	}
	if sites != "" {
		p.Sites = strings.Split(sites, ",")
	}
	p.Via = via
	// Last use is kept to the minute: one write per token and minute, not per request.
	if !used.Valid || now.UnixNano()-used.Int64 > int64(time.Minute) {
		s.db.ExecContext(ctx, `UPDATE auth_tokens SET last_used_at = ? WHERE id = ?`, now.UnixNano(), p.TokenID)
	}
	return p, nil
}

// StartSession opens a browser session for the token secret: it returns the session id (the
// HttpOnly cookie) and the CSRF token (the readable cookie, echoed in X-CSRF-Token on writes).
// The session ends at ttl, at the token's expiry, or when the token is revoked.
func (s *Store) StartSession(ctx context.Context, secret string, ttl time.Duration) (Principal, string, string, time.Time, error) {
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		return Principal{}, "", "", time.Time{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(random(32))
	csrf := base64.RawURLEncoding.EncodeToString(random(24))
	now := s.now()
	exp := now.Add(ttl)
	_, err = s.db.ExecContext(ctx, `INSERT INTO auth_sessions (hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		Hash(id), p.TokenID, csrf, now.UnixNano(), exp.UnixNano())
	if err != nil {
		return Principal{}, "", "", time.Time{}, fmt.Errorf("store session: %w", err)
	}
	// Old sessions go when new ones start: the table never grows without bound.
	s.db.ExecContext(ctx, `DELETE FROM auth_sessions WHERE expires_at < ?`, now.UnixNano())
	p.Via = "session"
	return p, id, csrf, exp, nil
}

// Session returns the principal of a session id and the session's CSRF token.
func (s *Store) Session(ctx context.Context, id string) (Principal, string, error) {
	var tokenID, csrf string
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT token_id, csrf, expires_at FROM auth_sessions WHERE hash = ?`, Hash(id)).Scan(&tokenID, &csrf, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && s.now().UnixNano() >= exp) {
		return Principal{}, "", ErrInvalid
	}
	if err != nil {
		return Principal{}, "", fmt.Errorf("look up session: %w", err)
	}
	p, err := s.principal(ctx, `id = ?`, tokenID, "session")
	return p, csrf, err
}

// EndSession deletes a session.
func (s *Store) EndSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM auth_sessions WHERE hash = ?`, Hash(id))
	return err
}

// csrfEqual compares a CSRF token in constant time.
func csrfEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// AuditEntry is one recorded write.
type AuditEntry struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Who        string    `json:"who"`  // token name or proxy user; "" when unauthenticated
	Role       string    `json:"role"` // the caller's role
	Via        string    `json:"via"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	Remote     string    `json:"remote"`
	BodySHA256 string    `json:"body_sha256"`
}

// Record appends an entry to the audit log.
func (s *Store) Record(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_audit (time, who, role, via, method, path, status, remote, body_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Time.UnixNano(), e.Who, e.Role, e.Via, e.Method, e.Path, e.Status, e.Remote, e.BodySHA256)
	if err != nil {
		return fmt.Errorf("record audit entry: %w", err)
	}
	return nil
}

// Audit returns up to limit entries, newest first, with ids below before (0: from the newest).
func (s *Store) Audit(ctx context.Context, limit int, before int64) ([]AuditEntry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, time, who, role, via, method, path, status, remote, body_sha256 FROM auth_audit WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &t, &e.Who, &e.Role, &e.Via, &e.Method, &e.Path, &e.Status, &e.Remote, &e.BodySHA256); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.Time = time.Unix(0, t).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
