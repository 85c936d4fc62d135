package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/aqualoop/aqualoop/alerting"
	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

// security is the platform's real guard and alerting, wired as cmd/aqualoop serve wires them:
// one state database (SQLite) holds the API tokens, sessions, audit log, alerts and silences.
type security struct {
	sites  []*analytics.Site
	store  *auth.Store
	alerts *alerting.Manager
	token  string // the secret of the editor's token named tokenName
	viewer string // the secret of a viewer's token, below the auditor role evidence packs need
}

const tokenName = "li.wei"

// demoRules adds the alert the test acts on to the built-in rules: the demo plant takes far
// more than 1 m³ a day, so the rule fires on the evaluator's first snapshot.
const demoRules = `
site: demo
rules:
  - name: intake_today
    kind: daily_intake
    threshold: 1
    for: 0s
    summary: "Intake today {{value}} m³ is over the test's limit of 1 m³"
    summary_zh: "今日取水量 {{value}} m³，超过测试限值 1 m³"
`

func newSecurity(t *testing.T, sites []*analytics.Site) *security {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "state.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := auth.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := store.Create(ctx, auth.NewToken{Name: tokenName, Role: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	_, viewer, err := store.Create(ctx, auth.NewToken{Name: "zhao.min", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := alerting.ParseRules("rules.yaml", []byte(demoRules), sites)
	if err != nil {
		t.Fatal(err)
	}
	// The platform's clock is the real one here, as in production: silences the browser makes
	// start now, not at the fixed time the figures are computed for.
	m, err := alerting.New(ctx, alerting.Options{Sites: sites, RulesFiles: []*alerting.RulesFile{rules}, DB: db,
		Who: func(r *http.Request) string {
			p, _ := auth.FromContext(r.Context())
			return p.Name
		},
		Allowed: func(r *http.Request, site string) bool { return auth.SiteAllowed(r.Context(), site) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &security{sites: sites, store: store, alerts: m, token: secret, viewer: viewer}
}

// guard mounts the alerting API on mux and puts package auth's middleware in front of it all,
// as cmd/aqualoop's serve and newGuard do.
func (s *security) guard(t *testing.T, mux *http.ServeMux) http.Handler {
	ah := s.alerts.Handler()
	for _, p := range []string{"/api/v1/alerts", "/api/v1/alerts/", "/api/v1/silences", "/api/v1/silences/", "/api/v1/rules"} {
		mux.Handle(p, ah)
	}
	parks := analytics.Parks(s.sites)
	g, err := auth.New(mux, auth.Options{Store: s.store, ParkSites: func(park string) []string {
		var ids []string
		for _, s := range parks[park] {
			ids = append(ids, s.ID)
		}
		return ids
	}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// alert returns the demo's alert of rule, waiting up to 30 s for it to be in state.
func (p *platform) alert(rule, state string) alerting.View {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Alerts []alerting.View }
		p.getJSON("/api/v1/alerts?site=demo", &list)
		for _, a := range list.Alerts {
			if a.Rule == rule && (state == "" || a.State == state) {
				return a
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s alert of rule %s after 30 s: %+v", state, rule, list.Alerts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// status GETs url, with cookie when not nil, and returns the answer's status.
func status(t *testing.T, url string, cookie *http.Cookie) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// submitDialog presses the open dialog's OK and waits for it to close; a refusal the dialog
// shows fails the test with the server's message.
func (b *browser) submitDialog(t *testing.T) {
	t.Helper()
	b.do(t, chromedp.Click(chromedp.CSS(`.dialog button:not([data-cancel])`)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		switch state := eval[string](t, b, `(d => !d ? "closed" : d.querySelector(".err").hidden ? "open" : d.querySelector(".err").textContent)(document.querySelector(".dialog"))`); state {
		case "closed":
			return
		case "open":
			if time.Now().After(deadline) {
				t.Fatal("the dialog is still open 15 s after OK")
			}
			time.Sleep(50 * time.Millisecond)
		default:
			t.Fatalf("the dialog says %q", state)
		}
	}
}

// evalAsync evaluates a JavaScript expression that gives a promise and decodes its value.
func evalAsync[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) cookies(t *testing.T, p *platform) map[string]*network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.url("/")}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		out[c.Name] = c
	}
	return out
}

// TestConsoleSignInAndAlerts runs the console behind the real auth guard and alerting API: a
// wrong token is refused, a link to /login with the token in its fragment signs in, an alert the
// real rules raised is acknowledged and silenced from the page with the CSRF header, a write
// without it is refused, and signing out ends the session.
func TestConsoleSignInAndAlerts(t *testing.T) {
	p := newPlatform(t, true)
	fired := p.alert("intake_today", alerting.StateFiring)
	if code := status(t, p.url("/api/v1/sites"), nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/sites without a credential: %d, want 401 from the guard", code)
	}

	b := newBrowser(t)
	b.do(t, chromedp.Navigate(p.url("/ui/")))
	setLang(t, b, "en")
	b.do(t, chromedp.Navigate(p.url("/?a=1#/alerts/demo")), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do(t, chromedp.SendKeys(chromedp.CSS("#login-token"), "wrong"), chromedp.Click(chromedp.CSS(`#login-form button`)),
		chromedp.WaitVisible(chromedp.CSS("#login-err")))
	if msg := b.text(t, "#login-err"); !strings.Contains(msg, "not valid") {
		t.Errorf("a wrong token shows %q", msg)
	}

	b.do(t, chromedp.Navigate(p.url("/login#token="+url.QueryEscape(p.sec.token))), ready("overview"))
	if loc := eval[string](t, b, `location.pathname + location.hash`); strings.Contains(loc, p.sec.token) || !strings.HasPrefix(loc, "/#/overview/") {
		t.Errorf("after /login the address is %q: the token must leave it", loc)
	}
	if hidden := eval[bool](t, b, `document.getElementById("login").hidden`); !hidden {
		t.Error("the token form is still shown after signing in by link")
	}
	ck := b.cookies(t, p)
	sess, csrf := ck[auth.SessionCookie], ck[auth.CSRFCookie]
	if sess == nil || !sess.HTTPOnly || sess.SameSite != network.CookieSameSiteStrict || csrf == nil || csrf.HTTPOnly || csrf.Value == "" {
		t.Fatalf("cookies after signing in: %+v, %+v; want an HttpOnly strict session and a readable CSRF cookie", sess, csrf)
	}
	if code := evalAsync[int](t, b, `fetch("/api/v1/sites/demo/indicators?period=day").then(r => r.status)`); code != http.StatusOK {
		t.Errorf("a data call with the session cookie: %d", code)
	}
	if shown := eval[bool](t, b, `!document.getElementById("logout").hidden`); !shown {
		t.Error("no sign-out button with a session")
	}

	b.open(t, p, "alerts")
	row := `[data-alert="` + fired.ID + `"]`
	if txt := b.text(t, row); !strings.Contains(txt, "intake_today") || fired.Summary == "" || !strings.Contains(txt, fired.Summary) {
		t.Fatalf("alert row %q, want the rule and its summary %q", txt, fired.Summary)
	}

	// Acknowledge: the real middleware lets a session's write through only with X-CSRF-Token.
	b.do(t, chromedp.Click(chromedp.CSS(`[data-ack="`+fired.ID+`"]`)), chromedp.WaitVisible(chromedp.CSS(`.dialog textarea`)),
		chromedp.SendKeys(chromedp.CSS(`.dialog textarea`), "valve closed"))
	b.submitDialog(t)
	b.do(t, chromedp.WaitVisible(chromedp.CSS(`[data-ack="`+fired.ID+`"][disabled]`)))
	acked := p.alert("intake_today", alerting.StateAcknowledged)
	if acked.ID != fired.ID || acked.AcknowledgedBy != tokenName || acked.AckComment != "valve closed" {
		t.Errorf("after the ack: id %s, by %q, comment %q; want %s by %s with the comment typed", acked.ID, acked.AcknowledgedBy, acked.AckComment, fired.ID, tokenName)
	}

	// Silence it for 4 h: the matchers the page sends must really mute the alert.
	b.do(t, chromedp.Click(chromedp.CSS(`[data-silence="`+fired.ID+`"]`)), chromedp.WaitVisible(chromedp.CSS(`.dialog select`)))
	eval[any](t, b, `document.querySelector(".dialog select").value = "4", null`)
	b.submitDialog(t)
	deadline := time.Now().Add(15 * time.Second)
	for txt := ""; !strings.Contains(txt, "silenced"); txt = b.text(t, row) {
		if time.Now().After(deadline) {
			t.Fatalf("alert row 15 s after the silence: %q, want it shown silenced", txt)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var sils struct{ Silences []alerting.Silence }
	p.getJSON("/api/v1/silences", &sils)
	if len(sils.Silences) != 1 {
		t.Fatalf("%d silences, want the one made from the page", len(sils.Silences))
	}
	s := sils.Silences[0]
	if s.Author != tokenName || s.EndsAt.Sub(s.StartsAt) != 4*time.Hour {
		t.Errorf("silence by %q for %v, want %s for the 4 h chosen", s.Author, s.EndsAt.Sub(s.StartsAt), tokenName)
	}
	named := map[string]string{}
	for _, m := range s.Matchers {
		named[m.Name] = m.Value
	}
	if named["alertname"] != "intake_today" || named["site"] != "demo" || named["severity"] != "" {
		t.Errorf("silence matchers %v: want alertname and site of the alert, and not its severity", s.Matchers)
	}
	if muted := p.alert("intake_today", ""); !muted.Silenced || len(muted.SilencedBy) != 1 || muted.SilencedBy[0] != s.ID {
		t.Errorf("alert after the silence: silenced %v by %v, want by %s", muted.Silenced, muted.SilencedBy, s.ID)
	}

	// A write from the page without the CSRF header is refused, however valid its body.
	refused := evalAsync[[]any](t, b, `fetch("/api/v1/silences", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({matchers: [{name: "site", op: "=", value: "demo"}], ends_at: new Date(Date.now() + 3600000).toISOString()})})
		.then(async r => [r.status, (await r.json()).error.code])`)
	if len(refused) != 2 || refused[0] != float64(http.StatusForbidden) || refused[1] != "csrf_failed" {
		t.Errorf("a write without X-CSRF-Token: %v, want 403 csrf_failed", refused)
	}
	if p.getJSON("/api/v1/silences", &sils); len(sils.Silences) != 1 {
		t.Errorf("%d silences after the refused write, want 1", len(sils.Silences))
	}
	// The audit log holds the page's writes as the session of the token's owner, the refused one too.
	entries, err := p.sec.store.Audit(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Who == tokenName && e.Via == "session" {
			seen[fmt.Sprintf("%s %s %d", e.Method, e.Path, e.Status)] = true
		}
	}
	for _, w := range []string{"POST /api/v1/alerts/" + fired.ID + "/ack 200", "POST /api/v1/silences 201", "POST /api/v1/silences 403"} {
		if !seen[w] {
			t.Errorf("the audit log lacks %q from the session: %v", w, seen)
		}
	}
	if errs := b.takeErrors(); len(errs) > 0 {
		t.Errorf("browser errors: %s", strings.Join(errs, "; "))
	}
	if *updateScreenshots {
		setLang(t, b, "zh-CN")
		b.open(t, p, "alerts")
		shot(t, b, "alerts")
	}

	// The evidence-pack page's link downloads the pack with the session cookie alone.
	testReportsSession(t, p, b)

	// Signing out ends the session on the server and asks for a token again.
	b.do(t, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	if ck := b.cookies(t, p); ck[auth.SessionCookie] != nil || ck[auth.CSRFCookie] != nil {
		t.Errorf("cookies left after signing out: %v", ck)
	}
	if code := evalAsync[int](t, b, `fetch("/api/v1/sites").then(r => r.status)`); code != http.StatusUnauthorized {
		t.Errorf("a data call after signing out: %d, want 401", code)
	}
	if code := status(t, p.url("/api/v1/sites"), &http.Cookie{Name: auth.SessionCookie, Value: sess.Value}); code != http.StatusUnauthorized {
		t.Errorf("the old session cookie after signing out: %d, want 401", code)
	}

	// A viewer signs in: the page shows the guard's refusal instead of a download.
	testReportsDenied(t, p, b)
}
