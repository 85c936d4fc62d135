package console_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/report"
)

// reports is the real evidence-pack maker over the platform's store and engine, built as
// cmd/aqualoop's newMaker builds it (fonts read on first use, a key created on first use), for
// the route serve mounts it on.
func (p *platform) reports(sites []*analytics.Site, eng *engine.Engine, now func() time.Time) http.Handler {
	keys := p.t.TempDir()
	return report.NewMaker(report.MakerOptions{
		Options: report.Options{Engine: eng, Store: p.st, Now: now, Version: "test"},
		Sites:   sites,
		Fonts:   func() (report.Fonts, error) { return report.LoadFonts("", "") },
		Key: func(site string) (ed25519.PrivateKey, error) {
			k, _, err := report.LoadKey(filepath.Join(keys, site+".key"), true)
			return k, err
		},
		SiteFile: func(string) (report.SiteFile, error) {
			const f = "../../configs/demo/site.yaml"
			b, err := os.ReadFile(f)
			return report.SiteFile{Name: f, Data: b}, err
		},
	}).Handler()
}

// requireFonts skips a test that makes a PDF where the fonts are not installed, and fails it
// when CI is set.
func requireFonts(t *testing.T) {
	t.Helper()
	if _, err := report.LoadFonts("", ""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skip(err)
	}
}

type packLink struct {
	Format   string `json:"format"`
	Href     string `json:"href"`
	Download string `json:"download"`
}

func packLinks(t *testing.T, b *browser) []packLink {
	t.Helper()
	return eval[[]packLink](t, b, `[...document.querySelectorAll("a.pack")].map(a => ({format: a.dataset.format, href: a.href, download: a.getAttribute("download") || ""}))`)
}

// waitPackMessage waits (up to 60 s: a pack is made on a loaded box) for the page's message
// to leave "making…" and returns its class and text.
func waitPackMessage(t *testing.T, b *browser) (class, text string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := eval[[]string](t, b, `(m => [m.hidden ? "" : m.className, m.textContent])(document.getElementById("pack-msg"))`)
		if m[0] != "" && m[0] != "muted" {
			return m[0], m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pack message is still %q after 60 s", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testReportsPage checks the evidence-pack page of an open platform: the links of the current
// month in the page's language, a year range, and the server's refusal of a future period shown
// on the page instead of a download.
func testReportsPage(t *testing.T, p *platform, b *browser) {
	setLang(t, b, "en")
	b.open(t, p, "reports")
	month := testNow.Format("2006-01") // the site's month: testNow is in its zone
	links := packLinks(t, b)
	if len(links) != 4 {
		t.Fatalf("%d download links, want PDF, XLSX, CSV and ZIP", len(links))
	}
	for i, f := range []string{"pdf", "xlsx", "csv", "zip"} {
		want := p.url("/api/v1/sites/demo/reports/" + month + "." + f + "?lang=en")
		if links[i].Format != f || links[i].Href != want || links[i].Download != "demo-"+month+"."+f {
			t.Errorf("link %d: %+v, want %s saved as demo-%s.%s", i, links[i], want, month, f)
		}
	}

	// Several years, in Chinese: the period is from..to and the language zh.
	b.do(t, chromedp.Click(chromedp.CSS("#lang")), ready("reports"))
	b.do(t, chromedp.Click(chromedp.CSS(`[data-kind="years"]`)), ready("reports"))
	eval[any](t, b, `(f => { f.from.value = "2025"; f.to.value = "2026"; f.from.dispatchEvent(new Event("input", {bubbles: true})); })(document.getElementById("pack-form")), null`)
	if l := packLinks(t, b)[3]; l.Href != p.url("/api/v1/sites/demo/reports/2025..2026.zip?lang=zh") || l.Download != "demo-2025-2026.zip" {
		t.Errorf("years 2025–2026 in Chinese: zip link %+v", l)
	}
	// A range the wrong way round makes no link at all.
	eval[any](t, b, `(f => { f.from.value = "2027"; f.from.dispatchEvent(new Event("input", {bubbles: true})); })(document.getElementById("pack-form")), null`)
	if n := eval[int](t, b, `document.querySelectorAll("a.pack[href]").length`); n != 0 {
		t.Errorf("years 2027..2026: %d links, want none", n)
	}

	// Next year has not begun: the page shows the server's answer rather than a broken file.
	b.do(t, chromedp.Click(chromedp.CSS("#lang")), ready("reports"))
	b.do(t, chromedp.Click(chromedp.CSS(`[data-kind="year"]`)), ready("reports"))
	future := testNow.AddDate(1, 0, 0).Format("2006")
	eval[any](t, b, `(f => { f.year.value = "`+future+`"; f.year.dispatchEvent(new Event("input", {bubbles: true})); })(document.getElementById("pack-form")), null`)
	href := packLinks(t, b)[0].Href
	res, err := http.Get(href)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET %s: %s, want 400 for a future period", href, res.Status)
	}
	b.do(t, chromedp.Click(chromedp.CSS(`a.pack[data-format="pdf"]`)))
	class, text := waitPackMessage(t, b)
	if class != "err" || !strings.Contains(text, "Could not make the pack") || !strings.Contains(text, future) || !strings.Contains(text, "has not begun") {
		t.Errorf("after asking for %s: message %q (%s), want the server's refusal of a future period", future, text, class)
	}
	if errs := b.takeErrors(); len(errs) > 0 {
		t.Errorf("browser errors: %s", strings.Join(errs, "; "))
	}
	// The page opens on the month again for the tests after this one.
	b.do(t, chromedp.Click(chromedp.CSS(`[data-kind="month"]`)), ready("reports"))
}

// testReportsSession fetches the page's PDF link of the current month from inside the page with
// the browser session's cookie, as a click does.
func testReportsSession(t *testing.T, p *platform, b *browser) {
	requireFonts(t)
	setLang(t, b, "en")
	b.open(t, p, "reports")
	href := packLinks(t, b)[0].Href
	if want := p.url("/api/v1/sites/demo/reports/" + testNow.Format("2006-01") + ".pdf?lang=en"); href != want {
		t.Fatalf("PDF link %s, want %s", href, want)
	}
	type answer struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Disp   string `json:"disp"`
		Head   string `json:"head"`
		Size   int    `json:"size"`
	}
	t0 := time.Now()
	a := evalAsync[answer](t, b, `fetch(document.querySelector('a.pack[data-format="pdf"]').href, {credentials: "same-origin"})
		.then(async r => { const buf = new Uint8Array(await r.arrayBuffer());
			return {status: r.status, type: r.headers.get("Content-Type") || "", disp: r.headers.get("Content-Disposition") || "", head: String.fromCharCode(...buf.slice(0, 5)), size: buf.length}; })`)
	t.Logf("the month's PDF: %d bytes in %v", a.Size, time.Since(t0))
	if a.Status != http.StatusOK || a.Type != "application/pdf" || a.Head != "%PDF-" || a.Size < 10000 {
		t.Errorf("GET %s with the session: %+v, want 200 application/pdf starting %%PDF-", href, a)
	}
	if want := `filename="demo-` + testNow.Format("2006-01") + `.pdf"`; !strings.Contains(a.Disp, want) {
		t.Errorf("Content-Disposition %q, want %s as the link's download name", a.Disp, want)
	}

	// A click saves the file under its name, fetched with the same session.
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	name := "demo-" + testNow.Format("2006-01") + ".csv"
	b.do(t, chromedp.Click(chromedp.CSS(`a.pack[data-format="csv"]`)))
	if class, text := waitPackMessage(t, b); class != "ok" || !strings.Contains(text, "Downloaded "+name) {
		t.Errorf("after a click on CSV: message %q (%s), want it downloaded as %s", text, class, name)
	}
	var saved []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if saved, err = os.ReadFile(filepath.Join(dir, name)); err == nil && len(saved) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not saved in 20 s: %v", name, err)
		}
	}
	if !strings.HasPrefix(string(saved), "\uFEFF# ") || !strings.Contains(string(saved), "demo") {
		t.Errorf("the saved CSV starts %q, want the pack's CSV (byte order mark, # section)", string(saved[:min(len(saved), 40)]))
	}
	if errs := b.takeErrors(); len(errs) > 0 {
		t.Errorf("browser errors: %s", strings.Join(errs, "; "))
	}
}

// testReportsDenied signs in with a viewer's token: a click on a pack shows the guard's 403
// message on the page.
func testReportsDenied(t *testing.T, p *platform, b *browser) {
	b.do(t, chromedp.Navigate(p.url("/login#token="+p.sec.viewer)), ready("overview"))
	b.open(t, p, "reports")
	b.do(t, chromedp.Click(chromedp.CSS(`a.pack[data-format="zip"]`)))
	class, text := waitPackMessage(t, b)
	if class != "err" || !strings.Contains(text, "Not allowed") || !strings.Contains(text, "needs the auditor role") {
		t.Errorf("a viewer's click: message %q (%s), want the refusal for want of the auditor role", text, class)
	}
	if errs := b.takeErrors(); len(errs) > 0 {
		t.Errorf("browser errors: %s", strings.Join(errs, "; "))
	}
}
