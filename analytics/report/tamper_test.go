package report_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/report"
)

// rezip returns the pack with one file's bytes changed by fn.
func rezip(t *testing.T, b []byte, name string, fn func([]byte) []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == name {
			data = fn(data)
		}
		w, _ := zw.Create(f.Name)
		w.Write(data)
	}
	zw.Close()
	return out.Bytes()
}

func (f *fixture) verify(t *testing.T, b []byte, withStore bool) *report.Verification {
	t.Helper()
	o := report.VerifyOptions{PublicKey: f.key.Public().(ed25519.PublicKey)}
	if withStore {
		data, err := os.ReadFile(f.siteFile)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := analytics.LoadSite(f.siteFile)
		if s == nil {
			s = f.site
		}
		o.Store, o.Engine, o.Site, o.SiteFile = f.st, f.eng, s, report.SiteFile{Name: f.siteFile, Data: data}
	}
	v, err := report.Verify(context.Background(), bytes.NewReader(b), int64(len(b)), o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func has(v *report.Verification, sub string) bool {
	for _, p := range v.Problems {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

// TestTamper: one byte of a file in the pack, one reading in the store, one line of the site
// model: each is caught and named.
func TestTamper(t *testing.T) {
	// The site file is copied so that one of its lines can be changed.
	dir := t.TempDir()
	siteFile := filepath.Join(dir, "site.yaml")
	orig, err := os.ReadFile("testdata/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(siteFile, orig, 0o644)
	f := newFixture(t, siteFile)
	rs, oldFinal := readings()
	resp := f.post(t, "/api/v1/sites/t/register/replacements", fmt.Sprintf(`{"meter":"M2","time":"2026-11-20T12:07","old_final":%v,"new_initial":0}`, oldFinal))
	if resp.StatusCode != 201 {
		t.Fatalf("add replacement: %d", resp.StatusCode)
	}
	f.load(t, rs)
	var pack bytes.Buffer
	if err := f.maker.Make(context.Background(), &pack, "t", "2026-11", "zip", ""); err != nil {
		t.Fatal(err)
	}
	b := pack.Bytes()
	if v := f.verify(t, b, true); !v.OK() {
		t.Fatalf("a fresh pack does not verify against the store: %v", v.Problems)
	}

	// One byte of the CSV.
	bad := rezip(t, b, report.FileCSV, func(d []byte) []byte { d[len(d)/2] ^= 1; return d })
	if v := f.verify(t, bad, false); !has(v, "report.csv was changed after signing") {
		t.Errorf("a changed byte of report.csv: %v", v.Problems)
	}
	// The manifest itself.
	bad = rezip(t, b, report.FileManifest, func(d []byte) []byte {
		// Change the leading digit of Vi: still valid JSON, a different figure.
		re := regexp.MustCompile(`"vi": ?[0-9]`)
		loc := re.FindIndex(d)
		if loc == nil {
			t.Fatalf("the manifest has no Vi to change")
		}
		out := bytes.Clone(d)
		if out[loc[1]-1] == '9' {
			out[loc[1]-1] = '8'
		} else {
			out[loc[1]-1]++
		}
		return out
	})
	if v := f.verify(t, bad, false); !has(v, "signature does not match manifest.json") {
		t.Errorf("a changed manifest: %v", v.Problems)
	}
	// Another key.
	pub, _, _ := ed25519.GenerateKey(nil)
	v, err := report.Verify(context.Background(), bytes.NewReader(b), int64(len(b)), report.VerifyOptions{PublicKey: pub})
	if err != nil || !has(v, "signed with a different key") {
		t.Errorf("verified with another key: %v %v", err, v.Problems)
	}

	// One line of the site model.
	changed := strings.Replace(string(orig), "name: 示范水厂", "name: 示范水厂二", 1)
	os.WriteFile(siteFile, []byte(changed), 0o644)
	if v := f.verify(t, b, true); !has(v, "changed since the pack was made: line 4 was \"name: 示范水厂\"") {
		t.Errorf("a changed line of site.yaml: %v", v.Problems)
	}
	os.WriteFile(siteFile, orig, 0o644)

	// One reading in the store, on 2026-11-17 at 09:00 (CST), edited behind the platform's back:
	// through the store a second reading for the same time is only set aside as a conflict
	// (readings are append-only evidence), so a tamperer has to write to the database file.
	at := time.Date(2026, 11, 17, 9, 0, 0, 0, cst).UTC()
	raw, err := sql.Open("sqlite", f.stPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	res, err := raw.Exec(`UPDATE readings SET points = replace(points, '"v":', '"v":1') WHERE site = ? AND meter = 'M1' AND time = ?`,
		f.site.ID, at.UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("edited %d readings, want 1", n)
	}
	for _, r := range rs {
		if r.Meter == "M1" && r.Time.Equal(at) {
			got, _, err := f.st.LastReading(context.Background(), f.site.ID, "M1", at)
			if err != nil || !got.Time.Equal(at) || got.Points[0].Value == r.Points[0].Value {
				t.Fatalf("the edited reading reads back as %+v (%v), unchanged", got, err)
			}
		}
	}
	v = f.verify(t, b, true)
	if v.FirstChangedDay != "2026-11-17" || !has(v, "data of 2026-11-17 no longer matches the pack: readings") {
		t.Errorf("a changed reading on 2026-11-17: first changed day %q, %v", v.FirstChangedDay, v.Problems)
	}
}

// TestBadInput: an unknown site, a period without data, a period in the future, a bad period
// and a missing key each give a clear error and write nothing.
func TestBadInput(t *testing.T) {
	f := newFixture(t, "testdata/site.yaml")
	rs, _ := readings()
	f.load(t, rs)
	noKey := report.NewMaker(report.MakerOptions{
		Options: report.Options{Engine: f.eng, Store: f.st, Now: func() time.Time { return now }},
		Sites:   []*analytics.Site{f.site},
		Fonts:   func() (report.Fonts, error) { return font(t), nil },
		Key: func(site string) (ed25519.PrivateKey, error) {
			k, _, err := report.LoadKey(filepath.Join(t.TempDir(), site+".key"), false)
			return k, err
		},
		SiteFile: func(string) (report.SiteFile, error) { return report.SiteFile{}, nil },
	})
	for _, tc := range []struct {
		name, site, period, format string
		maker                      *report.Maker
		want                       error
		text                       string
	}{
		{"unknown site", "nope", "2026-11", "pdf", f.maker, report.ErrUnknownSite, `unknown site "nope"`},
		{"no data", "t", "2026-05", "pdf", f.maker, report.ErrNoData, "no ledger data"},
		{"future", "t", "2027-01", "xlsx", f.maker, report.ErrFuture, "after now"},
		{"bad month", "t", "2026-13", "csv", f.maker, report.ErrBadPeriod, "month 13"},
		{"bad format", "t", "2026-11", "docx", f.maker, report.ErrFormat, "docx"},
		{"missing key", "t", "2026-11", "zip", noKey, report.ErrNoKey, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tc.maker.Make(context.Background(), &out, tc.site, tc.period, tc.format, "")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %v, want %v containing %q", err, tc.want, tc.text)
			}
			if out.Len() != 0 {
				t.Errorf("%d bytes written on error", out.Len())
			}
		})
	}
	// Through the API: JSON errors, 4xx for the client's mistakes.
	for path, code := range map[string]int{"/api/v1/sites/nope/reports/2026-11.pdf": 404, "/api/v1/sites/t/reports/2027-01.pdf": 400,
		"/api/v1/sites/t/reports/2026-05.csv": 404, "/api/v1/sites/t/reports/2026-11.csv?lang=fr": 400} {
		b, resp := f.get(t, path)
		if resp.StatusCode != code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !bytes.Contains(b, []byte(`"error"`)) {
			t.Errorf("GET %s: %d %s %s, want %d and a JSON error", path, resp.StatusCode, resp.Header.Get("Content-Type"), b, code)
		}
	}
}

// TestPlanHistory: three years of monthly plans, with the site taking 30 m³ a day; the plan of
// March 2025 is 900 m³ for a 31-day month, so that one month is over plan and the summary fails
// on it, naming it; the other conditions are unaffected.
func TestPlanHistory(t *testing.T) {
	dir := t.TempDir()
	orig, _ := os.ReadFile("testdata/site.yaml")
	var plans strings.Builder
	plans.WriteString("plans:\n")
	for y := 2024; y <= 2026; y++ {
		fmt.Fprintf(&plans, "  - {period: year, year: %d, volume: 12000}\n", y)
		for m := 1; m <= 12; m++ {
			v := 1000
			if y == 2025 && m == 3 {
				v = 900
			}
			fmt.Fprintf(&plans, "  - {period: month, year: %d, month: %d, volume: %d}\n", y, m, v)
		}
	}
	s := string(orig)
	i, j := strings.Index(s, "plans:\n"), strings.Index(s, "indicators:\n")
	s = s[:i] + plans.String() + s[j:]
	siteFile := filepath.Join(dir, "site.yaml")
	os.WriteFile(siteFile, []byte(s), 0o644)
	f := newFixture(t, siteFile)
	rs, _ := readings()
	f.load(t, rs)
	// 30 m³ a day from 2024-01-01 to 2026-10-31, as one bucket per day on M1.
	var bs []ledger.Bucket
	for d := time.Date(2024, 1, 1, 12, 0, 0, 0, cst); d.Before(monthStart); d = d.AddDate(0, 0, 1) {
		bs = append(bs, ledger.Bucket{Site: "t", Meter: "M1", Start: d.UTC(), Volume: 30, Coverage: 1})
	}
	if err := f.st.WriteBuckets(context.Background(), bs); err != nil {
		t.Fatal(err)
	}
	// The engine's own figure for March 2025, which the summary must quote.
	ps, err := f.eng.Plans(context.Background(), "t", now)
	if err != nil {
		t.Fatal(err)
	}
	var march engine.PlanStatus
	for _, p := range ps {
		if p.Plan == "site 2025-03" {
			march = p
		}
	}
	if march.Used != 930 {
		t.Fatalf("engine: March 2025 used %v, want 31 × 30 = 930", march.Used)
	}
	var out bytes.Buffer
	if err := f.maker.Make(context.Background(), &out, "t", "2026-11", "csv", "en"); err != nil {
		t.Fatal(err)
	}
	rows := csvSection(t, out.Bytes(), "summary")
	var plansRow []string
	for _, r := range rows {
		if strings.HasPrefix(r[0], "No withdrawal over plan") {
			plansRow = r
		}
	}
	want := fmt.Sprintf("site 2025-03: %s > %s", report.Vol(march.Used), report.Vol(march.Volume))
	if plansRow == nil || plansRow[3] != "fail" || !strings.Contains(plansRow[4], want) {
		t.Errorf("summary row of the plans: %q, want fail naming %q", plansRow, want)
	}
	overs := 0
	for _, r := range csvSection(t, out.Bytes(), "plans")[1:] {
		if r[9] == "yes" {
			overs++
		}
	}
	if overs != 1 {
		t.Errorf("%d plans over in the plans table, want exactly March 2025", overs)
	}
}
