package auth_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

type fixture struct {
	url   string
	store *auth.Store
	now   time.Time
}

// echo is the guarded handler: it answers who called and whether sites a and b are in scope.
func echo(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	body, _ := io.ReadAll(r.Body)
	json.NewEncoder(w).Encode(map[string]any{"ok": ok, "name": p.Name, "role": p.Role.String(), "a": auth.SiteAllowed(r.Context(), "a"), "b": auth.SiteAllowed(r.Context(), "b"), "body": string(body)})
}

func newFixture(t testing.TB, cfg auth.Config) *fixture {
	t.Helper()
	// As cmd/aqualoop's openState opens the state database.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "state.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	f.store, err = auth.Open(context.Background(), db, clock)
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.New(http.HandlerFunc(echo), auth.Options{Config: cfg, Store: f.store, Now: clock,
		ParkSites: func(p string) []string {
			if p == "east" {
				return []string{"a", "c"}
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fixture) token(t testing.TB, nt auth.NewToken) string {
	t.Helper()
	_, secret, err := f.store.Create(context.Background(), nt)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

type req struct {
	method, path, token, body, ctype string
	header                           map[string]string
}

func call(t *testing.T, c *http.Client, base string, q req) (int, http.Header, []byte) {
	t.Helper()
	r, err := http.NewRequest(q.method, base+q.path, strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	if q.ctype == "" && q.body != "" {
		q.ctype = "application/json"
	}
	if q.ctype != "" {
		r.Header.Set("Content-Type", q.ctype)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func errCode(b []byte) string {
	var e struct {
		Error struct{ Code string }
	}
	json.Unmarshal(b, &e)
	return e.Error.Code
}

func TestPolicyTable(t *testing.T) {
	f := newFixture(t, auth.Config{})
	viewer := f.token(t, auth.NewToken{Name: "op", Role: "viewer"})
	auditor := f.token(t, auth.NewToken{Name: "aud", Role: "auditor"})
	editor := f.token(t, auth.NewToken{Name: "ed", Role: "editor"})
	admin := f.token(t, auth.NewToken{Name: "root", Role: "admin"})
	tests := []struct {
		name   string
		q      req
		status int
		code   string
	}{
		{"console is public", req{method: "GET", path: "/"}, 200, ""},
		{"login page is public", req{method: "GET", path: "/login"}, 200, ""},
		{"health is public", req{method: "GET", path: "/readyz"}, 200, ""},
		{"data needs a credential", req{method: "GET", path: "/api/v1/sites"}, 401, "unauthenticated"},
		{"a wrong token is refused", req{method: "GET", path: "/api/v1/sites", token: "aql_nope-nope-nope-nope-nope-nope"}, 401, "unauthenticated"},
		{"basic auth is not a token", req{method: "GET", path: "/api/v1/sites", header: map[string]string{"Authorization": "Basic YTpi"}}, 401, "unauthenticated"},
		{"viewer reads", req{method: "GET", path: "/api/v1/sites/a/indicators", token: viewer}, 200, ""},
		{"viewer reads a route added later", req{method: "GET", path: "/api/v1/alerts", token: viewer}, 200, ""},
		{"viewer cannot write", req{method: "PUT", path: "/api/v1/sites/a/inputs", token: viewer, body: "{}"}, 403, "forbidden"},
		{"viewer cannot read reports", req{method: "GET", path: "/api/v1/sites/a/reports/2026-03.pdf", token: viewer}, 403, "forbidden"},
		{"auditor reads reports", req{method: "GET", path: "/api/v1/sites/a/reports/2026-03.pdf", token: auditor}, 200, ""},
		{"auditor makes reports", req{method: "POST", path: "/api/v1/sites/a/reports/", token: auditor, body: "{}"}, 200, ""},
		{"auditor cannot write inputs", req{method: "PUT", path: "/api/v1/sites/a/inputs", token: auditor, body: "{}"}, 403, "forbidden"},
		{"editor writes inputs", req{method: "PUT", path: "/api/v1/sites/a/inputs", token: editor, body: "{}"}, 200, ""},
		{"editor acknowledges alerts", req{method: "POST", path: "/api/v1/alerts/x/ack", token: editor, body: "{}"}, 200, ""},
		{"editor cannot list tokens", req{method: "GET", path: "/api/v1/tokens", token: editor}, 403, "forbidden"},
		{"editor cannot read the audit log", req{method: "GET", path: "/api/v1/audit", token: editor}, 403, "forbidden"},
		{"an unknown write outside the API needs admin", req{method: "POST", path: "/debug/reset", token: editor, body: "{}"}, 403, "forbidden"},
		{"admin lists tokens", req{method: "GET", path: "/api/v1/tokens", token: admin}, 200, ""},
		{"text/plain write is refused", req{method: "POST", path: "/api/v1/sites/a/inputs", token: editor, body: `{"steam":1}`, ctype: "text/plain"}, 415, "unsupported_media_type"},
		{"form write is refused", req{method: "POST", path: "/api/v1/sites/a/inputs", token: editor, body: `a=1`, ctype: "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"OPTIONS is no way around", req{method: "OPTIONS", path: "/api/v1/sites", token: viewer}, 403, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, b := call(t, nil, f.url, tt.q)
			if code != tt.status || errCode(b) != tt.code {
				t.Fatalf("%d %s, want %d %q", code, b, tt.status, tt.code)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("Referrer-Policy") == "" {
				t.Errorf("secure headers missing: %v", h)
			}
			if h.Get("Strict-Transport-Security") != "" {
				t.Error("HSTS over plain HTTP")
			}
		})
	}
	// The table decides; the handler never sees a refused request.
	if got := auth.Required(auth.Policy(), "PATCH", "/api/v1/silences/1"); got != auth.Editor {
		t.Errorf("PATCH silences needs %v, want editor", got)
	}
	if got := auth.Required(auth.Policy(), "DELETE", "/api/v1/tokens/abc"); got != auth.Admin {
		t.Errorf("DELETE a token needs %v, want admin", got)
	}
}

func TestSiteAndParkScope(t *testing.T) {
	f := newFixture(t, auth.Config{})
	siteA := f.token(t, auth.NewToken{Name: "op-a", Role: "viewer", Sites: []string{"a"}})
	east := f.token(t, auth.NewToken{Name: "park-east", Role: "viewer", Park: "east"})
	editorA := f.token(t, auth.NewToken{Name: "ed-a", Role: "editor", Sites: []string{"a"}})
	tests := []struct {
		name   string
		q      req
		status int
	}{
		{"own site", req{method: "GET", path: "/api/v1/sites/a/balance", token: siteA}, 200},
		{"other site by path", req{method: "GET", path: "/api/v1/sites/b/balance", token: siteA}, 403},
		{"other site by query", req{method: "GET", path: "/api/v1/alerts?site=b", token: siteA}, 403},
		{"other site in a query list", req{method: "GET", path: "/api/v1/alerts?site=a,b", token: siteA}, 403},
		{"dot segments", req{method: "GET", path: "/api/v1/sites/a/../b/balance", token: siteA}, 400},
		{"encoded slash", req{method: "GET", path: "/api/v1/sites/a%2F..%2Fb/balance", token: siteA}, 400},
		{"doubled slash", req{method: "GET", path: "/api/v1/sites//b/balance", token: siteA}, 400},
		{"a park of a site-scoped token", req{method: "GET", path: "/api/v1/parks/east/indicators", token: siteA}, 403},
		{"park member site", req{method: "GET", path: "/api/v1/sites/c/meters", token: east}, 200},
		{"site outside the park", req{method: "GET", path: "/api/v1/sites/b/meters", token: east}, 403},
		{"own park", req{method: "GET", path: "/api/v1/parks/east/snapshot", token: east}, 200},
		{"other park", req{method: "GET", path: "/api/v1/parks/west/snapshot", token: east}, 403},
		{"scoped editor writes its site", req{method: "PUT", path: "/api/v1/sites/a/inputs", token: editorA, body: "{}"}, 200},
		{"scoped editor cannot write another", req{method: "PUT", path: "/api/v1/sites/b/inputs", token: editorA, body: "{}"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, b := call(t, nil, f.url, tt.q)
			if code != tt.status {
				t.Fatalf("%d %s, want %d", code, b, tt.status)
			}
			if code == 403 && errCode(b) != "forbidden_site" {
				t.Errorf("code %q, want forbidden_site", errCode(b))
			}
		})
	}
	// List handlers filter with SiteAllowed.
	_, _, b := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites", token: east})
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["a"] != true || got["b"] != false {
		t.Errorf("park token sees a=%v b=%v, want true false", got["a"], got["b"])
	}
}

func TestTokenLifecycle(t *testing.T) {
	f := newFixture(t, auth.Config{})
	ctx := context.Background()
	tok, secret, err := f.store.Create(ctx, auth.NewToken{Name: "ci", Role: "editor", Expires: f.now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, auth.TokenPrefix) || len(secret) < 40 {
		t.Fatalf("secret %q is not a long prefixed token", secret)
	}
	if code, _, b := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites", token: secret}); code != 200 {
		t.Fatalf("fresh token: %d %s", code, b)
	}
	// Only the hash is stored, and the listing never shows a secret.
	ts, err := f.store.List(ctx)
	if err != nil || len(ts) != 1 || ts[0].ID != tok.ID || ts[0].LastUsed == nil {
		t.Fatalf("list %+v %v", ts, err)
	}
	admin := f.token(t, auth.NewToken{Name: "root", Role: "admin"})
	_, _, b := call(t, nil, f.url, req{method: "GET", path: "/api/v1/tokens", token: admin})
	if strings.Contains(string(b), secret) || strings.Contains(string(b), auth.Hash(secret)) {
		t.Fatalf("token listing shows the secret or its hash: %s", b)
	}
	// Expiry.
	f.now = f.now.Add(25 * time.Hour)
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites", token: secret}); code != 401 {
		t.Errorf("expired token: %d, want 401", code)
	}
	f.now = f.now.Add(-25 * time.Hour)
	// Revocation, through the API.
	if code, _, b := call(t, nil, f.url, req{method: "DELETE", path: "/api/v1/tokens/" + tok.ID, token: admin}); code != 204 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites", token: secret}); code != 401 {
		t.Errorf("revoked token: %d, want 401", code)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "DELETE", path: "/api/v1/tokens/nope", token: admin}); code != 404 {
		t.Errorf("revoke unknown: %d, want 404", code)
	}
	// Creation through the API shows the secret once.
	code, _, b := call(t, nil, f.url, req{method: "POST", path: "/api/v1/tokens", token: admin, body: `{"name": "grafana", "role": "viewer", "sites": ["a"], "expires_in": "90d"}`})
	var created struct {
		Secret string
		Token  auth.Token
	}
	if code != 201 || json.Unmarshal(b, &created) != nil || created.Token.Expires == nil || !created.Token.Expires.Equal(f.now.Add(90*24*time.Hour)) {
		t.Fatalf("create: %d %s", code, b)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites/b/meters", token: created.Secret}); code != 403 {
		t.Errorf("token made by the API is not scoped: %d", code)
	}
	code, _, b = call(t, nil, f.url, req{method: "POST", path: "/api/v1/tokens", token: admin, body: `{"name": "x", "role": "god"}`})
	if code != 400 || !strings.Contains(string(b), "role") {
		t.Errorf("bad role: %d %s", code, b)
	}
}

func TestSessionCookieAndCSRF(t *testing.T) {
	f := newFixture(t, auth.Config{})
	editor := f.token(t, auth.NewToken{Name: "ed", Role: "editor"})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}

	if code, _, _ := call(t, browser, f.url, req{method: "POST", path: "/api/v1/session", body: `{"token": "aql_wrong-wrong-wrong-wrong-wrong"}`}); code != 401 {
		t.Fatalf("login with a wrong token: %d", code)
	}
	if code, _, _ := call(t, browser, f.url, req{method: "POST", path: "/api/v1/session", body: `{"token": "` + editor + `"}`, ctype: "text/plain"}); code != 415 {
		t.Fatalf("login as text/plain (login CSRF): %d, want 415", code)
	}
	code, h, b := call(t, browser, f.url, req{method: "POST", path: "/api/v1/session", body: `{"token": "` + editor + `"}`})
	if code != 200 {
		t.Fatalf("login: %d %s", code, b)
	}
	var sess, csrf *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		switch c.Name {
		case auth.SessionCookie:
			sess = c
		case auth.CSRFCookie:
			csrf = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Value == editor {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not the token itself", sess)
	}
	if csrf == nil || csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Value == "" {
		t.Fatalf("csrf cookie %+v: want readable, SameSite=Strict", csrf)
	}
	if code, _, b := call(t, browser, f.url, req{method: "GET", path: "/api/v1/sites"}); code != 200 {
		t.Fatalf("read with the cookie: %d %s", code, b)
	}
	// A write riding on the cookie alone is what a cross-site form would send.
	if code, _, b := call(t, browser, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", body: "{}"}); code != 403 || errCode(b) != "csrf_failed" {
		t.Errorf("cookie write without X-CSRF-Token: %d %s", code, b)
	}
	if code, _, _ := call(t, browser, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", body: "{}", header: map[string]string{auth.CSRFHeader: "guess"}}); code != 403 {
		t.Errorf("cookie write with a wrong X-CSRF-Token: %d", code)
	}
	if code, _, b := call(t, browser, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", body: "{}", header: map[string]string{auth.CSRFHeader: csrf.Value}}); code != 200 {
		t.Errorf("cookie write with X-CSRF-Token: %d %s", code, b)
	}
	if code, _, _ := call(t, browser, f.url, req{method: "POST", path: "/api/v1/sites/a/inputs", body: "{}", ctype: "text/plain", header: map[string]string{auth.CSRFHeader: csrf.Value}}); code != 415 {
		t.Errorf("text/plain write: %d, want 415", code)
	}
	// Bearer tokens need no CSRF header.
	if code, _, _ := call(t, nil, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", body: "{}", token: editor}); code != 200 {
		t.Errorf("bearer write: %d", code)
	}
	if code, _, _ := call(t, browser, f.url, req{method: "DELETE", path: "/api/v1/session"}); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := call(t, browser, f.url, req{method: "GET", path: "/api/v1/sites"}); code != 401 {
		t.Errorf("read after logout: %d, want 401", code)
	}
	// The old cookie value is dead on the server, not only deleted in the browser.
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites", header: map[string]string{"Cookie": auth.SessionCookie + "=" + sess.Value}}); code != 401 {
		t.Errorf("replayed session cookie after logout: %d, want 401", code)
	}
}

func TestAuditLogRecordsEveryWrite(t *testing.T) {
	f := newFixture(t, auth.Config{})
	editor := f.token(t, auth.NewToken{Name: "ed", Role: "editor"})
	admin := f.token(t, auth.NewToken{Name: "root", Role: "admin"})
	body := `{"from": "2026-03", "to": "2026-04", "steam": 1}`
	call(t, nil, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", token: editor, body: body})
	call(t, nil, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", body: body})                                     // no credential
	call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites/a/indicators", token: editor})                              // a read: not recorded
	call(t, nil, f.url, req{method: "POST", path: "/api/v1/sites/a/inputs", token: editor, ctype: "text/plain", body: "x"}) // refused
	code, _, b := call(t, nil, f.url, req{method: "GET", path: "/api/v1/audit", token: admin})
	var es []auth.AuditEntry
	if code != 200 || json.Unmarshal(b, &es) != nil {
		t.Fatalf("audit: %d %s", code, b)
	}
	if len(es) != 3 {
		t.Fatalf("%d entries, want 3 (two PUTs and the refused POST): %+v", len(es), es)
	}
	sum := sha256.Sum256([]byte(body))
	sumX := sha256.Sum256([]byte("x"))
	want := []struct {
		who, role, method string
		status            int
		digest            string
	}{
		{"ed", "editor", "POST", 415, hex.EncodeToString(sumX[:])},
		{"", "", "PUT", 401, hex.EncodeToString(sum[:])},
		{"ed", "editor", "PUT", 200, hex.EncodeToString(sum[:])},
	}
	for i, w := range want {
		e := es[i]
		if e.Who != w.who || e.Role != w.role || e.Method != w.method || e.Status != w.status || e.Path != "/api/v1/sites/a/inputs" || e.BodySHA256 != w.digest || e.Remote == "" || !e.Time.Equal(f.now) {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
}

func TestProxyHeaderOnlyFromTrustedProxies(t *testing.T) {
	trusted := auth.Config{Auth: auth.ModeProxy, Proxy: auth.ProxyConfig{TrustedProxies: []string{"127.0.0.0/8"}, SitesHeader: "X-Forwarded-Sites"}}
	f := newFixture(t, trusted)
	code, _, b := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites/a/meters", header: map[string]string{"X-Forwarded-User": "li.wei", "X-Forwarded-Sites": "a"}})
	var got map[string]any
	if code != 200 || json.Unmarshal(b, &got) != nil || got["name"] != "li.wei" || got["role"] != "viewer" || got["b"] != false {
		t.Fatalf("proxy user: %d %s", code, b)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "PUT", path: "/api/v1/sites/a/inputs", body: "{}", header: map[string]string{"X-Forwarded-User": "li.wei", "X-Forwarded-Role": "editor"}}); code != 200 {
		t.Errorf("proxy editor write: %d", code)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites/b/meters", header: map[string]string{"X-Forwarded-User": "li.wei", "X-Forwarded-Sites": "a"}}); code != 403 {
		t.Errorf("proxy user outside its sites: %d", code)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/sites", header: map[string]string{"X-Forwarded-User": "x", "X-Forwarded-Role": "root"}}); code != 401 {
		t.Errorf("unknown proxy role: %d, want 401", code)
	}

	// The same header from an address that is not the proxy is ignored.
	untrusted := newFixture(t, auth.Config{Auth: auth.ModeProxy, Proxy: auth.ProxyConfig{TrustedProxies: []string{"10.9.8.7"}}})
	if code, _, _ := call(t, nil, untrusted.url, req{method: "GET", path: "/api/v1/sites", header: map[string]string{"X-Forwarded-User": "mallory", "X-Forwarded-Role": "admin"}}); code != 401 {
		t.Errorf("header from an untrusted address: %d, want 401", code)
	}
	// And in token mode it means nothing.
	tokens := newFixture(t, auth.Config{Proxy: auth.ProxyConfig{TrustedProxies: []string{"127.0.0.0/8"}}})
	if code, _, _ := call(t, nil, tokens.url, req{method: "GET", path: "/api/v1/sites", header: map[string]string{"X-Forwarded-User": "mallory"}}); code != 401 {
		t.Errorf("proxy header in token mode: %d, want 401", code)
	}
}

func TestOpenModeIsAdminButStillJSONOnly(t *testing.T) {
	f := newFixture(t, auth.Config{Auth: auth.ModeOpen})
	if code, _, _ := call(t, nil, f.url, req{method: "GET", path: "/api/v1/tokens"}); code != 200 {
		t.Errorf("open mode admin route: %d", code)
	}
	if code, _, _ := call(t, nil, f.url, req{method: "POST", path: "/api/v1/sites/a/inputs", body: "x", ctype: "text/plain"}); code != 415 {
		t.Errorf("open mode text/plain write: %d, want 415", code)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, ":8080": false, "0.0.0.0:8080": false, "10.0.0.5:8080": false, "[::]:80": false} {
		if got := auth.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestAnonymousWritesCannotFillTheAuditLog: refused writes without a credential are recorded up
// to a rate, then only counted; writes by known callers are always recorded.
func TestAnonymousWritesCannotFillTheAuditLog(t *testing.T) {
	f := newFixture(t, auth.Config{})
	editor := f.token(t, auth.NewToken{Name: "ed", Role: "editor"})
	for range 150 {
		call(t, nil, f.url, req{method: "POST", path: "/api/v1/sites/a/inputs", body: "{}"})
	}
	call(t, nil, f.url, req{method: "POST", path: "/api/v1/sites/a/inputs", body: "{}", token: editor})
	es, err := f.store.Audit(context.Background(), 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 101 || es[0].Who != "ed" {
		t.Errorf("%d entries (newest by %q), want the first 100 anonymous ones and the editor's", len(es), es[0].Who)
	}
	// The clock moves on: recording resumes.
	f.now = f.now.Add(10 * time.Second)
	call(t, nil, f.url, req{method: "POST", path: "/api/v1/sites/a/inputs", body: "{}"})
	if es, _ := f.store.Audit(context.Background(), 1000, 0); len(es) != 102 {
		t.Errorf("%d entries after 10 s, want 102", len(es))
	}
}
