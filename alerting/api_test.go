package alerting

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

type apiClient struct {
	t    *testing.T
	base string
	user string
}

func (c apiClient) do(method, path, ctype, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("X-User", c.user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		c.t.Errorf("%s %s: error %d not JSON: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, b
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("not an error body: %s", b)
	}
	return e.Error.Code
}

// The console's API: list, acknowledge, assign, close out, export the close-outs, silence and
// list rules, with identity and site scope injected and errors as JSON.
func TestAPI(t *testing.T) {
	site := demoSite(t)
	t0 := time.Date(2026, 3, 2, 10, 25, 0, 0, time.UTC)
	c := &clock{t: t0}
	rec := &recorder{}
	m, err := New(context.Background(), Options{Sites: []*analytics.Site{site}, RulesFiles: rulesOf(t, site, imbalanceRule),
		DB: openTestDB(t, filepath.Join(t.TempDir(), "s.db")), Now: c.now, Notify: rec.notify,
		Who: func(r *http.Request) string { return r.Header.Get("X-User") },
		Allowed: func(r *http.Request, site string) bool {
			return r.Header.Get("X-User") == "admin" || r.Header.Get("X-User") == "li.wei" && site == "demo"
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	ctx := context.Background()
	m.Sink(ctx, hourSnap(t0, 0.06))
	c.add(10 * time.Minute)
	m.Sink(ctx, hourSnap(c.now(), 0.08))

	api := apiClient{t, srv.URL, "li.wei"}
	code, body := api.do("GET", "/api/v1/alerts?site=demo&state=firing&severity=warning", "", "")
	var list struct{ Alerts []map[string]any }
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		t.Fatalf("list: %d %s", code, body)
	}
	var leak map[string]any
	for _, a := range list.Alerts {
		if a["rule"] == "leak_m01" {
			leak = a
		}
	}
	if leak == nil {
		t.Fatalf("leak_m01 not listed: %s", body)
	}
	for _, k := range []string{"id", "rule", "name", "site", "severity", "state", "labels", "annotations", "summary", "summary_zh",
		"value", "starts_at", "ends_at", "acknowledged_by", "ack_comment", "assignee", "silenced", "inhibited", "runbook"} {
		if _, ok := leak[k]; !ok {
			t.Errorf("alert lacks field %q", k)
		}
	}
	if leak["value"].(float64) != 0.08 || leak["state"] != "firing" || leak["site"] != "demo" {
		t.Errorf("alert = %v", leak)
	}
	id := leak["id"].(string)

	// Writes take JSON only; errors are JSON.
	if code, b := api.do("POST", "/api/v1/alerts/"+id+"/ack", "text/plain", `{"comment":"x"}`); code != 415 || errCode(t, b) != "unsupported_media_type" {
		t.Errorf("ack as text/plain: %d %s", code, b)
	}
	if code, b := api.do("POST", "/api/v1/alerts/"+id+"/ack", "application/json", `{"comment":`); code != 400 {
		t.Errorf("broken JSON: %d %s", code, b)
	}
	if code, b := api.do("POST", "/api/v1/alerts/999/ack", "application/json", `{}`); code != 404 || errCode(t, b) != "not_found" {
		t.Errorf("unknown alert: %d %s", code, b)
	}
	if code, b := (apiClient{t, srv.URL, "zhang"}).do("POST", "/api/v1/alerts/"+id+"/ack", "application/json", `{}`); code != 404 {
		t.Errorf("user without the site: %d %s", code, b)
	}
	if code, _ := (apiClient{t, srv.URL, "zhang"}).do("GET", "/api/v1/alerts?site=demo", "", ""); code != 403 {
		t.Errorf("list a forbidden site: %d", code)
	}
	code, b := api.do("POST", "/api/v1/alerts/"+id+"/ack", "application/json", `{"comment":"going to the valve pit"}`)
	var v View
	if err := json.Unmarshal(b, &v); code != 200 || err != nil || v.State != StateAcknowledged || v.AcknowledgedBy != "li.wei" || v.AckComment != "going to the valve pit" {
		t.Errorf("ack: %d %s", code, b)
	}
	if code, b := api.do("POST", "/api/v1/alerts/"+id+"/assign", "application/json", `{"assignee":"wang.fang"}`); code != 200 || !strings.Contains(string(b), `"assignee":"wang.fang"`) {
		t.Errorf("assign: %d %s", code, b)
	}
	if code, b := api.do("POST", "/api/v1/alerts/"+id+"/close", "application/json", `{"note":""}`); code != 400 {
		t.Errorf("close without a note: %d %s", code, b)
	}
	// The leak stops, the alert resolves; acknowledging it now is a conflict.
	c.add(time.Minute)
	m.Sink(ctx, hourSnap(c.now(), 0.01))
	if code, b := api.do("POST", "/api/v1/alerts/"+id+"/ack", "application/json", `{}`); code != 409 || errCode(t, b) != "conflict" {
		t.Errorf("ack resolved: %d %s", code, b)
	}
	note := "Found a cracked flange at V-101, replaced the gasket; M01 back to normal"
	if code, b := api.do("POST", "/api/v1/alerts/"+id+"/close", "application/json", `{"note":"`+note+`"}`); code != 200 {
		t.Errorf("close: %d %s", code, b)
	}
	code, b = api.do("GET", "/api/v1/alerts/closeouts.csv", "", "")
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if code != 200 || err != nil || len(rows) != 2 {
		t.Fatalf("closeouts: %d %v\n%s", code, err, b)
	}
	row := map[string]string{}
	for i, col := range rows[0] {
		row[col] = rows[1][i]
	}
	if row["id"] != id || row["close_note"] != note || row["closed_by"] != "li.wei" || row["assignee"] != "wang.fang" ||
		row["acknowledged_by"] != "li.wei" || row["labels"] != "family=leak;level=1;meter=M01" || row["ends_at"] == "" {
		t.Errorf("close-out row = %v", row)
	}

	// Silences: a bad matcher is refused; a good one mutes the next leak alert and its
	// notification; deleting it expires it.
	if code, b := api.do("POST", "/api/v1/silences", "application/json", `{"matchers":[{"name":"site","op":"=","value":"demo"},{"name":"meter","op":"=~","value":"(M0"}],"ends_at":"2026-03-02T12:00:00Z"}`); code != 400 {
		t.Errorf("bad regex silence: %d %s", code, b)
	}
	if code, _ := api.do("POST", "/api/v1/silences", "application/json", `{"matchers":[{"name":"alertname","op":"=","value":"leak_m01"}],"ends_at":"2026-03-02T12:00:00Z"}`); code != 403 {
		t.Errorf("a silence over every site by a one-site user: %d", code)
	}
	code, b = api.do("POST", "/api/v1/silences", "application/json",
		`{"matchers":[{"name":"site","op":"=","value":"demo"},{"name":"alertname","op":"=~","value":"leak_.*"}],"ends_at":"2026-03-02T12:00:00Z","comment":"pipe work on the main"}`)
	var sil Silence
	if err := json.Unmarshal(b, &sil); code != 201 || err != nil || sil.ID == "" || sil.Author != "li.wei" {
		t.Fatalf("post silence: %d %s", code, b)
	}
	rec.take("leak_m01")
	c.add(time.Minute)
	m.Sink(ctx, hourSnap(c.now(), 0.07))
	c.add(10 * time.Minute)
	m.Sink(ctx, hourSnap(c.now(), 0.07))
	if n := rec.take("leak_m01"); len(n) != 0 {
		t.Errorf("silenced alert notified: %+v", n)
	}
	_, b = api.do("GET", "/api/v1/alerts?state=firing", "", "")
	if !strings.Contains(string(b), `"silenced":true`) || !strings.Contains(string(b), sil.ID) {
		t.Errorf("firing alert not shown as silenced: %s", b)
	}
	if code, b := api.do("DELETE", "/api/v1/silences/"+sil.ID, "", ""); code != 204 {
		t.Errorf("expire silence: %d %s", code, b)
	}
	m.Sink(ctx, hourSnap(c.now(), 0.07))
	if n := rec.take("leak_m01"); len(n) != 1 || n[0].Status != "firing" {
		t.Errorf("after the silence ends the alert is sent: %+v", n)
	}

	code, b = api.do("GET", "/api/v1/rules?site=demo", "", "")
	var rules struct{ Rules []RuleView }
	if err := json.Unmarshal(b, &rules); code != 200 || err != nil {
		t.Fatalf("rules: %d %s", code, b)
	}
	found := false
	for _, r := range rules.Rules {
		if r.Name == "leak_m01" {
			found = r.State == StateFiring && r.Alerts[StateFiring] == 1 && r.Family == "leak"
		}
	}
	if !found {
		t.Errorf("rules lack leak_m01 firing: %s", b)
	}
}
