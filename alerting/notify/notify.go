// Package notify delivers alerts to the places people and systems read them: a generic webhook
// with the Alertmanager payload, a real Prometheus Alertmanager over its v2 API, e-mail over SMTP,
// the WeCom, DingTalk and Feishu group robots, and an MQTT topic per site for SCADA.
//
// The design follows Alertmanager's dispatcher and notify pipeline, in small stages that each do
// one thing. Notify takes the core's alerts through three intake stages:
//
//	Dedup   collapses a batch to one alert per fingerprint (the last one wins)
//	Router  picks the routes whose label matchers the alert meets (=, !=, =~, !~, continue)
//	Grouper puts the alert in its route's aggregation group (group_by)
//
// Each aggregation group has a timer (group_wait for a new group, then group_interval) and on
// every tick hands its alerts to each integration of its receiver through the flush stages:
//
//	NotifyDedup  asks the notification log whether this alert set is news (or repeat_interval passed)
//	Retry        sends, retrying retryable errors with exponential backoff and jitter, bounded
//	Record       writes what was sent where, when, with what result, to the notification log
//
// The notification log lives in the platform's state DB (tables notify_*), so a restart sends no
// notification twice and a group's repeat timer survives it. Notify never blocks on a receiver:
// it only updates memory; sending happens on goroutines owned by Run.
package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"
)

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is one alert as the alerting core hands it over. Labels identify it (alertname, site,
// severity, meter, unit, edge, plan ...); annotations explain it (summary, summary_zh,
// description, description_zh, runbook ...).
type Alert struct {
	Fingerprint  string // stable id of the labels; computed from them when empty
	Status       string // "firing" | "resolved"
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time // when it resolved; zero while firing
	GeneratorURL string
}

// Resolved reports whether the alert is over.
func (a *Alert) Resolved() bool { return a.Status == StatusResolved }

// LabelsFingerprint is the fingerprint of a label set: the first 16 hex digits of the SHA-256 of
// the sorted name=value pairs. The core may send its own fingerprints; this one is used for
// alerts that come without.
func LabelsFingerprint(labels map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Message is one notification: the alerts of one aggregation group on their way to one receiver.
type Message struct {
	Receiver    string
	GroupKey    string
	GroupLabels map[string]string
	Alerts      []Alert // firing first, then resolved; each group sorted by start time
	ExternalURL string
}

// Status is "firing" when any alert fires, else "resolved".
func (m *Message) Status() string {
	for i := range m.Alerts {
		if !m.Alerts[i].Resolved() {
			return StatusFiring
		}
	}
	return StatusResolved
}

// Firing is the alerts that still fire.
func (m *Message) Firing() []Alert {
	return slices.DeleteFunc(slices.Clone(m.Alerts), func(a Alert) bool { return a.Resolved() })
}

// ResolvedAlerts is the alerts that are over.
func (m *Message) ResolvedAlerts() []Alert {
	return slices.DeleteFunc(slices.Clone(m.Alerts), func(a Alert) bool { return !a.Resolved() })
}

// CommonLabels is the labels every alert of the message shares.
func (m *Message) CommonLabels() map[string]string {
	return common(m.Alerts, func(a *Alert) map[string]string { return a.Labels })
}

// CommonAnnotations is the annotations every alert of the message shares.
func (m *Message) CommonAnnotations() map[string]string {
	return common(m.Alerts, func(a *Alert) map[string]string { return a.Annotations })
}

func common(alerts []Alert, get func(*Alert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	maps.Copy(out, get(&alerts[0]))
	for i := 1; i < len(alerts); i++ {
		m := get(&alerts[i])
		for k, v := range out {
			if w, ok := m[k]; !ok || w != v {
				delete(out, k)
			}
		}
	}
	return out
}

// labelString renders labels as {a="1",b="2"}, sorted, the way Alertmanager writes group keys.
func labelString(labels map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
