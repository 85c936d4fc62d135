package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// contract serves the parts of the platform that other packages build (the auth middleware with
// its session endpoint, and the alerting API), exactly as their documented contract says, and
// records and checks every request the console makes of them. It stands in for them only until
// they are merged: the rest of the platform under it is real.
type contract struct {
	t  *testing.T
	mu sync.Mutex
	// acks and silences are the bodies of the writes the console sent, after the checks.
	acks     []map[string]any
	silences []map[string]any
	acked    bool
}

const (
	testToken = "s3cret-token"
	session   = "sess-1"
	csrf      = "csrf-1"
)

func (c *contract) wrap(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/session", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Token string `json:"token"`
		}
		if !c.checkWrite(w, r, &body, false) {
			return
		}
		if body.Token != testToken {
			jsonError(w, http.StatusUnauthorized, "bad token")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "aqualoop_session", Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.SetCookie(w, &http.Cookie{Name: "aqualoop_csrf", Value: csrf, Path: "/", SameSite: http.SameSiteStrictMode})
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		acked := c.acked
		c.mu.Unlock()
		by := ""
		if acked {
			by = "operator"
		}
		alerts := []map[string]any{{
			"id": "a1", "rule": "leak_balance", "name": "Balance residual", "site": "demo", "severity": "warning", "state": "firing",
			"summary": "Leakage 11.8 % of intake today", "summary_zh": "今日漏失率 11.8 %", "value": 0.118,
			"starts_at": "2026-03-03T08:00:00+08:00", "acknowledged_by": by, "assignee": "", "silenced": false,
		}}
		if r.URL.Query().Get("site") != "demo" {
			alerts = []map[string]any{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"alerts": alerts})
	})
	mux.HandleFunc("POST /api/v1/alerts/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !c.checkWrite(w, r, &body, true) {
			return
		}
		if r.PathValue("id") != "a1" {
			c.t.Errorf("ack of alert %q, want a1", r.PathValue("id"))
		}
		if _, ok := body["comment"].(string); !ok || len(body) != 1 {
			c.t.Errorf("ack body %v, want {\"comment\": string}", body)
		}
		c.mu.Lock()
		c.acks, c.acked = append(c.acks, body), true
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	})
	mux.HandleFunc("POST /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Matchers []struct {
				Name    string `json:"name"`
				Value   string `json:"value"`
				IsRegex *bool  `json:"is_regex"`
				IsEqual *bool  `json:"is_equal"`
			} `json:"matchers"`
			StartsAt time.Time `json:"starts_at"`
			EndsAt   time.Time `json:"ends_at"`
			Comment  *string   `json:"comment"`
		}
		if !c.checkWrite(w, r, &body, true) {
			return
		}
		got := map[string]string{}
		for _, m := range body.Matchers {
			if m.IsRegex == nil || *m.IsRegex || m.IsEqual == nil || !*m.IsEqual {
				c.t.Errorf("matcher %+v: want is_regex false and is_equal true", m)
			}
			got[m.Name] = m.Value
		}
		if got["rule"] != "leak_balance" || got["site"] != "demo" || body.Comment == nil {
			c.t.Errorf("silence matchers %v, comment %v: want rule leak_balance and site demo", got, body.Comment)
		}
		if d := body.EndsAt.Sub(body.StartsAt); d != 4*time.Hour {
			c.t.Errorf("silence for %v, want the 4 h chosen", d)
		}
		c.mu.Lock()
		c.silences = append(c.silences, map[string]any{"matchers": got, "for": body.EndsAt.Sub(body.StartsAt)})
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"s1"}`)
	})
	// Everything else under /api/ needs the session; the page, /login and the assets are public.
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if ck, err := r.Cookie("aqualoop_session"); err != nil || ck.Value != session {
				jsonError(w, http.StatusUnauthorized, "sign in")
				return
			}
		}
		next.ServeHTTP(w, r)
	}))
	return mux
}

// checkWrite checks what the contract asks of every write: JSON, and (signed in) the CSRF
// header equal to the readable cookie.
func (c *contract) checkWrite(w http.ResponseWriter, r *http.Request, v any, signedIn bool) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s with Content-Type %q", r.Method, r.URL.Path, ct)
	}
	if signedIn {
		ck, err := r.Cookie("aqualoop_session")
		if err != nil || ck.Value != session {
			jsonError(w, http.StatusUnauthorized, "sign in")
			return false
		}
		if h := r.Header.Get("X-CSRF-Token"); h != csrf {
			c.t.Errorf("%s %s with X-CSRF-Token %q, want the cookie's %q", r.Method, r.URL.Path, h, csrf)
			jsonError(w, http.StatusForbidden, "csrf")
			return false
		}
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		c.t.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		jsonError(w, http.StatusBadRequest, "json")
		return false
	}
	return true
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// TestConsoleSignInAndAlerts runs the console behind the sign-in and alerting contracts: a 401
// brings the token form, a wrong token is refused, the right one opens the page; an alert is
// acknowledged and silenced with the documented requests; /login#token= signs in by itself.
func TestConsoleSignInAndAlerts(t *testing.T) {
	c := &contract{t: t}
	p := newPlatform(t, c.wrap)
	b := newBrowser(t)
	setLangBefore := func() {
		b.do(t, chromedp.Navigate(p.url("/ui/")))
		setLang(t, b, "en")
	}
	setLangBefore()
	b.do(t, chromedp.Navigate(p.url("/?a=1#/alerts/demo")), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do(t, chromedp.SendKeys(chromedp.CSS("#login-token"), "wrong"), chromedp.Click(chromedp.CSS(`#login-form button`)),
		chromedp.WaitVisible(chromedp.CSS("#login-err")))
	if msg := b.text(t, "#login-err"); !strings.Contains(msg, "not valid") {
		t.Errorf("a wrong token shows %q", msg)
	}
	eval[any](t, b, `document.getElementById("login-token").value = "", null`)
	b.do(t, chromedp.SendKeys(chromedp.CSS("#login-token"), testToken),
		chromedp.Click(chromedp.CSS(`#login-form button`)), ready("alerts"))
	rows := eval[[]string](t, b, `[...document.querySelectorAll("[data-alert]")].map(e => e.innerText)`)
	if len(rows) != 1 || !strings.Contains(rows[0], "Leakage 11.8 % of intake today") {
		t.Fatalf("alerts table %q, want the one firing alert", rows)
	}

	b.do(t, chromedp.Click(chromedp.CSS(`[data-ack="a1"]`)), chromedp.WaitVisible(chromedp.CSS(`.dialog textarea`)),
		chromedp.SendKeys(chromedp.CSS(`.dialog textarea`), "valve closed"), chromedp.Click(chromedp.CSS(`.dialog button:not([data-cancel])`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-ack="a1"][disabled]`)))
	b.do(t, chromedp.Click(chromedp.CSS(`[data-silence="a1"]`)), chromedp.WaitVisible(chromedp.CSS(`.dialog select`)))
	eval[any](t, b, `document.querySelector(".dialog select").value = "4", null`)
	b.do(t, chromedp.Click(chromedp.CSS(`.dialog button:not([data-cancel])`)), chromedp.WaitNotPresent(chromedp.CSS(`.dialog`)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		na, ns := len(c.acks), len(c.silences)
		var comment any
		if na > 0 {
			comment = c.acks[0]["comment"]
		}
		c.mu.Unlock()
		if na == 1 && ns == 1 {
			if comment != "valve closed" {
				t.Errorf("ack comment %v, want the one typed", comment)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acks and %d silences reached the server, want 1 and 1", na, ns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errs := b.takeErrors(); len(errs) > 0 {
		t.Errorf("browser errors: %s", strings.Join(errs, "; "))
	}
	if *updateScreenshots {
		setLang(t, b, "zh-CN")
		b.open(t, p, "alerts")
		shot(t, b, "alerts")
	}

	// A new browser profile follows a link with the token in the fragment.
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	// The first action on a tab's context must have no deadline: ending it would close the tab.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	b2 := &browser{ctx: ctx}
	b2.do(t, chromedp.Navigate(p.url("/login#token="+testToken)), ready("overview"))
	if loc := eval[string](t, b2, `location.pathname + location.hash`); strings.Contains(loc, testToken) || !strings.HasPrefix(loc, "/#/overview/") {
		t.Errorf("after /login the address is %q: the token must leave it", loc)
	}
	if hidden := eval[bool](t, b2, `document.getElementById("login").hidden`); !hidden {
		t.Error("the token form is still shown after signing in by link")
	}
}
