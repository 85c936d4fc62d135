package notify

import (
	"fmt"
	"html"
	"maps"
	"slices"
	"strings"
	"time"
)

// Messages are rendered by this one model for every human-readable integration (robots,
// e-mail), so a WeCom card and an e-mail cannot disagree.

// words is the zh/en catalogue of the rendered messages.
var words = map[string]map[string]string{
	"zh": {
		"firing": "告警", "resolved": "已恢复", "site": "站点", "severity": "级别", "summary": "摘要",
		"description": "详情", "starts": "开始", "ends": "结束", "runbook": "处置", "labels": "标签",
		"view": "查看", "more": "另有 %d 条告警未列出", "info": "提示", "warning": "警告", "critical": "严重",
	},
	"en": {
		"firing": "FIRING", "resolved": "RESOLVED", "site": "Site", "severity": "Severity", "summary": "Summary",
		"description": "Description", "starts": "Started", "ends": "Ended", "runbook": "Runbook", "labels": "Labels",
		"view": "View", "more": "%d more alerts not listed", "info": "info", "warning": "warning", "critical": "critical",
	},
}

// renderer renders messages in one language and time zone.
type renderer struct {
	lang string
	loc  *time.Location
}

func (r renderer) w(key string) string { return words[r.lang][key] }

// field is one line of an alert's block.
type field struct{ name, value string }

// block is one alert, ready for any output format.
type block struct {
	resolved bool
	heading  string
	fields   []field
	link     string
}

// Title is the one-line subject: "[告警:2] leak_imbalance site-a".
func (r renderer) Title(m *Message) string {
	firing := len(m.Firing())
	var b strings.Builder
	if firing > 0 {
		fmt.Fprintf(&b, "[%s:%d]", r.w("firing"), firing)
	} else {
		fmt.Fprintf(&b, "[%s]", r.w("resolved"))
	}
	cl := m.CommonLabels()
	for _, k := range []string{"alertname", "site", "severity"} {
		if v := cl[k]; v != "" {
			b.WriteString(" " + v)
		}
	}
	if len(cl) == 0 || cl["alertname"] == "" {
		for _, k := range slices.Sorted(maps.Keys(m.GroupLabels)) {
			if k != "site" && k != "severity" {
				b.WriteString(" " + m.GroupLabels[k])
			}
		}
	}
	return b.String()
}

func (r renderer) annotation(a *Alert, key string) string {
	if r.lang == "zh" {
		return cmpOr(a.Annotations[key+"_zh"], a.Annotations[key], a.Annotations[key+"_en"])
	}
	return cmpOr(a.Annotations[key+"_en"], a.Annotations[key], a.Annotations[key+"_zh"])
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func (r renderer) time(t time.Time) string {
	return t.In(r.loc).Format("2006-01-02 15:04:05 MST")
}

func (r renderer) block(a *Alert) block {
	sev := a.Labels["severity"]
	if w := r.w(sev); w != "" {
		sev = w
	}
	status := r.w("firing")
	if a.Resolved() {
		status = r.w("resolved")
	}
	b := block{resolved: a.Resolved(), link: a.GeneratorURL}
	b.heading = fmt.Sprintf("%s · %s", status, cmpOr(a.Labels["alertname"], a.Fingerprint))
	if sev != "" {
		b.heading += " · " + sev
	}
	add := func(name, v string) {
		if v != "" {
			b.fields = append(b.fields, field{r.w(name), v})
		}
	}
	add("site", a.Labels["site"])
	add("summary", r.annotation(a, "summary"))
	add("description", r.annotation(a, "description"))
	if !a.StartsAt.IsZero() {
		add("starts", r.time(a.StartsAt))
	}
	if a.Resolved() && !a.EndsAt.IsZero() {
		add("ends", r.time(a.EndsAt))
	}
	add("runbook", r.annotation(a, "runbook"))
	var other []string
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		if k != "alertname" && k != "site" && k != "severity" {
			other = append(other, k+"="+a.Labels[k])
		}
	}
	add("labels", strings.Join(other, ", "))
	return b
}

// Markdown renders the message as markdown of at most limit bytes (0: no limit), leaving out
// whole alerts at the end when it must and saying how many. It returns the count left out. With
// heading false the title is left to the caller (a card header, a DingTalk title).
func (r renderer) Markdown(m *Message, limit int, heading bool) (string, int) {
	head := ""
	if heading {
		head = "### " + r.Title(m) + "\n"
	}
	var parts []string
	for i := range m.Alerts {
		bl := r.block(&m.Alerts[i])
		var s strings.Builder
		fmt.Fprintf(&s, "\n**%s**\n", mdEscape(bl.heading))
		for _, f := range bl.fields {
			fmt.Fprintf(&s, "> %s: %s\n", f.name, mdEscape(f.value))
		}
		if bl.link != "" {
			fmt.Fprintf(&s, "> [%s](%s)\n", r.w("view"), bl.link)
		}
		parts = append(parts, s.String())
	}
	return fit(head, parts, limit, func(n int) string { return "\n" + fmt.Sprintf(r.w("more"), n) + "\n" })
}

// Text renders the message as plain text.
func (r renderer) Text(m *Message) string {
	var s strings.Builder
	s.WriteString(r.Title(m) + "\n")
	for i := range m.Alerts {
		bl := r.block(&m.Alerts[i])
		fmt.Fprintf(&s, "\n%s\n", bl.heading)
		for _, f := range bl.fields {
			fmt.Fprintf(&s, "  %s: %s\n", f.name, f.value)
		}
		if bl.link != "" {
			fmt.Fprintf(&s, "  %s: %s\n", r.w("view"), bl.link)
		}
	}
	if m.ExternalURL != "" {
		fmt.Fprintf(&s, "\n%s\n", m.ExternalURL)
	}
	return s.String()
}

// HTML renders the message as a small HTML document, every value escaped.
func (r renderer) HTML(m *Message) string {
	var s strings.Builder
	lang := "zh-CN"
	if r.lang == "en" {
		lang = "en"
	}
	fmt.Fprintf(&s, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n",
		lang, html.EscapeString(r.Title(m)))
	fmt.Fprintf(&s, "<h2>%s</h2>\n", html.EscapeString(r.Title(m)))
	for i := range m.Alerts {
		bl := r.block(&m.Alerts[i])
		color := "#c62828"
		if bl.resolved {
			color = "#2e7d32"
		}
		fmt.Fprintf(&s, "<h3 style=\"color:%s\">%s</h3>\n<table>\n", color, html.EscapeString(bl.heading))
		for _, f := range bl.fields {
			fmt.Fprintf(&s, "<tr><th align=\"left\">%s</th><td>%s</td></tr>\n", html.EscapeString(f.name), html.EscapeString(f.value))
		}
		s.WriteString("</table>\n")
		if bl.link != "" {
			fmt.Fprintf(&s, "<p><a href=\"%s\">%s</a></p>\n", html.EscapeString(bl.link), html.EscapeString(r.w("view")))
		}
	}
	if m.ExternalURL != "" {
		fmt.Fprintf(&s, "<p><a href=\"%s\">%s</a></p>\n", html.EscapeString(m.ExternalURL), html.EscapeString(m.ExternalURL))
	}
	s.WriteString("</body></html>\n")
	return s.String()
}

// fit joins head and as many parts as fit in limit bytes, with more(n) for the n left out.
func fit(head string, parts []string, limit int, more func(int) string) (string, int) {
	var s strings.Builder
	s.WriteString(head)
	for i, p := range parts {
		left := len(parts) - i - 1
		tail := ""
		if left > 0 {
			tail = more(left)
		}
		if limit > 0 && s.Len()+len(p)+len(tail) > limit {
			rest := more(len(parts) - i)
			if s.Len()+len(rest) > limit {
				return truncate(s.String(), limit-len("…")), len(parts) - i
			}
			return s.String() + rest, len(parts) - i
		}
		s.WriteString(p)
	}
	if limit > 0 && s.Len() > limit {
		return truncate(s.String(), limit-len("…")), 0
	}
	return s.String(), 0
}

// mdEscape keeps a value on its line. The robots' markdown dialects do not agree on escapes
// (WeCom shows a backslash as is), so nothing else is touched.
func mdEscape(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ").Replace(s)
}
