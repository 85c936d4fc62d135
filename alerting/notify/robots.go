package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Size limits of the robots' messages. WeCom documents 4096 bytes of markdown content; DingTalk
// and Feishu take about 20 KB per request, of which the markdown keeps well below.
const (
	weComMaxBytes    = 4096
	dingTalkMaxBytes = 18000
	feishuMaxBytes   = 18000
)

// robotAnswer is the JSON the robots answer with HTTP 200, success or not: WeCom and DingTalk
// say errcode/errmsg, Feishu code/msg (and StatusCode/StatusMessage in older answers).
type robotAnswer struct {
	ErrCode       *int   `json:"errcode"`
	ErrMsg        string `json:"errmsg"`
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

// check turns a robot's answer into an error. retryCodes are the vendor's "too many requests"
// and "busy" codes; every other non-zero code (bad key, bad signature, bad request, keyword
// missing) is permanent.
func (a robotAnswer) check(vendor string, body []byte, retryCodes ...int) error {
	code, msg := 0, ""
	switch {
	case a.ErrCode != nil:
		code, msg = *a.ErrCode, a.ErrMsg
	case a.Code != nil:
		code, msg = *a.Code, a.Msg
	case a.StatusCode != nil:
		code, msg = *a.StatusCode, a.StatusMessage
	default:
		return Permanent(fmt.Errorf("%s answered without a result code: %s", vendor, truncate(string(body), 200)))
	}
	if code == 0 {
		return nil
	}
	err := fmt.Errorf("%s refused the message: code %d: %s", vendor, code, msg)
	for _, c := range retryCodes {
		if code == c {
			return err
		}
	}
	return Permanent(err)
}

func postRobot(ctx context.Context, p *httpPoster, vendor, u string, payload any, retryCodes ...int) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return Permanent(fmt.Errorf("encode %s message: %w", vendor, err))
	}
	answer, err := p.post(ctx, u, "application/json", body)
	if err != nil {
		return err
	}
	var a robotAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return fmt.Errorf("%s answer is not JSON: %s", vendor, truncate(string(answer), 200))
	}
	return a.check(vendor, answer, retryCodes...)
}

// WeCom sends markdown to a WeCom (企业微信) group robot:
// POST {url}?key=KEY {"msgtype":"markdown","markdown":{"content":"..."}}.
type WeCom struct {
	url    string
	key    string
	render renderer
	post   httpPoster
}

var _ Notifier = (*WeCom)(nil)

// WeCom's answer codes worth a retry: -1 system busy, 45009 api frequency out of limit.
var weComRetry = []int{-1, 45009}

// Notify sends m.
func (w *WeCom) Notify(ctx context.Context, m *Message) error {
	content, _ := w.render.Markdown(m, weComMaxBytes, true)
	u, err := withQuery(w.url, url.Values{"key": {w.key}})
	if err != nil {
		return Permanent(err)
	}
	payload := map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": content}}
	return postRobot(ctx, &w.post, "wecom", u, payload, weComRetry...)
}

// DingTalk sends markdown to a DingTalk (钉钉) custom robot. With a secret (加签), the URL carries
// timestamp (ms) and sign = urlencode(base64(HMAC-SHA256(secret, timestamp+"\n"+secret))).
type DingTalk struct {
	url       string
	token     string
	secret    string
	atMobiles []string
	atAll     bool
	render    renderer
	now       func() time.Time
	post      httpPoster
}

var _ Notifier = (*DingTalk)(nil)

// DingTalk's answer codes worth a retry: -1 system busy, 130101 sending too fast.
var dingTalkRetry = []int{-1, 130101}

// DingTalkSign is the signature of DingTalk's 加签 setting for a timestamp in milliseconds,
// before URL encoding.
func DingTalkSign(secret string, timestampMs int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMs, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Notify sends m.
func (d *DingTalk) Notify(ctx context.Context, m *Message) error {
	text, _ := d.render.Markdown(m, dingTalkMaxBytes, true)
	// DingTalk only rings the people whose number also appears in the text.
	for _, mob := range d.atMobiles {
		text += " @" + mob
	}
	q := url.Values{"access_token": {d.token}}
	if d.secret != "" {
		ts := d.now().UnixMilli()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingTalkSign(d.secret, ts))
	}
	u, err := withQuery(d.url, q)
	if err != nil {
		return Permanent(err)
	}
	payload := map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": d.render.Title(m), "text": text},
		"at":       map[string]any{"atMobiles": nonNil(d.atMobiles), "isAtAll": d.atAll},
	}
	return postRobot(ctx, &d.post, "dingtalk", u, payload, dingTalkRetry...)
}

// Feishu sends to a Feishu (飞书) custom bot at {url}/{token}. With a secret (签名校验), the body
// carries timestamp (seconds) and sign = base64(HMAC-SHA256 keyed with timestamp+"\n"+secret over
// an empty message).
type Feishu struct {
	url     string
	secret  string
	msgType string
	render  renderer
	now     func() time.Time
	post    httpPoster
}

var _ Notifier = (*Feishu)(nil)

// Feishu's answer code worth a retry: 11232, frequency limited.
var feishuRetry = []int{11232}

// FeishuSign is the signature of Feishu's 签名校验 setting for a timestamp in seconds.
func FeishuSign(secret string, timestamp int64) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Notify sends m.
func (f *Feishu) Notify(ctx context.Context, m *Message) error {
	title := f.render.Title(m)
	payload := map[string]any{"msg_type": f.msgType}
	switch f.msgType {
	case "interactive":
		md, _ := f.render.Markdown(m, feishuMaxBytes, false)
		color := "red"
		if m.Status() == StatusResolved {
			color = "green"
		}
		payload["card"] = map[string]any{
			"config": map[string]any{"wide_screen_mode": true},
			"header": map[string]any{
				"title":    map[string]string{"tag": "plain_text", "content": title},
				"template": color,
			},
			"elements": []any{map[string]string{"tag": "markdown", "content": md}},
		}
	case "post":
		lang := "zh_cn"
		if f.render.lang == "en" {
			lang = "en_us"
		}
		text := truncate(strings.TrimPrefix(f.render.Text(m), title+"\n"), feishuMaxBytes)
		payload["content"] = map[string]any{"post": map[string]any{lang: map[string]any{
			"title":   title,
			"content": [][]map[string]string{{{"tag": "text", "text": text}}},
		}}}
	default: // text
		payload["content"] = map[string]string{"text": truncate(f.render.Text(m), feishuMaxBytes)}
	}
	if f.secret != "" {
		ts := f.now().Unix()
		payload["timestamp"] = strconv.FormatInt(ts, 10)
		payload["sign"] = FeishuSign(f.secret, ts)
	}
	return postRobot(ctx, &f.post, "feishu", f.url, payload, feishuRetry...)
}

func withQuery(base string, q url.Values) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse robot url %s: %w", redactURL(base), err)
	}
	v := u.Query()
	for k, vs := range q {
		v[k] = vs
	}
	u.RawQuery = v.Encode()
	return u.String(), nil
}
