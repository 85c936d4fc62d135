// Package register keeps the meter register in the platform's state DB, beside what the site
// file says: verification and calibration certificates (date, number, result) and meter
// replacements (the old meter's final reading, the new one's initial reading, the time). It is
// append-only: every entry is kept with who entered it and when, and a correction is a new entry
// that supersedes the old one, so an auditor can see the register as it stood on any day.
//
// A replacement record is what lets the ledger fill the volume of a meter swap
// (ledger.WithReplacements, through Register.Lookup).
package register

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// Results of a verification or calibration.
const (
	ResultPass = "pass"
	ResultFail = "fail"
)

// ErrInvalid is wrapped by the errors of an entry that cannot be stored.
var ErrInvalid = errors.New("invalid register entry")

// Certificate is one verification or calibration of a meter (检定/校准证书).
type Certificate struct {
	ID     int64  `json:"id"`
	Site   string `json:"site"`
	Meter  string `json:"meter"`
	Date   string `json:"date"`   // YYYY-MM-DD, the day of verification
	Number string `json:"number"` // certificate number
	Result string `json:"result"` // pass or fail
	// ValidUntil, when the certificate states it, overrides the interval of JJG 162.
	ValidUntil string `json:"valid_until,omitempty"`
	Note       string `json:"note,omitempty"`
	// Supersedes is the id of an earlier entry this one corrects (it is then ignored).
	Supersedes int64     `json:"supersedes,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
	RecordedBy string    `json:"recorded_by"`
}

// Replacement is one meter swap.
type Replacement struct {
	ID         int64     `json:"id"`
	Site       string    `json:"site"`
	Meter      string    `json:"meter"`
	Time       time.Time `json:"time"`
	OldFinal   float64   `json:"old_final"`
	NewInitial float64   `json:"new_initial"`
	OldSerial  string    `json:"old_serial,omitempty"`
	NewSerial  string    `json:"new_serial,omitempty"`
	Note       string    `json:"note,omitempty"`
	Supersedes int64     `json:"supersedes,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
	RecordedBy string    `json:"recorded_by"`
}

const dateLayout = "2006-01-02"

// Check reports what makes a certificate unusable.
func (c Certificate) Check() error {
	var errs []error
	if c.Site == "" || c.Meter == "" {
		errs = append(errs, errors.New("site and meter are required"))
	}
	d, err := time.Parse(dateLayout, c.Date)
	if err != nil {
		errs = append(errs, fmt.Errorf("date %q is not a date (YYYY-MM-DD)", c.Date))
	}
	if strings.TrimSpace(c.Number) == "" {
		errs = append(errs, errors.New("number (the certificate number) is required"))
	}
	if c.Result != ResultPass && c.Result != ResultFail {
		errs = append(errs, fmt.Errorf("result %q is not one of %s, %s", c.Result, ResultPass, ResultFail))
	}
	if c.ValidUntil != "" {
		u, err := time.Parse(dateLayout, c.ValidUntil)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("valid_until %q is not a date (YYYY-MM-DD)", c.ValidUntil))
		case !u.After(d):
			errs = append(errs, fmt.Errorf("valid_until %s is not after date %s", c.ValidUntil, c.Date))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Check reports what makes a replacement unusable.
func (r Replacement) Check() error {
	var errs []error
	if r.Site == "" || r.Meter == "" {
		errs = append(errs, errors.New("site and meter are required"))
	}
	if r.Time.IsZero() {
		errs = append(errs, errors.New("time is required"))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"old_final", r.OldFinal}, {"new_initial", r.NewInitial}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is not a finite, non-negative reading", f.name, f.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Register is the meter register in the state DB. It keeps the replacements in memory too, since
// the ledger consults them at every reset.
type Register struct {
	db  *sql.DB
	now func() time.Time

	mu    sync.RWMutex
	swaps map[string][]Replacement // by site/meter, effective entries, by time
}

// Open creates the register's tables if needed and loads the replacements. now stamps entries
// (nil: time.Now).
func Open(ctx context.Context, db *sql.DB, now func() time.Time) (*Register, error) {
	if now == nil {
		now = time.Now
	}
	const schema = `
CREATE TABLE IF NOT EXISTS register_certificates (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	site        TEXT NOT NULL,
	meter       TEXT NOT NULL,
	date        TEXT NOT NULL,
	number      TEXT NOT NULL,
	result      TEXT NOT NULL,
	valid_until TEXT NOT NULL DEFAULT '',
	note        TEXT NOT NULL DEFAULT '',
	supersedes  INTEGER NOT NULL DEFAULT 0,
	recorded_at INTEGER NOT NULL,
	recorded_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS register_certificates_by_meter ON register_certificates (site, meter);
CREATE TABLE IF NOT EXISTS register_replacements (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	site        TEXT NOT NULL,
	meter       TEXT NOT NULL,
	time        INTEGER NOT NULL,
	old_final   REAL NOT NULL,
	new_initial REAL NOT NULL,
	old_serial  TEXT NOT NULL DEFAULT '',
	new_serial  TEXT NOT NULL DEFAULT '',
	note        TEXT NOT NULL DEFAULT '',
	supersedes  INTEGER NOT NULL DEFAULT 0,
	recorded_at INTEGER NOT NULL,
	recorded_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS register_replacements_by_meter ON register_replacements (site, meter);
-- The register is append-only: entries are corrected by new entries, never changed or removed.
CREATE TRIGGER IF NOT EXISTS register_certificates_append_only BEFORE UPDATE ON register_certificates
	BEGIN SELECT RAISE(ABORT, 'the meter register is append-only'); END;
CREATE TRIGGER IF NOT EXISTS register_certificates_no_delete BEFORE DELETE ON register_certificates
	BEGIN SELECT RAISE(ABORT, 'the meter register is append-only'); END;
CREATE TRIGGER IF NOT EXISTS register_replacements_append_only BEFORE UPDATE ON register_replacements
	BEGIN SELECT RAISE(ABORT, 'the meter register is append-only'); END;
CREATE TRIGGER IF NOT EXISTS register_replacements_no_delete BEFORE DELETE ON register_replacements
	BEGIN SELECT RAISE(ABORT, 'the meter register is append-only'); END;
`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create meter register tables: %w", err)
	}
	r := &Register{db: db, now: now}
	if err := r.reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Register) reload(ctx context.Context) error {
	all, err := r.replacements(ctx, "", "")
	if err != nil {
		return err
	}
	m := map[string][]Replacement{}
	for _, x := range effectiveReplacements(all) {
		k := x.Site + "/" + x.Meter
		m[k] = append(m[k], x)
	}
	for _, v := range m {
		slices.SortFunc(v, func(a, b Replacement) int { return a.Time.Compare(b.Time) })
	}
	r.mu.Lock()
	r.swaps = m
	r.mu.Unlock()
	return nil
}

// AddCertificate appends a certificate entered by who and returns it as stored.
func (r *Register) AddCertificate(ctx context.Context, c Certificate, who string) (Certificate, error) {
	if err := c.Check(); err != nil {
		return Certificate{}, err
	}
	if who == "" {
		return Certificate{}, fmt.Errorf("%w: who entered it is required", ErrInvalid)
	}
	c.RecordedAt, c.RecordedBy = r.now().UTC().Truncate(time.Millisecond), who
	res, err := r.db.ExecContext(ctx, `INSERT INTO register_certificates
		(site, meter, date, number, result, valid_until, note, supersedes, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Site, c.Meter, c.Date, c.Number, c.Result, c.ValidUntil, c.Note, c.Supersedes, c.RecordedAt.UnixNano(), c.RecordedBy)
	if err != nil {
		return Certificate{}, fmt.Errorf("store certificate of %s/%s: %w", c.Site, c.Meter, err)
	}
	c.ID, _ = res.LastInsertId()
	return c, nil
}

// AddReplacement appends a replacement entered by who and returns it as stored.
func (r *Register) AddReplacement(ctx context.Context, x Replacement, who string) (Replacement, error) {
	if err := x.Check(); err != nil {
		return Replacement{}, err
	}
	if who == "" {
		return Replacement{}, fmt.Errorf("%w: who entered it is required", ErrInvalid)
	}
	x.Time = x.Time.UTC()
	x.RecordedAt, x.RecordedBy = r.now().UTC().Truncate(time.Millisecond), who
	res, err := r.db.ExecContext(ctx, `INSERT INTO register_replacements
		(site, meter, time, old_final, new_initial, old_serial, new_serial, note, supersedes, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		x.Site, x.Meter, x.Time.UnixNano(), x.OldFinal, x.NewInitial, x.OldSerial, x.NewSerial, x.Note, x.Supersedes, x.RecordedAt.UnixNano(), x.RecordedBy)
	if err != nil {
		return Replacement{}, fmt.Errorf("store replacement of %s/%s: %w", x.Site, x.Meter, err)
	}
	x.ID, _ = res.LastInsertId()
	if err := r.reload(ctx); err != nil {
		return x, err
	}
	return x, nil
}

// Certificates returns every certificate entry of a site (of one meter when meter is not ""),
// superseded ones included, in the order they were entered.
func (r *Register) Certificates(ctx context.Context, site, meter string) ([]Certificate, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, site, meter, date, number, result, valid_until, note, supersedes, recorded_at, recorded_by
		FROM register_certificates WHERE site = ? AND (? = '' OR meter = ?) ORDER BY id`, site, meter, meter)
	if err != nil {
		return nil, fmt.Errorf("read certificates of %s: %w", site, err)
	}
	defer rows.Close()
	out := []Certificate{}
	for rows.Next() {
		var c Certificate
		var at int64
		if err := rows.Scan(&c.ID, &c.Site, &c.Meter, &c.Date, &c.Number, &c.Result, &c.ValidUntil, &c.Note, &c.Supersedes, &at, &c.RecordedBy); err != nil {
			return nil, fmt.Errorf("read certificates of %s: %w", site, err)
		}
		c.RecordedAt = time.Unix(0, at).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// Replacements returns every replacement entry of a site (one meter when meter is not ""; every
// site when site is ""), superseded ones included, in the order they were entered.
func (r *Register) Replacements(ctx context.Context, site, meter string) ([]Replacement, error) {
	return r.replacements(ctx, site, meter)
}

func (r *Register) replacements(ctx context.Context, site, meter string) ([]Replacement, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, site, meter, time, old_final, new_initial, old_serial, new_serial, note, supersedes, recorded_at, recorded_by
		FROM register_replacements WHERE (? = '' OR site = ?) AND (? = '' OR meter = ?) ORDER BY id`, site, site, meter, meter)
	if err != nil {
		return nil, fmt.Errorf("read replacements of %s: %w", site, err)
	}
	defer rows.Close()
	out := []Replacement{}
	for rows.Next() {
		var x Replacement
		var t, at int64
		if err := rows.Scan(&x.ID, &x.Site, &x.Meter, &t, &x.OldFinal, &x.NewInitial, &x.OldSerial, &x.NewSerial, &x.Note, &x.Supersedes, &at, &x.RecordedBy); err != nil {
			return nil, fmt.Errorf("read replacements of %s: %w", site, err)
		}
		x.Time, x.RecordedAt = time.Unix(0, t).UTC(), time.Unix(0, at).UTC()
		out = append(out, x)
	}
	return out, rows.Err()
}

// EffectiveCertificates drops the entries a later entry supersedes.
func EffectiveCertificates(all []Certificate) []Certificate {
	gone := map[int64]bool{}
	for _, c := range all {
		if c.Supersedes != 0 {
			gone[c.Supersedes] = true
		}
	}
	out := []Certificate{}
	for _, c := range all {
		if !gone[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

func effectiveReplacements(all []Replacement) []Replacement {
	gone := map[int64]bool{}
	for _, x := range all {
		if x.Supersedes != 0 {
			gone[x.Supersedes] = true
		}
	}
	out := []Replacement{}
	for _, x := range all {
		if !gone[x.ID] {
			out = append(out, x)
		}
	}
	return out
}

// EffectiveReplacements drops the entries a later entry supersedes.
func EffectiveReplacements(all []Replacement) []Replacement { return effectiveReplacements(all) }

// Lookup is a ledger.Replacements over the register: the first effective replacement of the
// meter in (from, to].
func (r *Register) Lookup(site, meter string, from, to time.Time) (ledger.Replacement, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, x := range r.swaps[site+"/"+meter] {
		if x.Time.After(from) && !x.Time.After(to) {
			return ledger.Replacement{Time: x.Time, OldFinal: x.OldFinal, NewInitial: x.NewInitial}, true
		}
	}
	return ledger.Replacement{}, false
}

var _ ledger.Replacements = (*Register)(nil).Lookup
