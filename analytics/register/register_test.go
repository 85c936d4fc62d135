package register_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/register"
	"github.com/aqualoop/aqualoop/collector/config"
)

const siteYAML = `
id: s
timezone: Asia/Shanghai
nodes:
  - {id: city, type: source, kind: municipal}
  - {id: plant, type: unit, kind: workshop}
  - {id: sewer, type: sink, kind: discharge}
meters:
  - {id: M20, level: 1, dn: 20, verified_on: "2021-03-01"}
  - {id: M40, level: 1, dn: 40, verified_on: "2021-03-01"}
  - {id: M80, level: 1, dn: 80, verified_on: "2026-01-15"}
flows:
  - {id: intake, from: city, to: plant, kind: intake, meter: M80}
  - {id: out, from: plant, to: sewer, kind: discharge, meter: M40}
  - {id: other, from: city, to: plant, kind: intake, meter: M20}
`

func open(t *testing.T) (*register.Register, *sql.DB, *analytics.Site) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	r, err := register.Open(context.Background(), db, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	var s analytics.Site
	if err := config.Parse("site.yaml", []byte(siteYAML), &s); err != nil {
		t.Fatal(err)
	}
	return r, db, &s
}

// TestMeterStatus: DOMAIN.md example 13 (JJG 162) through the register, and a certificate that
// renews a meter, and one that fails it.
func TestMeterStatus(t *testing.T) {
	reg, _, s := open(t)
	ctx := context.Background()
	loc := s.Location()
	day := func(d string) time.Time { x, _ := time.ParseInLocation(time.DateOnly, d, loc); return x }
	m20, _ := s.Meter("M20")
	m40, _ := s.Meter("M40")
	m80, _ := s.Meter("M80")
	for _, tc := range []struct {
		m    analytics.Meter
		due  string
		stat string
	}{{m20, "2027-03-01", register.StatusOK}, {m40, "2025-03-01", register.StatusOverdue}, {m80, "2028-01-15", register.StatusOK}} {
		st := register.MeterStatus(s, tc.m, nil, day("2026-12-01"), time.Time{}, time.Time{})
		if st.NextDue.Format(time.DateOnly) != tc.due || st.Status != tc.stat {
			t.Errorf("%s: due %s %s, want %s %s", tc.m.ID, st.NextDue.Format(time.DateOnly), st.Status, tc.due, tc.stat)
		}
	}
	// M40 lapsed on 2025-03-01 and was verified again on 2026-11-10.
	if _, err := reg.AddCertificate(ctx, register.Certificate{Site: "s", Meter: "M40", Date: "2026-11-10", Number: "C-1", Result: register.ResultPass}, "li"); err != nil {
		t.Fatal(err)
	}
	// M80 failed its check on 2026-11-20.
	if _, err := reg.AddCertificate(ctx, register.Certificate{Site: "s", Meter: "M80", Date: "2026-11-20", Number: "C-2", Result: register.ResultFail}, "li"); err != nil {
		t.Fatal(err)
	}
	certs, _ := reg.Certificates(ctx, "s", "")
	st := register.MeterStatus(s, m40, certs, day("2026-12-01"), day("2026-11-01"), day("2026-12-01"))
	if st.Status != register.StatusOK || st.NextDue.Format(time.DateOnly) != "2030-11-10" || st.UnverifiedDays != 9 ||
		strings.Join(st.Unverified, ",") != "2026-11-01..2026-11-09" {
		t.Errorf("M40 after its certificate: %+v", st)
	}
	st = register.MeterStatus(s, m80, certs, day("2026-12-01"), day("2026-11-01"), day("2026-12-01"))
	if st.Status != register.StatusFailed || st.UnverifiedDays != 11 || strings.Join(st.Unverified, ",") != "2026-11-20..2026-11-30" {
		t.Errorf("M80 after failing: %+v", st)
	}
}

// TestRegisterAPI: JSON writes with who and when, refused without identity or JSON, append-only
// underneath, and the replacement lookup the ledger uses.
func TestRegisterAPI(t *testing.T) {
	reg, db, s := open(t)
	called := 0
	srv := httptest.NewServer(register.Handler(register.Options{Sites: []*analytics.Site{s}, Register: reg,
		Who:           func(r *http.Request) string { return r.Header.Get("X-User") },
		OnReplacement: func(context.Context, register.Replacement) error { called++; return nil }}))
	defer srv.Close()
	do := func(method, path, ctype, user, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	swap := `{"meter":"M80","time":"2026-11-20T12:07","old_final":5001,"new_initial":0.2}`
	for _, tc := range []struct {
		name, path, ctype, user, body string
		code                          int
		text                          string
	}{
		{"form body", "/api/v1/sites/s/register/replacements", "application/x-www-form-urlencoded", "li", swap, 415, "JSON"},
		{"no identity", "/api/v1/sites/s/register/replacements", "application/json", "", swap, 401, "who"},
		{"unknown meter", "/api/v1/sites/s/register/replacements", "application/json", "li", strings.Replace(swap, "M80", "M99", 1), 400, "M99"},
		{"negative reading", "/api/v1/sites/s/register/replacements", "application/json", "li", strings.Replace(swap, "5001", "-1", 1), 400, "old_final"},
		{"unknown field", "/api/v1/sites/s/register/certificates", "application/json", "li", `{"meter":"M80","colour":"red"}`, 400, "colour"},
		{"bad result", "/api/v1/sites/s/register/certificates", "application/json", "li", `{"meter":"M80","date":"2026-11-01","number":"X","result":"maybe"}`, 400, "result"},
		{"unknown site", "/api/v1/sites/x/register/certificates", "application/json", "li", `{}`, 404, "unknown site"},
		{"swap", "/api/v1/sites/s/register/replacements", "application/json", "li", swap, 201, `"recorded_by": "li"`},
	} {
		code, body := do(http.MethodPost, tc.path, tc.ctype, tc.user, tc.body)
		if code != tc.code || !strings.Contains(body, tc.text) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.name, code, body, tc.code, tc.text)
		}
	}
	if called != 1 {
		t.Errorf("OnReplacement called %d times, want once", called)
	}
	code, body := do(http.MethodGet, "/api/v1/sites/s/register/replacements", "", "", "")
	var xs []register.Replacement
	if err := json.Unmarshal([]byte(body), &xs); code != 200 || err != nil || len(xs) != 1 || !xs[0].RecordedAt.Equal(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("list: %d %s", code, body)
	}
	// The swap at 12:07 Shanghai is 04:07 UTC; the lookup finds it in the interval around it only.
	at := time.Date(2026, 11, 20, 4, 7, 0, 0, time.UTC)
	if r, ok := reg.Lookup("s", "M80", at.Add(-7*time.Minute), at.Add(8*time.Minute)); !ok || r.OldFinal != 5001 || r.NewInitial != 0.2 {
		t.Errorf("lookup around the swap: %+v %v", r, ok)
	}
	if _, ok := reg.Lookup("s", "M80", at, at.Add(time.Hour)); ok {
		t.Error("lookup found the swap in an interval that starts at it")
	}
	// A correction supersedes the entry; both stay in the register.
	code, body = do(http.MethodPost, "/api/v1/sites/s/register/replacements", "application/json", "wang",
		`{"meter":"M80","time":"2026-11-20T12:07","old_final":5002,"new_initial":0.2,"supersedes":1}`)
	if code != 201 {
		t.Fatalf("correction: %d %s", code, body)
	}
	if r, _ := reg.Lookup("s", "M80", at.Add(-time.Minute), at.Add(time.Minute)); r.OldFinal != 5002 {
		t.Errorf("lookup after the correction: old final %v, want 5002", r.OldFinal)
	}
	all, _ := reg.Replacements(context.Background(), "s", "")
	if len(all) != 2 {
		t.Errorf("%d entries kept, want 2 (append-only)", len(all))
	}
	if _, err := db.Exec(`UPDATE register_replacements SET old_final = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE of the register: %v, want refused as append-only", err)
	}
	if _, err := db.Exec(`DELETE FROM register_replacements`); err == nil {
		t.Error("DELETE from the register was allowed")
	}
	code, body = do(http.MethodGet, "/api/v1/sites/s/register", "", "", "")
	if code != 200 || !strings.Contains(body, `"meter": "M40"`) || !strings.Contains(body, `"status": "overdue"`) {
		t.Errorf("status: %d %s", code, body)
	}
}
