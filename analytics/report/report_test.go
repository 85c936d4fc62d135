package report_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	_ "modernc.org/sqlite"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/register"
	"github.com/aqualoop/aqualoop/analytics/report"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

var (
	cst        = time.FixedZone("CST", 8*3600)
	monthStart = time.Date(2026, 11, 1, 0, 0, 0, 0, cst)
	monthEnd   = time.Date(2026, 12, 1, 0, 0, 0, 0, cst)
	now        = time.Date(2026, 12, 1, 10, 0, 0, 0, cst)
	swapAt     = time.Date(2026, 11, 20, 12, 7, 0, 0, cst)
	gapFrom    = time.Date(2026, 11, 10, 8, 0, 0, 0, cst)
	gapTo      = time.Date(2026, 11, 10, 10, 0, 0, 0, cst)
)

// font returns the CJK font, skipping (failing under CI) when it is not installed.
func font(t testing.TB) report.Fonts {
	t.Helper()
	b, err := report.LoadFonts("", "")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skip(err)
	}
	return b
}

// fixture is the platform of the scenario: a SQLite store with November's readings and ledger,
// the state DB with the register, the engine, and an HTTP server with the API, the register and
// the reports.
type fixture struct {
	site     *analytics.Site
	siteFile string
	st       *store.SQLite
	stPath   string
	reg      *register.Register
	eng      *engine.Engine
	maker    *report.Maker
	srv      *httptest.Server
	key      ed25519.PrivateKey
}

func newFixture(t *testing.T, siteFile string) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := analytics.LoadSite(siteFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := register.Open(ctx, db, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := report.LoadKey(filepath.Join(dir, "keys", s.ID+".key"), true)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{site: s, siteFile: siteFile, st: st, stPath: filepath.Join(dir, "aqualoop.db"), reg: reg, eng: engine.New([]*analytics.Site{s}, st), key: key}
	fnt := font(t)
	f.maker = report.NewMaker(report.MakerOptions{
		Options: report.Options{Engine: f.eng, Store: st, Register: reg, Now: func() time.Time { return now }, Version: "test"},
		Sites:   []*analytics.Site{s},
		Fonts:   func() (report.Fonts, error) { return fnt, nil },
		Key:     func(string) (ed25519.PrivateKey, error) { return key, nil },
		SiteFile: func(string) (report.SiteFile, error) {
			b, err := os.ReadFile(f.siteFile)
			return report.SiteFile{Name: f.siteFile, Data: b}, err
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/sites/{site}/reports/", f.maker.Handler())
	mux.Handle("/api/v1/sites/{site}/register", register.Handler(register.Options{Sites: []*analytics.Site{s}, Register: reg,
		Who: func(r *http.Request) string { return r.Header.Get("X-Test-User") }, Now: func() time.Time { return now }}))
	mux.Handle("/api/v1/sites/{site}/register/", register.Handler(register.Options{Sites: []*analytics.Site{s}, Register: reg,
		Who: func(r *http.Request) string { return r.Header.Get("X-Test-User") }, Now: func() time.Time { return now }}))
	mux.Handle("/", api.Handler(api.Options{Sites: []*analytics.Site{s}, Engine: f.eng, Inputs: st, Readings: st, Now: func() time.Time { return now }}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// readings are November's readings of the three meters every 15 minutes: M1 takes 1 000 m³,
// M2 circulates 9 000 m³ with its meter swapped at swapAt, M3 discharges 300 m³ and misses the
// readings of gapFrom..gapTo. The totalizers are linear, so each month's volume is exact.
func readings() (rs []collector.Reading, oldFinal float64) {
	month := monthEnd.Sub(monthStart).Seconds()
	frac := func(t time.Time) float64 { return t.Sub(monthStart).Seconds() / month }
	oldFinal = 50000 + 9000*frac(swapAt)
	seq := map[string]uint64{}
	add := func(m string, t time.Time, v float64) {
		seq[m]++
		rs = append(rs, collector.Reading{Site: "t", Meter: m, Seq: seq[m], Time: t.UTC(), TimeSource: collector.TimeSourceDevice,
			Points: []collector.Point{{Name: collector.PointTotal, Value: v, Unit: "m3", Quality: collector.Good}}})
	}
	for t := monthStart; !t.After(monthEnd); t = t.Add(15 * time.Minute) {
		add("M1", t, 20000+1000*frac(t))
		if t.Before(swapAt) {
			add("M2", t, 50000+9000*frac(t))
		} else {
			add("M2", t, 9000*(frac(t)-frac(swapAt)))
		}
		if !(t.After(gapFrom) && t.Before(gapTo)) {
			add("M3", t, 30000+300*frac(t))
		}
	}
	return rs, oldFinal
}

func (f *fixture) post(t *testing.T, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-User", "auditor-li")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// load stores the readings and the ledger computed from them with the register's replacement
// records, as the platform's ledger does.
func (f *fixture) load(t *testing.T, rs []collector.Reading) {
	t.Helper()
	ctx := context.Background()
	if err := f.st.WriteReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	by := map[string][]collector.Reading{}
	for _, r := range rs {
		by[r.Meter] = append(by[r.Meter], r)
	}
	for _, spec := range ledger.SpecsOf(f.site) {
		bs, _ := ledger.ComputeWith(spec, by[spec.Meter], f.reg.Lookup)
		if err := f.st.WriteBuckets(ctx, bs); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) get(t *testing.T, path string) ([]byte, *http.Response) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, resp
}

// apiIndicators is the API's answer for November.
func (f *fixture) apiIndicators(t *testing.T) engine.Indicators {
	t.Helper()
	b, resp := f.get(t, "/api/v1/sites/t/indicators?from=2026-11-01&to=2026-12-01")
	if resp.StatusCode != 200 {
		t.Fatalf("indicators: %d %s", resp.StatusCode, b)
	}
	var ind engine.Indicators
	if err := json.Unmarshal(b, &ind); err != nil {
		t.Fatal(err)
	}
	return ind
}

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// rates lists the API's indicators by the pack's row keys.
func rates(ind engine.Indicators) map[string]engine.Indicator {
	r := ind.Rates
	return map[string]engine.Indicator{"R": r.ReuseRate, "R_vu": r.ReuseRateWithVu, "Rc": r.IndirectCoolingRate, "Rd": r.DirectCoolingRate,
		"Rb": r.CondensateRate, "Kw": r.WastewaterReuseRate, "Kl": r.LeakageRate, "Kd": r.DischargeRate, "Kco": r.ConsumptionRate,
		"Ru": r.NonConventionalRate, "ViQ": r.IntakePerProduct, "ViZ": r.IntakePer10kCNY}
}

// TestEvidencePack makes November's pack through the API and reads its numbers back from the
// outside: the PDF's text (pdftotext) and pages (pdftoppm), the XLSX with its formulas
// recalculated, and the CSV; each must equal the API's figures, which must be DOMAIN.md's
// example 1.
func TestEvidencePack(t *testing.T) {
	pdftotext := testenv.Require(t, "pdftotext")
	pdftoppm := testenv.Require(t, "pdftoppm")
	f := newFixture(t, "testdata/site.yaml")
	rs, oldFinal := readings()

	// The register, through its API: the swap of M2 and a new certificate for M3, whose site
	// file verification ran out on 2026-11-15.
	resp := f.post(t, "/api/v1/sites/t/register/replacements", fmt.Sprintf(`{"meter":"M2","time":"2026-11-20T12:07:00+08:00","old_final":%v,"new_initial":0}`, oldFinal))
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("add replacement: %d %s", resp.StatusCode, b)
	}
	f.load(t, rs)

	b, resp2 := f.get(t, "/api/v1/sites/t/reports/2026-11.zip")
	if resp2.StatusCode != 200 {
		t.Fatalf("report: %d %s", resp2.StatusCode, b)
	}
	files := unzip(t, b)
	var p report.Pack
	if err := json.Unmarshal(files[report.FilePack], &p); err != nil {
		t.Fatal(err)
	}
	var verif report.Check
	for _, c := range p.Checks {
		if c.Key == report.CheckVerification {
			verif = c
		}
	}
	if verif.Pass || !strings.Contains(verif.Detail, "M3: 2026-11-15..2026-11-30") {
		t.Errorf("before M3's new certificate the verification check = %+v, want a fail naming M3: 2026-11-15..2026-11-30", verif)
	}
	resp = f.post(t, "/api/v1/sites/t/register/certificates", `{"meter":"M3","date":"2026-11-15","number":"JD-2026-1115","result":"pass"}`)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("add certificate: %d %s", resp.StatusCode, b)
	}

	b, resp2 = f.get(t, "/api/v1/sites/t/reports/2026-11.zip")
	if resp2.StatusCode != 200 || resp2.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("report: %d %s %s", resp2.StatusCode, resp2.Header.Get("Content-Type"), b)
	}
	v, err := report.Verify(context.Background(), bytes.NewReader(b), int64(len(b)), report.VerifyOptions{PublicKey: f.key.Public().(ed25519.PublicKey)})
	if err != nil || !v.OK() {
		t.Fatalf("verify a fresh pack: %v %+v", err, v)
	}
	files = unzip(t, b)
	if err := json.Unmarshal(files[report.FilePack], &p); err != nil {
		t.Fatal(err)
	}
	api := f.apiIndicators(t)

	// Known answers (DOMAIN.md example 1): the swap lost no water.
	if !near(api.Volumes.Vi, 1000) || !near(api.Volumes.Vr, 9000) || api.ReuseRate == nil || !near(*api.ReuseRate, 0.9) {
		t.Fatalf("API: Vi %v, Vr %v, R %v; want 1000, 9000, 0.9", api.Volumes.Vi, api.Volumes.Vr, api.ReuseRate)
	}
	if !p.Pass() || !p.Gaps {
		t.Errorf("summary: pass %v, gaps %v; want every condition met and the gap on M3 said", p.Pass(), p.Gaps)
	}
	if len(p.Replacements) != 1 || p.Replacements[0].RecordedBy != "auditor-li" {
		t.Errorf("replacements in the pack: %+v", p.Replacements)
	}

	// PDF text.
	dir := t.TempDir()
	pdf := filepath.Join(dir, "report.pdf")
	os.WriteFile(pdf, files[report.FilePDF], 0o644)
	out, err := exec.Command(pdftotext, "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"重复利用率", "水计量器具一览表", "水平衡图", "近三年取水无超计划", "数据不完整", "符合",
		report.PctPtr(api.ReuseRate), report.Vol(api.Volumes.Vi), report.Vol(api.Volumes.Vr), report.PctPtr(api.Rates.DischargeRate.Value),
		// M3's next due date: certificate of 2026-11-15, DN50, replaced within 4 years (JJG 162).
		report.PctPtr(api.Rates.IndirectCoolingRate.Value), "2030-11-15"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext output lacks %q", want)
		}
	}

	// PDF pages: as many PNGs as pages, none blank.
	info, _ := exec.Command("pdfinfo", pdf).Output()
	m := regexp.MustCompile(`Pages:\s+(\d+)`).FindSubmatch(info)
	if m == nil {
		t.Fatalf("pdfinfo: %s", info)
	}
	pages, _ := strconv.Atoi(string(m[1]))
	if out, err := exec.Command(pdftoppm, "-r", "30", "-png", pdf, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	if len(pngs) != pages || pages < 8 {
		t.Errorf("pdftoppm rendered %d pages, pdfinfo says %d (want ≥ 8 sections)", len(pngs), pages)
	}
	for _, pg := range pngs {
		if ink := inkFraction(t, pg); ink < 0.002 {
			t.Errorf("%s is blank (%.4f of its pixels inked)", filepath.Base(pg), ink)
		}
	}

	// XLSX recalculated.
	x, err := excelize.OpenReader(bytes.NewReader(files[report.FileXLSX]))
	if err != nil {
		t.Fatal(err)
	}
	want := rates(api)
	for i, key := range p.IndicatorKeys() {
		row := report.DataRow(i)
		if k, _ := x.GetCellValue("indicators", fmt.Sprintf("A%d", row)); k != key {
			t.Fatalf("indicators!A%d = %q, want %q", row, k, key)
		}
		if fm, _ := x.GetCellFormula("indicators", fmt.Sprintf("J%d", row)); fm == "" {
			t.Errorf("indicators!J%d (%s) is not a formula", row, key)
		}
		got, err := x.CalcCellValue("indicators", fmt.Sprintf("J%d", row), excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatalf("recalculate %s: %v", key, err)
		}
		w := want[key].Value
		switch {
		case w == nil && got != "":
			t.Errorf("XLSX %s = %q, the API says undefined", key, got)
		case w != nil:
			g, err := strconv.ParseFloat(got, 64)
			if err != nil || !near(g, *w) {
				t.Errorf("XLSX %s recalculated = %q, API %v", key, got, *w)
			}
		}
	}
	got, _ := x.CalcCellValue("monthly", "E3", excelize.Options{RawCellValue: true})
	if g, _ := strconv.ParseFloat(got, 64); !near(g, *api.ReuseRate) {
		t.Errorf("XLSX monthly R recalculated = %q, API %v", got, *api.ReuseRate)
	}
	col := ""
	for c := 'B'; c <= 'D'; c++ {
		if v, _ := x.GetCellValue(report.SheetMonthlyMeters, string(c)+"1"); v == "M1" {
			col = string(c)
		}
	}
	got, err = x.CalcCellValue(report.SheetMonthlyMeters, col+"2", excelize.Options{RawCellValue: true})
	if g, _ := strconv.ParseFloat(got, 64); err != nil || math.Abs(g-api.Volumes.Vi) > 1e-6 {
		t.Errorf("XLSX sum of M1's hourly volumes = %q (%v), API Vi %v", got, err, api.Volumes.Vi)
	}

	// CSV: the indicator values at full precision.
	recs := csvSection(t, files[report.FileCSV], "indicators")
	for _, r := range recs[1:] {
		w := want[r[0]].Value
		if w == nil {
			if r[9] != "—" {
				t.Errorf("CSV %s = %q, the API says undefined", r[0], r[9])
			}
			continue
		}
		if g, err := strconv.ParseFloat(r[9], 64); err != nil || g != *w {
			t.Errorf("CSV %s = %q, API %v", r[0], r[9], *w)
		}
	}

	// English on request.
	b, resp2 = f.get(t, "/api/v1/sites/t/reports/2026-11.csv?lang=en")
	if resp2.StatusCode != 200 || !strings.Contains(string(b), "Reuse rate R") {
		t.Errorf("English CSV: %d, has 'Reuse rate R': %v", resp2.StatusCode, strings.Contains(string(b), "Reuse rate R"))
	}
}

// inkFraction is the fraction of a PNG's pixels that are not near white.
func inkFraction(t *testing.T, path string) float64 {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	bd := img.Bounds()
	ink := 0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r < 0xd000 || g < 0xd000 || b < 0xd000 {
				ink++
			}
		}
	}
	return float64(ink) / float64(bd.Dx()*bd.Dy())
}

var _ image.Image = (*image.RGBA)(nil)

// csvSection returns the head and rows of one section of the pack's CSV.
func csvSection(t *testing.T, b []byte, id string) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	in := false
	for _, rec := range all {
		switch {
		case len(rec) == 1 && strings.HasPrefix(rec[0], "# "):
			in = strings.HasPrefix(rec[0], "# "+id+":")
		case in && !(len(rec) == 1 && rec[0] == ""):
			out = append(out, rec)
		}
	}
	if len(out) == 0 {
		t.Fatalf("CSV has no section %s", id)
	}
	return out
}

var _ = url.Values{}
