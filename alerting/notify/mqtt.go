package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// PublishFunc publishes one MQTT message and returns once the broker acknowledged it (QoS 1 and
// 2) or the context ended. cmd fills it with the platform's MQTT client (PahoPublisher).
type PublishFunc func(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error

// PahoPublisher adapts a connected paho client to PublishFunc.
func PahoPublisher(c paho.Client) PublishFunc {
	return func(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
		if !c.IsConnectionOpen() {
			return errors.New("mqtt client not connected")
		}
		tok := c.Publish(topic, qos, retain, payload)
		select {
		case <-tok.Done():
			return tok.Error()
		case <-ctx.Done():
			return fmt.Errorf("publish to %s: %w", topic, ctx.Err())
		}
	}
}

// MQTTPayloadVersion is the version of the JSON that MQTT integrations publish.
const MQTTPayloadVersion = 1

// mqttPayload is what SCADA and other systems on the broker read: one message per topic, with
// the alerts of the notification that belong to it.
type mqttPayload struct {
	Version  int         `json:"version"`
	Receiver string      `json:"receiver"`
	Status   string      `json:"status"`
	GroupKey string      `json:"groupKey"`
	SentAt   time.Time   `json:"sentAt"`
	Alerts   []mqttAlert `json:"alerts"`
}

type mqttAlert struct {
	Fingerprint  string            `json:"fingerprint"`
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// MQTT publishes notifications on a topic per site (or per any label of the topic template).
type MQTT struct {
	topic   string
	qos     byte
	retain  bool
	publish PublishFunc
	now     func() time.Time
}

var _ Notifier = (*MQTT)(nil)

var topicVar = regexp.MustCompile(`\{([a-z_]+)\}`)

// topicVars are the labels a topic template may name.
var topicVars = map[string]bool{"site": true, "severity": true, "alertname": true, "edge": true, "meter": true, "unit": true}

func checkTopicTemplate(t string) error {
	if t == "" {
		return errors.New("is required")
	}
	if strings.ContainsAny(t, "#+") {
		return fmt.Errorf("%q: wildcards # and + are not allowed in a topic to publish to", t)
	}
	for _, m := range topicVar.FindAllStringSubmatch(t, -1) {
		if !topicVars[m[1]] {
			return fmt.Errorf("%q: {%s} is not one of {site}, {severity}, {alertname}, {edge}, {meter}, {unit}", t, m[1])
		}
	}
	if strings.Count(t, "{") != len(topicVar.FindAllString(t, -1)) {
		return fmt.Errorf("%q: a { is not part of a {label} placeholder", t)
	}
	return nil
}

// topicFor fills the template; a missing label becomes "_", which keeps the topic level.
func (q *MQTT) topicFor(a *Alert) string {
	return topicVar.ReplaceAllStringFunc(q.topic, func(s string) string {
		v := a.Labels[s[1:len(s)-1]]
		if v == "" {
			return "_"
		}
		// A label value must not add topic levels or wildcards.
		return strings.NewReplacer("/", "_", "#", "_", "+", "_").Replace(v)
	})
}

// Notify publishes m's alerts, one message per topic, all or nothing per topic.
func (q *MQTT) Notify(ctx context.Context, m *Message) error {
	byTopic := map[string][]mqttAlert{}
	var order []string
	for i := range m.Alerts {
		a := &m.Alerts[i]
		t := q.topicFor(a)
		if _, ok := byTopic[t]; !ok {
			order = append(order, t)
		}
		ma := mqttAlert{
			Fingerprint: a.Fingerprint, Status: a.Status, Labels: nonNilMap(a.Labels),
			Annotations: nonNilMap(a.Annotations), StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL,
		}
		if a.Resolved() && !a.EndsAt.IsZero() {
			e := a.EndsAt
			ma.EndsAt = &e
		}
		byTopic[t] = append(byTopic[t], ma)
	}
	for _, t := range order {
		p := mqttPayload{
			Version: MQTTPayloadVersion, Receiver: m.Receiver, GroupKey: m.GroupKey, SentAt: q.now().UTC(),
			Status: StatusResolved, Alerts: byTopic[t],
		}
		for _, a := range p.Alerts {
			if a.Status == StatusFiring {
				p.Status = StatusFiring
			}
		}
		body, err := json.Marshal(p)
		if err != nil {
			return Permanent(fmt.Errorf("encode mqtt alert message: %w", err))
		}
		if err := q.publish(ctx, t, body, q.qos, q.retain); err != nil {
			return fmt.Errorf("publish alerts to %s: %w", t, err)
		}
	}
	return nil
}
