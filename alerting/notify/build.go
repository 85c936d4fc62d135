package notify

import (
	"errors"
	"fmt"
	"time"
)

// buildIntegrations turns a receiver's config into its integrations, reading secrets.
// maxInterval is the longest group_interval of the routing tree.
func buildIntegrations(rc *Receiver, g *Global, o Options, maxInterval time.Duration) ([]*integration, error) {
	loc := time.Local
	if g.TimeZone != "" {
		l, err := time.LoadLocation(g.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("time_zone: %w", err)
		}
		loc = l
	}
	rend := func(lang string) renderer { return renderer{lang: cmpOr(lang, g.Language, defaultLanguage), loc: loc} }
	resolvedOn := func(b *bool) bool { return b == nil || *b }
	var out []*integration
	add := func(kind string, i int, n Notifier, sendResolved bool) {
		out = append(out, &integration{receiver: rc.Name, kind: kind, index: i, notifier: n, sendResolved: sendResolved})
	}
	client := o.HTTPClient
	if client.Timeout == 0 {
		c := *client
		c.Timeout = g.Timeout
		client = &c
	}
	for i := range rc.WebhookConfigs {
		c := &rc.WebhookConfigs[i]
		n, err := NewWebhook(c, client)
		if err != nil {
			return nil, fmt.Errorf("webhook_configs[%d]: %w", i, err)
		}
		add("webhook", i, n, resolvedOn(c.SendResolved))
	}
	for i := range rc.AlertmanagerConfigs {
		c := &rc.AlertmanagerConfigs[i]
		// Four times the longest interval a firing alert can wait for its next push, as
		// Prometheus does with its resend delay.
		n, err := NewAlertmanager(c, client, o.Now, 4*maxInterval)
		if err != nil {
			return nil, fmt.Errorf("alertmanager_configs[%d]: %w", i, err)
		}
		add("alertmanager", i, n, true)
		out[len(out)-1].everyFlush = true
	}
	for i := range rc.EmailConfigs {
		c := &rc.EmailConfigs[i]
		if c.RequireTLS == nil {
			t := true
			c.RequireTLS = &t
		}
		n, err := NewEmail(c, rend(c.Language), o.Now, g.Timeout)
		if err != nil {
			return nil, fmt.Errorf("email_configs[%d]: %w", i, err)
		}
		add("email", i, n, resolvedOn(c.SendResolved))
	}
	for i := range rc.WeComConfigs {
		c := &rc.WeComConfigs[i]
		key, err := resolveSecret(c.Key, c.KeyFile, c.KeyEnv)
		if err != nil {
			return nil, fmt.Errorf("wecom_configs[%d].key: %w", i, err)
		}
		add("wecom", i, &WeCom{url: c.URL, key: key, render: rend(c.Language), post: httpPoster{client: client}},
			resolvedOn(c.SendResolved))
	}
	for i := range rc.DingTalkConfigs {
		c := &rc.DingTalkConfigs[i]
		tok, err := resolveSecret(c.AccessToken, c.AccessTokenFile, c.AccessTokenEnv)
		if err != nil {
			return nil, fmt.Errorf("dingtalk_configs[%d].access_token: %w", i, err)
		}
		sec, err := resolveSecret(c.Secret, c.SecretFile, c.SecretEnv)
		if err != nil {
			return nil, fmt.Errorf("dingtalk_configs[%d].secret: %w", i, err)
		}
		add("dingtalk", i, &DingTalk{url: c.URL, token: tok, secret: sec, atMobiles: c.AtMobiles, atAll: c.AtAll,
			render: rend(c.Language), now: o.Now, post: httpPoster{client: client}}, resolvedOn(c.SendResolved))
	}
	for i := range rc.FeishuConfigs {
		c := &rc.FeishuConfigs[i]
		tok, err := resolveSecret(c.Token, c.TokenFile, c.TokenEnv)
		if err != nil {
			return nil, fmt.Errorf("feishu_configs[%d].token: %w", i, err)
		}
		sec, err := resolveSecret(c.Secret, c.SecretFile, c.SecretEnv)
		if err != nil {
			return nil, fmt.Errorf("feishu_configs[%d].secret: %w", i, err)
		}
		add("feishu", i, &Feishu{url: trimSlash(c.URL) + "/" + tok, secret: sec, msgType: cmpOr(c.MsgType, "interactive"),
			render: rend(c.Language), now: o.Now, post: httpPoster{client: client, display: redactURL(trimSlash(c.URL)) + "/<token>"}},
			resolvedOn(c.SendResolved))
	}
	for i := range rc.MQTTConfigs {
		c := &rc.MQTTConfigs[i]
		if o.Publish == nil {
			return nil, errors.New("mqtt_configs need an MQTT client, and none was given (Options.Publish)")
		}
		qos := byte(1)
		if c.QoS != nil {
			qos = *c.QoS
		}
		add("mqtt", i, &MQTT{topic: cmpOr(c.Topic, defaultMQTTTopic), qos: qos, retain: c.Retain, publish: o.Publish, now: o.Now},
			resolvedOn(c.SendResolved))
	}
	return out, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
