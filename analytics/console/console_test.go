package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/console"
	"github.com/aqualoop/aqualoop/analytics/engine"
)

// stream reads server-sent events from one open GET.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	return &stream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name and data; comment lines are skipped.
func (s *stream) next(t *testing.T) (name, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func snapshot(site string, vi float64) engine.Snapshot {
	r := 0.9
	s := engine.Snapshot{Site: site, Boundary: engine.BoundarySite, At: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	s.Day.Indicators = engine.Indicators{ReuseRate: &r, Declared: "reuse_rate", Coverage: 1, Volumes: engine.Volumes{Vi: vi, Vr: 9 * vi}}
	return s
}

func TestHubStreamsCompactEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	hub := console.NewHub(console.HubOptions{MaxClients: 2, Metrics: console.NewMetrics(reg)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	srv := httptest.NewServer(hub)
	defer srv.Close()

	hub.Sink()(ctx, snapshot("a", 1)) // before anyone listens: the backlog
	s := openStream(t, srv.URL+"?site=a")
	if name, data := s.next(t); name != "hello" || !strings.Contains(data, "instance") {
		t.Fatalf("first event %s %s, want hello with the instance", name, data)
	}
	var ev console.Event
	name, data := s.next(t)
	if err := json.Unmarshal([]byte(data), &ev); name != "snapshot" || err != nil || ev.Site != "a" || ev.Day.Vi != 1 {
		t.Fatalf("backlog %s %s (%v), want site a's snapshot", name, data, err)
	}
	hub.Publish(snapshot("b", 2)) // another site: not sent on a's stream
	hub.Publish(snapshot("a", 3))
	name, data = s.next(t)
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Site != "a" || ev.Day.Vi != 3 || ev.Day.Vr != 27 || ev.Day.ReuseRate == nil || *ev.Day.ReuseRate != 0.9 || ev.Seq != 3 {
		t.Fatalf("got %s %s, want a's second snapshot (seq 3, Vi 3)", name, data)
	}
	if len(data) > 1024 {
		t.Errorf("an event is %d bytes; it should stay compact", len(data))
	}

	// The second stream is the last one allowed; a third is refused with a JSON error.
	openStream(t, srv.URL)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error"`) {
		t.Errorf("third stream: %s %s, want 503 with a JSON error", resp.Status, body)
	}

	// A stream nobody reads never blocks the evaluator's sink: its events are dropped.
	for i := range 500 {
		hub.Publish(snapshot("a", float64(i)))
	}
	if got := counter(t, reg, "aqualoop_console_events_dropped_total"); got == 0 {
		t.Error("500 events to unread streams dropped none")
	}

	// Stopping the platform ends the streams, so the HTTP server can shut down.
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := s.r.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open 10 s after the hub stopped")
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestHandlerServesPageAndAssets(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, page := get("/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || strings.Contains(page, "{{version}}") {
		t.Fatalf("GET /: %s %s", resp.Status, page)
	}
	for _, path := range []string{"/login", "/ui/"} {
		if r, b := get(path); r.StatusCode != http.StatusOK || b != page {
			t.Errorf("GET %s: %s; want the page", path, r.Status)
		}
	}
	// Every asset the page names is served, from the binary, and cached for good under its hash.
	refs := regexp.MustCompile(`(?:src|href)="(/ui/assets/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page names %d assets", len(refs))
	}
	for _, ref := range refs {
		r, b := get(ref[1])
		if r.StatusCode != http.StatusOK || len(b) == 0 || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: %s, %d bytes, Cache-Control %q", ref[1], r.Status, len(b), r.Header.Get("Cache-Control"))
		}
		if b := strings.ReplaceAll(b, "http://www.w3.org/2000/svg", ""); strings.Contains(b, "http://") || strings.Contains(b, "https://") {
			t.Errorf("%s refers to another site: plants are often offline", ref[1])
		}
	}
	for _, path := range []string{"/ui/assets/", "/ui/assets/nope.js", "/ui/assets/../console.go"} {
		if r, _ := get(path); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, r.Status)
		}
	}
}

// TestCatalogue holds the two languages together: every key the page uses exists in both, and
// both have the same keys, including one per flow kind of the site model and one per indicator
// the engine computes.
func TestCatalogue(t *testing.T) {
	js, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := os.ReadFile("assets/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	zh, en, ok := strings.Cut(string(cat), `"en": {`)
	if !ok {
		t.Fatal("i18n.js has no en block")
	}
	keyRe := regexp.MustCompile(`"([a-z0-9_]+(?:\.[a-z0-9_]+)+)":`)
	keys := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, k := range keyRe.FindAllStringSubmatch(s, -1) {
			m[k[1]] = true
		}
		return m
	}
	zhKeys, enKeys := keys(zh), keys(en)
	for k := range zhKeys {
		if !enKeys[k] {
			t.Errorf("%s is in zh-CN but not in en", k)
		}
	}
	for k := range enKeys {
		if !zhKeys[k] {
			t.Errorf("%s is in en but not in zh-CN", k)
		}
	}
	used := regexp.MustCompile(`\bt\("([a-z0-9_.]+)"\s*[,)]`).FindAllStringSubmatch(string(js), -1)
	if len(used) < 100 {
		t.Fatalf("found only %d uses of t() in app.js", len(used))
	}
	var want []string
	for _, u := range used {
		want = append(want, u[1])
	}
	for _, k := range []analytics.FlowKind{analytics.Intake, analytics.NonConventional, analytics.Circulating, analytics.Cascade,
		analytics.WastewaterReuse, analytics.Condensate, analytics.Discharge, analytics.Consumption, analytics.Supplied, analytics.Internal} {
		want = append(want, "kind."+string(k))
	}
	var rates map[string]any
	b, _ := json.Marshal(engine.Rates{})
	json.Unmarshal(b, &rates)
	for k := range rates {
		if !strings.HasPrefix(k, "intake_per") { // per product and per 10⁴ CNY are not shown as rates
			want = append(want, "ind."+k)
		}
	}
	for _, p := range []string{"overview", "balance", "trends", "meters", "plans", "alerts", "park", "reports"} {
		want = append(want, "nav."+p)
	}
	for _, k := range []string{"month", "year", "years"} {
		want = append(want, "packs.kind."+k)
	}
	for _, f := range []string{"pdf", "xlsx", "csv", "zip"} {
		want = append(want, "packs.fmt."+f, "packs.fmt."+f+".what")
	}
	slices.Sort(want)
	for _, k := range slices.Compact(want) {
		if !zhKeys[k] || !enKeys[k] {
			t.Errorf("key %s is used but missing from the catalogue (zh %v, en %v)", k, zhKeys[k], enKeys[k])
		}
	}
	// The GB/T 7119 terms are the standard's.
	for key, term := range map[string]string{"ind.reuse_rate": "重复利用率", "ind.indirect_cooling_rate": "间接冷却水循环率",
		"ind.condensate_rate": "冷凝水回用率", "ind.leakage_rate": "漏失率", "vol.vi": "取水量", "vol.vr": "重复利用水量", "vol.vd": "排水量"} {
		if !strings.Contains(zh, `"`+key+`": "`+term+`"`) {
			t.Errorf("%s is not %s in zh-CN", key, term)
		}
	}
}
