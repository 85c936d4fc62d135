package register

import (
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

// Verification statuses of a meter on a day.
const (
	StatusOK       = "ok"
	StatusDueSoon  = "due_soon" // due within DueSoon
	StatusOverdue  = "overdue"
	StatusFailed   = "failed"    // the latest verification failed
	StatusNoRecord = "no_record" // neither the site file nor a certificate gives a date
)

// DueSoon is how close to its due date a meter is reported due soon.
const DueSoon = 30 * 24 * time.Hour

// Status is a meter's verification as the register stands: the site file's dates merged with
// the certificates entered in the platform.
type Status struct {
	Meter       string    `json:"meter"`
	VerifiedOn  string    `json:"verified_on,omitempty"` // latest verification
	Certificate string    `json:"certificate,omitempty"`
	Result      string    `json:"result,omitempty"`
	NextDue     time.Time `json:"next_due,omitzero"`
	Status      string    `json:"status"`
	// Unverified are the days of the period asked about on which the meter had no valid
	// verification, as "YYYY-MM-DD" or "YYYY-MM-DD..YYYY-MM-DD" ranges.
	Unverified []string `json:"unverified,omitempty"`
	// UnverifiedDays counts them.
	UnverifiedDays int `json:"unverified_days"`
}

type validity struct {
	from, to time.Time // [from, to), midnights in the site's zone
}

// MeterStatus evaluates one meter at the instant at, and its coverage by valid verifications on
// each day of [from, to) (no day list when from is zero). certs are the meter's effective
// certificates. A passing verification is valid from its day to its due date (the
// certificate's valid_until, else JJG 162 by type and DN with the site's intervals); a failing
// one ends every earlier validity on its day.
func MeterStatus(s *analytics.Site, m analytics.Meter, certs []Certificate, at, from, to time.Time) Status {
	loc := s.Location()
	st := Status{Meter: m.ID}
	type entry struct {
		day              time.Time
		pass             bool
		due              time.Time
		number, verified string
	}
	var es []entry
	day := func(d string) (time.Time, bool) {
		t, err := time.ParseInLocation("2006-01-02", d, loc)
		return t, err == nil
	}
	if d, ok := day(m.VerifiedOn); ok {
		es = append(es, entry{day: d, pass: true, due: s.NextVerification(m), number: m.Certificate, verified: m.VerifiedOn})
	}
	for _, c := range certs {
		d, ok := day(c.Date)
		if !ok || c.Meter != m.ID {
			continue
		}
		e := entry{day: d, pass: c.Result == ResultPass, number: c.Number, verified: c.Date}
		if u, ok := day(c.ValidUntil); ok {
			e.due = u
		} else {
			mm := m
			mm.VerifiedOn, mm.VerificationDue = c.Date, ""
			e.due = s.NextVerification(mm)
		}
		es = append(es, e)
	}
	if len(es) == 0 {
		st.Status = StatusNoRecord
	}
	var valid []validity
	var latest *entry
	for i := range es {
		e := &es[i]
		if latest == nil || !e.day.Before(latest.day) {
			latest = e
		}
		if e.pass {
			valid = append(valid, validity{e.day, e.due})
		}
	}
	for _, e := range es {
		if e.pass {
			continue
		}
		for i := range valid {
			if valid[i].from.Before(e.day) && valid[i].to.After(e.day) {
				valid[i].to = e.day
			}
		}
	}
	if latest != nil {
		st.VerifiedOn, st.Certificate = latest.verified, latest.number
		st.Result = ResultFail
		if latest.pass {
			st.Result = ResultPass
			st.NextDue = latest.due
		}
		switch {
		case !latest.pass:
			st.Status = StatusFailed
		case !at.Before(latest.due):
			st.Status = StatusOverdue
		case latest.due.Sub(at) <= DueSoon:
			st.Status = StatusDueSoon
		default:
			st.Status = StatusOK
		}
	}
	if from.IsZero() {
		return st
	}
	var runFrom, runTo time.Time
	flush := func() {
		if runFrom.IsZero() {
			return
		}
		if runFrom.Equal(runTo) {
			st.Unverified = append(st.Unverified, runFrom.Format("2006-01-02"))
		} else {
			st.Unverified = append(st.Unverified, runFrom.Format("2006-01-02")+".."+runTo.Format("2006-01-02"))
		}
		runFrom = time.Time{}
	}
	f := from.In(loc)
	for d := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc); d.Before(to); d = d.AddDate(0, 0, 1) {
		ok := false
		for _, v := range valid {
			if !d.Before(v.from) && d.Before(v.to) {
				ok = true
				break
			}
		}
		if ok {
			flush()
			continue
		}
		st.UnverifiedDays++
		if runFrom.IsZero() {
			runFrom = d
		}
		runTo = d
	}
	flush()
	return st
}
