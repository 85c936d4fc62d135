package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// The robots cannot run here, so these servers stand in for them and check each request against
// what the vendors document: method, path, query, content type, the exact JSON shape (unknown
// fields refused) and the signature, recomputed here from the documented recipe rather than by
// the package's own functions. They answer as the vendors do: HTTP 200 with a result code.

type robotServer struct {
	t      *testing.T
	mu     sync.Mutex
	bodies []map[string]any
	answer string // JSON answered with 200
	check  func(r *http.Request, body []byte)
}

func (s *robotServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost {
		s.t.Errorf("method %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("content type %q, want application/json", ct)
	}
	s.check(r, body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		s.t.Errorf("body is not JSON: %v", err)
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, m)
	answer := s.answer
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, answer)
}

func (s *robotServer) setAnswer(a string) { s.mu.Lock(); s.answer = a; s.mu.Unlock() }

func strictDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("body does not have the documented shape: %v\n%s", err, body)
	}
}

func buildOne(t *testing.T, rc Receiver, now func() time.Time) Notifier {
	t.Helper()
	ints, err := buildIntegrations(&rc, &Global{Language: "zh", TimeZone: "Asia/Shanghai", Timeout: 5 * time.Second},
		Options{HTTPClient: &http.Client{}, Now: now}, time.Minute)
	if err != nil || len(ints) != 1 {
		t.Fatalf("build: %v (%d integrations)", err, len(ints))
	}
	return ints[0].notifier
}

// manyAlerts is a message too long for any robot.
func manyAlerts(t0 time.Time, n int) *Message {
	m := testMessage(t0)
	for i := range n {
		a := alert("meter_stale", "park-a", t0, "meter", fmt.Sprintf("m%03d", i))
		a.Annotations["description_zh"] = strings.Repeat("计量表长时间无读数，请检查采集器与通信线路。", 3)
		m.Alerts = append(m.Alerts, a)
	}
	return m
}

func TestWeCom(t *testing.T) {
	type wecomBody struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Content string `json:"content"`
		} `json:"markdown"`
	}
	var last wecomBody
	srv := &robotServer{t: t, answer: `{"errcode":0,"errmsg":"ok"}`}
	srv.check = func(r *http.Request, body []byte) {
		if r.URL.Path != "/cgi-bin/webhook/send" || r.URL.Query().Get("key") != "wk-123" || len(r.URL.Query()) != 1 {
			t.Errorf("request %s, want /cgi-bin/webhook/send?key=wk-123", r.URL)
		}
		last = wecomBody{}
		strictDecode(t, body, &last)
		if last.MsgType != "markdown" {
			t.Errorf("msgtype %q", last.MsgType)
		}
		if n := len(last.Markdown.Content); n > 4096 || !utf8.ValidString(last.Markdown.Content) {
			t.Errorf("content is %d bytes (limit 4096) or not UTF-8", n)
		}
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, lang := range []string{"zh", "en"} {
		n := buildOne(t, Receiver{Name: "r", WeComConfigs: []WeComConfig{{URL: hs.URL + "/cgi-bin/webhook/send", Key: "wk-123", Language: lang}}}, nil)
		if err := n.Notify(context.Background(), testMessage(t0)); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		c := last.Markdown.Content
		want := map[string][]string{
			"zh": {"[告警:1]", "park-a 发生 leak_imbalance", "已恢复", "2026-11-30 16:00:00 CST", "处置: close valve V3", "严重"},
			"en": {"[FIRING:1]", "leak_imbalance at park-a", "RESOLVED", "Runbook: close valve V3", "critical"},
		}[lang]
		for _, w := range want {
			if !strings.Contains(c, w) {
				t.Errorf("%s content lacks %q:\n%s", lang, w, c)
			}
		}
	}
	// Too long: whole alerts are left out and counted, within 4096 bytes.
	n := buildOne(t, Receiver{Name: "r", WeComConfigs: []WeComConfig{{URL: hs.URL + "/cgi-bin/webhook/send", Key: "wk-123"}}}, nil)
	if err := n.Notify(context.Background(), manyAlerts(t0, 60)); err != nil {
		t.Fatal(err)
	}
	if c := last.Markdown.Content; !strings.Contains(c, "条告警未列出") || len(c) > 4096 || len(c) < 3000 {
		t.Errorf("long message: %d bytes, ends %q", len(c), c[max(0, len(c)-80):])
	}
	// Errors come back with HTTP 200.
	srv.setAnswer(`{"errcode":93000,"errmsg":"invalid webhook url, hint: [1234]"}`)
	if err := n.Notify(context.Background(), testMessage(t0)); err == nil || Retryable(err) || !strings.Contains(err.Error(), "93000") {
		t.Errorf("errcode 93000: %v (retryable %v), want a permanent failure", err, Retryable(err))
	}
	srv.setAnswer(`{"errcode":45009,"errmsg":"api freq out of limit"}`)
	if err := n.Notify(context.Background(), testMessage(t0)); err == nil || !Retryable(err) {
		t.Errorf("errcode 45009: %v, want a retryable failure", err)
	}
	srv.setAnswer(`<html>gateway</html>`)
	if err := n.Notify(context.Background(), testMessage(t0)); err == nil {
		t.Error("a non-JSON answer counted as success")
	}
}

func TestDingTalk(t *testing.T) {
	type dingBody struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		At struct {
			AtMobiles []string `json:"atMobiles"`
			IsAtAll   bool     `json:"isAtAll"`
		} `json:"at"`
	}
	now := time.Date(2026, 11, 30, 8, 0, 0, 123e6, time.UTC)
	const secret = "SECf00ba4"
	var last dingBody
	srv := &robotServer{t: t, answer: `{"errcode":0,"errmsg":"ok"}`}
	srv.check = func(r *http.Request, body []byte) {
		q := r.URL.Query()
		if r.URL.Path != "/robot/send" || q.Get("access_token") != "dt-tok" {
			t.Errorf("request %s", r.URL.Path)
		}
		ts := q.Get("timestamp")
		if ts != strconv.FormatInt(now.UnixMilli(), 10) {
			t.Errorf("timestamp %q, want milliseconds %d", ts, now.UnixMilli())
		}
		// 加签: HmacSHA256 keyed with the secret over timestamp+"\n"+secret, Base64, then
		// URL-encoded into the query.
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "\n" + secret))
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if q.Get("sign") != want {
			t.Errorf("sign %q, want %q", q.Get("sign"), want)
		}
		if !strings.Contains(r.URL.RawQuery, "sign="+url.QueryEscape(want)) {
			t.Errorf("sign not URL-encoded in %q", r.URL.RawQuery)
		}
		last = dingBody{}
		strictDecode(t, body, &last)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	n := buildOne(t, Receiver{Name: "r", DingTalkConfigs: []DingTalkConfig{{
		URL: hs.URL + "/robot/send", AccessToken: "dt-tok", Secret: secret, AtMobiles: []string{"13800000000"},
	}}}, func() time.Time { return now })
	if err := n.Notify(context.Background(), testMessage(now)); err != nil {
		t.Fatal(err)
	}
	if last.MsgType != "markdown" || last.Markdown.Title != "[告警:1] leak_imbalance park-a critical" ||
		!strings.Contains(last.Markdown.Text, "@13800000000") || len(last.At.AtMobiles) != 1 || last.At.IsAtAll {
		t.Errorf("body %+v", last)
	}
	srv.setAnswer(`{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`)
	if err := n.Notify(context.Background(), testMessage(now)); err == nil || Retryable(err) {
		t.Errorf("errcode 310000: %v, want a permanent failure", err)
	}
	srv.setAnswer(`{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`)
	if err := n.Notify(context.Background(), testMessage(now)); err == nil || !Retryable(err) {
		t.Errorf("errcode 130101: %v, want retryable", err)
	}
}

func TestFeishu(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	const secret = "fs-secret"
	var lastBody []byte
	srv := &robotServer{t: t, answer: `{"code":0,"msg":"success","data":{}}`}
	srv.check = func(r *http.Request, body []byte) {
		if r.URL.Path != "/open-apis/bot/v2/hook/fs-token" || r.URL.RawQuery != "" {
			t.Errorf("request %s", r.URL)
		}
		var s struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
		}
		_ = json.Unmarshal(body, &s)
		if s.Timestamp != strconv.FormatInt(now.Unix(), 10) {
			t.Errorf("timestamp %q, want seconds %d", s.Timestamp, now.Unix())
		}
		// 签名校验: HmacSHA256 keyed with timestamp+"\n"+secret over an empty message, Base64.
		mac := hmac.New(sha256.New, []byte(s.Timestamp+"\n"+secret))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); s.Sign != want {
			t.Errorf("sign %q, want %q", s.Sign, want)
		}
		lastBody = body
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	clock := func() time.Time { return now }

	t.Run("interactive", func(t *testing.T) {
		n := buildOne(t, Receiver{Name: "r", FeishuConfigs: []FeishuConfig{{URL: hs.URL + "/open-apis/bot/v2/hook/", Token: "fs-token", Secret: secret, Language: "en"}}}, clock)
		if err := n.Notify(context.Background(), testMessage(now)); err != nil {
			t.Fatal(err)
		}
		var b struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
			MsgType   string `json:"msg_type"`
			Card      struct {
				Config struct {
					WideScreenMode bool `json:"wide_screen_mode"`
				} `json:"config"`
				Header struct {
					Title struct {
						Tag     string `json:"tag"`
						Content string `json:"content"`
					} `json:"title"`
					Template string `json:"template"`
				} `json:"header"`
				Elements []struct {
					Tag     string `json:"tag"`
					Content string `json:"content"`
				} `json:"elements"`
			} `json:"card"`
		}
		strictDecode(t, lastBody, &b)
		if b.MsgType != "interactive" || b.Card.Header.Title.Tag != "plain_text" || b.Card.Header.Title.Content != "[FIRING:1] leak_imbalance park-a critical" ||
			b.Card.Header.Template != "red" || len(b.Card.Elements) != 1 || b.Card.Elements[0].Tag != "markdown" ||
			!strings.Contains(b.Card.Elements[0].Content, "leak_imbalance at park-a") {
			t.Errorf("card %+v", b)
		}
	})
	t.Run("post", func(t *testing.T) {
		n := buildOne(t, Receiver{Name: "r", FeishuConfigs: []FeishuConfig{{URL: hs.URL + "/open-apis/bot/v2/hook", Token: "fs-token", Secret: secret, MsgType: "post"}}}, clock)
		if err := n.Notify(context.Background(), testMessage(now)); err != nil {
			t.Fatal(err)
		}
		var b struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
			MsgType   string `json:"msg_type"`
			Content   struct {
				Post map[string]struct {
					Title   string `json:"title"`
					Content [][]struct {
						Tag  string `json:"tag"`
						Text string `json:"text"`
					} `json:"content"`
				} `json:"post"`
			} `json:"content"`
		}
		strictDecode(t, lastBody, &b)
		zh, ok := b.Content.Post["zh_cn"]
		if b.MsgType != "post" || !ok || zh.Title == "" || len(zh.Content) != 1 || zh.Content[0][0].Tag != "text" ||
			!strings.Contains(zh.Content[0][0].Text, "park-a 发生 leak_imbalance") {
			t.Errorf("post %+v", b)
		}
	})
	t.Run("text and errors", func(t *testing.T) {
		n := buildOne(t, Receiver{Name: "r", FeishuConfigs: []FeishuConfig{{URL: hs.URL + "/open-apis/bot/v2/hook", Token: "fs-token", Secret: secret, MsgType: "text"}}}, clock)
		if err := n.Notify(context.Background(), testMessage(now)); err != nil {
			t.Fatal(err)
		}
		var b struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
			MsgType   string `json:"msg_type"`
			Content   struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		strictDecode(t, lastBody, &b)
		if b.MsgType != "text" || !strings.HasPrefix(b.Content.Text, "[告警:1]") {
			t.Errorf("text %+v", b)
		}
		srv.setAnswer(`{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}`)
		if err := n.Notify(context.Background(), testMessage(now)); err == nil || Retryable(err) || !strings.Contains(err.Error(), "19021") {
			t.Errorf("code 19021: %v, want a permanent failure", err)
		}
		srv.setAnswer(`{"code":11232,"msg":"frequency limited psm","data":{}}`)
		if err := n.Notify(context.Background(), testMessage(now)); err == nil || !Retryable(err) {
			t.Errorf("code 11232: %v, want retryable", err)
		}
		srv.setAnswer(`{"StatusCode":0,"StatusMessage":"success"}`)
		if err := n.Notify(context.Background(), testMessage(now)); err != nil {
			t.Errorf("older success answer: %v", err)
		}
	})
}

// TestSecretsNotInErrors: the robots' keys live in URLs (query or path); a failing robot's error,
// which goes to the log and the notification log, must not show them.
func TestSecretsNotInErrors(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	defer hs.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	secrets := []string{"wk-secret-1", "dt-secret-2", "SECsecret3", "fs-secret-4"}
	for _, base := range []string{hs.URL, closed.URL} {
		for _, rc := range []Receiver{
			{Name: "w", WeComConfigs: []WeComConfig{{URL: base + "/cgi-bin/webhook/send", Key: "wk-secret-1"}}},
			{Name: "d", DingTalkConfigs: []DingTalkConfig{{URL: base + "/robot/send", AccessToken: "dt-secret-2", Secret: "SECsecret3"}}},
			{Name: "f", FeishuConfigs: []FeishuConfig{{URL: base + "/open-apis/bot/v2/hook", Token: "fs-secret-4"}}},
		} {
			err := buildOne(t, rc, time.Now).Notify(context.Background(), testMessage(time.Now()))
			if err == nil {
				t.Fatalf("%s: no error from a failing robot", rc.Name)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%s: error shows a secret: %v", rc.Name, err)
				}
			}
		}
	}
}
