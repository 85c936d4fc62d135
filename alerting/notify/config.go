package notify

import (
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// Defaults, documented in docs/alerting-notify.md.
const (
	defaultGroupWait      = 30 * time.Second
	defaultGroupInterval  = 5 * time.Minute
	defaultRepeatInterval = 4 * time.Hour
	defaultResolveTimeout = 5 * time.Minute
	defaultTimeout        = 10 * time.Second
	defaultInitialBackoff = time.Second
	defaultMaxBackoff     = time.Minute
	defaultMaxAttempts    = 5
	defaultLogRetention   = 30 * 24 * time.Hour
	defaultLanguage       = "zh"
	defaultMQTTTopic      = "aqualoop/v1/{site}/alerts"

	DefaultWeComURL    = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
	DefaultDingTalkURL = "https://oapi.dingtalk.com/robot/send"
	DefaultFeishuURL   = "https://open.feishu.cn/open-apis/bot/v2/hook"
)

// Config is the notifier configuration, Alertmanager-like: a routing tree and receivers.
type Config struct {
	Global    Global     `yaml:"global"`
	Route     Route      `yaml:"route"`
	Receivers []Receiver `yaml:"receivers"`
}

// Global holds settings every receiver shares.
type Global struct {
	// ExternalURL is the console's address, put into payloads so a reader can click through.
	ExternalURL string `yaml:"external_url"`
	// ResolveTimeout resolves a firing alert the core stopped re-sending. It must be longer than
	// the core's evaluation interval.
	ResolveTimeout time.Duration `yaml:"resolve_timeout"`
	// Language of rendered messages ("zh" or "en") unless a receiver says otherwise.
	Language string `yaml:"language"`
	// TimeZone in which messages show times, an IANA name; default the platform's local zone.
	TimeZone string `yaml:"time_zone"`
	// Timeout bounds one request to a receiver.
	Timeout time.Duration `yaml:"timeout"`
	Retry   Retry         `yaml:"retry"`
	// LogRetention is how long the notification log keeps its entries.
	LogRetention time.Duration `yaml:"log_retention"`
}

// Retry bounds the attempts of one flush to one integration. A flush that still fails is tried
// again at the group's next tick (group_interval), with the alerts current then.
type Retry struct {
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	MaxAttempts    int           `yaml:"max_attempts"`
}

// Route is a node of the routing tree. Unset keys are inherited from the parent.
type Route struct {
	Receiver string `yaml:"receiver"`
	// Matchers are `label op "value"` with op one of =, !=, =~, !~; all must match.
	Matchers []string `yaml:"matchers"`
	// GroupBy lists the labels that split alerts into notifications; "..." groups by all labels.
	GroupBy        []string       `yaml:"group_by"`
	GroupWait      *time.Duration `yaml:"group_wait"`
	GroupInterval  *time.Duration `yaml:"group_interval"`
	RepeatInterval *time.Duration `yaml:"repeat_interval"`
	// Continue goes on to the next sibling after this route matched.
	Continue bool    `yaml:"continue"`
	Routes   []Route `yaml:"routes"`
}

// Receiver is a named set of integrations.
type Receiver struct {
	Name                string               `yaml:"name"`
	WebhookConfigs      []WebhookConfig      `yaml:"webhook_configs"`
	AlertmanagerConfigs []AlertmanagerConfig `yaml:"alertmanager_configs"`
	EmailConfigs        []EmailConfig        `yaml:"email_configs"`
	WeComConfigs        []WeComConfig        `yaml:"wecom_configs"`
	DingTalkConfigs     []DingTalkConfig     `yaml:"dingtalk_configs"`
	FeishuConfigs       []FeishuConfig       `yaml:"feishu_configs"`
	MQTTConfigs         []MQTTConfig         `yaml:"mqtt_configs"`
}

// HTTPAuth is optional authentication of an HTTP receiver: a bearer token or basic auth. Secrets
// come inline, from a file (*_file) or from an environment variable (*_env).
type HTTPAuth struct {
	BearerToken     string    `yaml:"bearer_token"`
	BearerTokenFile string    `yaml:"bearer_token_file"`
	BearerTokenEnv  string    `yaml:"bearer_token_env"`
	BasicAuth       BasicAuth `yaml:"basic_auth"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// WebhookConfig posts the Alertmanager webhook payload (version 4).
type WebhookConfig struct {
	URL          string `yaml:"url"`
	SendResolved *bool  `yaml:"send_resolved"`
	// MaxAlerts caps the alerts of one payload (0: all); the rest are counted in truncatedAlerts.
	MaxAlerts int      `yaml:"max_alerts"`
	Auth      HTTPAuth `yaml:",inline"`
}

// AlertmanagerConfig pushes alerts to a Prometheus Alertmanager over POST /api/v2/alerts.
type AlertmanagerConfig struct {
	// URL is Alertmanager's base address, e.g. http://alertmanager:9093.
	URL  string   `yaml:"url"`
	Auth HTTPAuth `yaml:",inline"`
}

// EmailConfig sends multipart (text and HTML) e-mail over SMTP.
type EmailConfig struct {
	To        []string `yaml:"to"`
	From      string   `yaml:"from"`
	Smarthost string   `yaml:"smarthost"` // host:port
	Hello     string   `yaml:"hello"`
	// RequireTLS refuses to send without STARTTLS (default true); port 465 uses implicit TLS.
	RequireTLS         *bool  `yaml:"require_tls"`
	AuthUsername       string `yaml:"auth_username"`
	AuthPassword       string `yaml:"auth_password"`
	AuthPasswordFile   string `yaml:"auth_password_file"`
	AuthPasswordEnv    string `yaml:"auth_password_env"`
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	Language           string `yaml:"language"`
	SendResolved       *bool  `yaml:"send_resolved"`
}

// WeComConfig sends markdown to a WeCom (企业微信) group robot.
type WeComConfig struct {
	URL          string `yaml:"url"`
	Key          string `yaml:"key"`
	KeyFile      string `yaml:"key_file"`
	KeyEnv       string `yaml:"key_env"`
	Language     string `yaml:"language"`
	SendResolved *bool  `yaml:"send_resolved"`
}

// DingTalkConfig sends markdown to a DingTalk (钉钉) custom robot, signing the URL when a secret
// is set (the robot's 加签 security setting).
type DingTalkConfig struct {
	URL             string   `yaml:"url"`
	AccessToken     string   `yaml:"access_token"`
	AccessTokenFile string   `yaml:"access_token_file"`
	AccessTokenEnv  string   `yaml:"access_token_env"`
	Secret          string   `yaml:"secret"`
	SecretFile      string   `yaml:"secret_file"`
	SecretEnv       string   `yaml:"secret_env"`
	AtMobiles       []string `yaml:"at_mobiles"`
	AtAll           bool     `yaml:"at_all"`
	Language        string   `yaml:"language"`
	SendResolved    *bool    `yaml:"send_resolved"`
}

// FeishuConfig sends to a Feishu (飞书) custom bot, signing the body when a secret is set.
type FeishuConfig struct {
	URL          string `yaml:"url"`
	Token        string `yaml:"token"`
	TokenFile    string `yaml:"token_file"`
	TokenEnv     string `yaml:"token_env"`
	Secret       string `yaml:"secret"`
	SecretFile   string `yaml:"secret_file"`
	SecretEnv    string `yaml:"secret_env"`
	MsgType      string `yaml:"msg_type"` // interactive (default), post or text
	Language     string `yaml:"language"`
	SendResolved *bool  `yaml:"send_resolved"`
}

// MQTTConfig publishes each notification as JSON on a topic per site.
type MQTTConfig struct {
	// Topic is a template; {site}, {severity} and {alertname} are replaced by the alert's labels.
	Topic        string `yaml:"topic"`
	QoS          *byte  `yaml:"qos"`
	Retain       bool   `yaml:"retain"`
	SendResolved *bool  `yaml:"send_resolved"`
}

// UsesMQTT reports whether any receiver publishes to MQTT, so the caller knows to provide
// Options.Publish.
func (c *Config) UsesMQTT() bool {
	for _, r := range c.Receivers {
		if len(r.MQTTConfigs) > 0 {
			return true
		}
	}
	return false
}

// Default fills in what the file left out.
func (c *Config) Default() {
	g := &c.Global
	if g.ResolveTimeout == 0 {
		g.ResolveTimeout = defaultResolveTimeout
	}
	if g.Language == "" {
		g.Language = defaultLanguage
	}
	if g.Timeout == 0 {
		g.Timeout = defaultTimeout
	}
	if g.Retry.InitialBackoff == 0 {
		g.Retry.InitialBackoff = defaultInitialBackoff
	}
	if g.Retry.MaxBackoff == 0 {
		g.Retry.MaxBackoff = defaultMaxBackoff
	}
	if g.Retry.MaxAttempts == 0 {
		g.Retry.MaxAttempts = defaultMaxAttempts
	}
	if g.LogRetention == 0 {
		g.LogRetention = defaultLogRetention
	}
	r := &c.Route
	if r.GroupBy == nil {
		r.GroupBy = []string{"alertname", "site"}
	}
	setDur := func(p **time.Duration, d time.Duration) {
		if *p == nil {
			*p = &d
		}
	}
	setDur(&r.GroupWait, defaultGroupWait)
	setDur(&r.GroupInterval, defaultGroupInterval)
	setDur(&r.RepeatInterval, defaultRepeatInterval)
	for i := range c.Receivers {
		rc := &c.Receivers[i]
		for j := range rc.WeComConfigs {
			if rc.WeComConfigs[j].URL == "" {
				rc.WeComConfigs[j].URL = DefaultWeComURL
			}
		}
		for j := range rc.DingTalkConfigs {
			if rc.DingTalkConfigs[j].URL == "" {
				rc.DingTalkConfigs[j].URL = DefaultDingTalkURL
			}
		}
		for j := range rc.FeishuConfigs {
			f := &rc.FeishuConfigs[j]
			if f.URL == "" {
				f.URL = DefaultFeishuURL
			}
			if f.MsgType == "" {
				f.MsgType = "interactive"
			}
		}
		for j := range rc.MQTTConfigs {
			m := &rc.MQTTConfigs[j]
			if m.Topic == "" {
				m.Topic = defaultMQTTTopic
			}
			if m.QoS == nil {
				q := byte(1)
				m.QoS = &q
			}
		}
		for j := range rc.EmailConfigs {
			if rc.EmailConfigs[j].RequireTLS == nil {
				t := true
				rc.EmailConfigs[j].RequireTLS = &t
			}
		}
	}
}

// Validate reports every problem under path ("" at the top of a file of its own).
func (c *Config) Validate(p *config.Problems, path string) {
	at := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	g := &c.Global
	if g.ExternalURL != "" {
		if err := checkURL(g.ExternalURL); err != nil {
			p.Addf(at("global.external_url"), "%v", err)
		}
	}
	if g.Language != "zh" && g.Language != "en" {
		p.Addf(at("global.language"), "%q is not one of zh, en", g.Language)
	}
	if g.TimeZone != "" {
		if _, err := time.LoadLocation(g.TimeZone); err != nil {
			p.Addf(at("global.time_zone"), "%q is not a known time zone (try Asia/Shanghai)", g.TimeZone)
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			p.Addf(at(key), "must be positive, got %v", d)
		}
	}
	positive("global.resolve_timeout", g.ResolveTimeout)
	positive("global.timeout", g.Timeout)
	positive("global.retry.initial_backoff", g.Retry.InitialBackoff)
	positive("global.log_retention", g.LogRetention)
	if g.Retry.MaxBackoff < g.Retry.InitialBackoff {
		p.Addf(at("global.retry.max_backoff"), "%v is below initial_backoff %v", g.Retry.MaxBackoff, g.Retry.InitialBackoff)
	}
	if g.Retry.MaxAttempts < 1 || g.Retry.MaxAttempts > 100 {
		p.Addf(at("global.retry.max_attempts"), "%d is outside 1..100", g.Retry.MaxAttempts)
	}

	names := map[string]int{}
	for i := range c.Receivers {
		rc := &c.Receivers[i]
		rp := at(fmt.Sprintf("receivers[%d]", i))
		switch {
		case rc.Name == "":
			p.Addf(rp+".name", "is required")
		case names[rc.Name] > 0:
			p.Addf(rp+".name", "%q is already the name of receivers[%d]", rc.Name, names[rc.Name]-1)
		default:
			names[rc.Name] = i + 1
		}
		rc.validate(p, rp)
	}

	if c.Route.Receiver == "" {
		p.Addf(at("route.receiver"), "is required: the root route needs a default receiver")
	}
	if len(c.Route.Matchers) > 0 {
		p.Addf(at("route.matchers"), "the root route matches every alert and cannot have matchers")
	}
	c.Route.validate(p, at("route"), names)
}

func (r *Route) validate(p *config.Problems, path string, receivers map[string]int) {
	if r.Receiver != "" && receivers[r.Receiver] == 0 {
		p.Addf(path+".receiver", "%q is not the name of any receiver%s", r.Receiver, suggest(r.Receiver, receivers))
	}
	for i, s := range r.Matchers {
		if _, err := ParseMatcher(s); err != nil {
			p.Addf(fmt.Sprintf("%s.matchers[%d]", path, i), "%v", err)
		}
	}
	for i, l := range r.GroupBy {
		if l != "..." && !validLabelName(l) {
			p.Addf(fmt.Sprintf("%s.group_by[%d]", path, i), "%q is not a label name (or \"...\" for all labels)", l)
		}
	}
	if r.GroupWait != nil && *r.GroupWait < 0 {
		p.Addf(path+".group_wait", "must not be negative, got %v", *r.GroupWait)
	}
	if r.GroupInterval != nil && *r.GroupInterval <= 0 {
		p.Addf(path+".group_interval", "must be positive, got %v", *r.GroupInterval)
	}
	if r.RepeatInterval != nil && *r.RepeatInterval <= 0 {
		p.Addf(path+".repeat_interval", "must be positive, got %v", *r.RepeatInterval)
	}
	for i := range r.Routes {
		r.Routes[i].validate(p, fmt.Sprintf("%s.routes[%d]", path, i), receivers)
	}
}

func suggest(name string, receivers map[string]int) string {
	var known []string
	for k := range receivers {
		known = append(known, k)
	}
	if len(known) == 0 {
		return " (no receivers are defined)"
	}
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

func (rc *Receiver) validate(p *config.Problems, path string) {
	// A receiver without integrations is allowed, like Alertmanager's null receiver: alerts
	// routed to it are dropped on purpose.
	for i := range rc.WebhookConfigs {
		w := &rc.WebhookConfigs[i]
		wp := fmt.Sprintf("%s.webhook_configs[%d]", path, i)
		requireURL(p, wp+".url", w.URL)
		if w.MaxAlerts < 0 {
			p.Addf(wp+".max_alerts", "must not be negative")
		}
		w.Auth.validate(p, wp)
	}
	for i := range rc.AlertmanagerConfigs {
		a := &rc.AlertmanagerConfigs[i]
		ap := fmt.Sprintf("%s.alertmanager_configs[%d]", path, i)
		requireURL(p, ap+".url", a.URL)
		a.Auth.validate(p, ap)
	}
	for i := range rc.EmailConfigs {
		e := &rc.EmailConfigs[i]
		ep := fmt.Sprintf("%s.email_configs[%d]", path, i)
		if len(e.To) == 0 {
			p.Addf(ep+".to", "is required: at least one address")
		}
		for j, a := range e.To {
			if _, err := mail.ParseAddress(a); err != nil {
				p.Addf(fmt.Sprintf("%s.to[%d]", ep, j), "%q is not an e-mail address", a)
			}
		}
		if e.From == "" {
			p.Addf(ep+".from", "is required")
		} else if _, err := mail.ParseAddress(e.From); err != nil {
			p.Addf(ep+".from", "%q is not an e-mail address", e.From)
		}
		if e.Smarthost == "" {
			p.Addf(ep+".smarthost", "is required: host:port of the SMTP server")
		} else if _, port, err := splitHostPort(e.Smarthost); err != nil || port == "" {
			p.Addf(ep+".smarthost", "%q is not host:port (try smtp.example.com:587)", e.Smarthost)
		}
		secretOnce(p, ep, "auth_password", e.AuthPassword, e.AuthPasswordFile, e.AuthPasswordEnv)
		if e.AuthUsername == "" && (e.AuthPassword != "" || e.AuthPasswordFile != "" || e.AuthPasswordEnv != "") {
			p.Addf(ep+".auth_username", "is required when a password is set")
		}
		checkLanguage(p, ep, e.Language)
	}
	for i := range rc.WeComConfigs {
		w := &rc.WeComConfigs[i]
		wp := fmt.Sprintf("%s.wecom_configs[%d]", path, i)
		requireURL(p, wp+".url", w.URL)
		requireSecret(p, wp, "key", w.Key, w.KeyFile, w.KeyEnv)
		checkLanguage(p, wp, w.Language)
	}
	for i := range rc.DingTalkConfigs {
		d := &rc.DingTalkConfigs[i]
		dp := fmt.Sprintf("%s.dingtalk_configs[%d]", path, i)
		requireURL(p, dp+".url", d.URL)
		requireSecret(p, dp, "access_token", d.AccessToken, d.AccessTokenFile, d.AccessTokenEnv)
		secretOnce(p, dp, "secret", d.Secret, d.SecretFile, d.SecretEnv)
		checkLanguage(p, dp, d.Language)
	}
	for i := range rc.FeishuConfigs {
		f := &rc.FeishuConfigs[i]
		fp := fmt.Sprintf("%s.feishu_configs[%d]", path, i)
		requireURL(p, fp+".url", f.URL)
		requireSecret(p, fp, "token", f.Token, f.TokenFile, f.TokenEnv)
		secretOnce(p, fp, "secret", f.Secret, f.SecretFile, f.SecretEnv)
		switch f.MsgType {
		case "interactive", "post", "text":
		default:
			p.Addf(fp+".msg_type", "%q is not one of interactive, post, text", f.MsgType)
		}
		checkLanguage(p, fp, f.Language)
	}
	for i := range rc.MQTTConfigs {
		m := &rc.MQTTConfigs[i]
		mp := fmt.Sprintf("%s.mqtt_configs[%d]", path, i)
		if err := checkTopicTemplate(m.Topic); err != nil {
			p.Addf(mp+".topic", "%v", err)
		}
		if m.QoS != nil && *m.QoS > 2 {
			p.Addf(mp+".qos", "%d is not 0, 1 or 2", *m.QoS)
		}
	}
}

func (a *HTTPAuth) validate(p *config.Problems, path string) {
	secretOnce(p, path, "bearer_token", a.BearerToken, a.BearerTokenFile, a.BearerTokenEnv)
	secretOnce(p, path+".basic_auth", "password", a.BasicAuth.Password, a.BasicAuth.PasswordFile, a.BasicAuth.PasswordEnv)
	hasBearer := a.BearerToken != "" || a.BearerTokenFile != "" || a.BearerTokenEnv != ""
	if hasBearer && a.BasicAuth.Username != "" {
		p.Addf(path+".basic_auth", "set either bearer_token or basic_auth, not both")
	}
}

func requireURL(p *config.Problems, key, u string) {
	if u == "" {
		p.Addf(key, "is required")
		return
	}
	if err := checkURL(u); err != nil {
		p.Addf(key, "%v", err)
	}
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", redactURL(s))
	}
	return nil
}

// secretOnce reports a secret given in more than one way.
func secretOnce(p *config.Problems, path, key, inline, file, env string) {
	n := 0
	for _, s := range []string{inline, file, env} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		p.Addf(path+"."+key, "set only one of %s, %s_file, %s_env", key, key, key)
	}
}

func requireSecret(p *config.Problems, path, key, inline, file, env string) {
	if inline == "" && file == "" && env == "" {
		p.Addf(path+"."+key, "is required (or %s_file, %s_env)", key, key)
		return
	}
	secretOnce(p, path, key, inline, file, env)
}

func checkLanguage(p *config.Problems, path, lang string) {
	if lang != "" && lang != "zh" && lang != "en" {
		p.Addf(path+".language", "%q is not one of zh, en", lang)
	}
}

// resolveSecret reads a secret from where the config says it is.
func resolveSecret(inline, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("read secret: environment variable %s is not set", env)
		}
		return v, nil
	}
	return inline, nil
}

func splitHostPort(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", fmt.Errorf("no port in %q", s)
	}
	host, port = s[:i], s[i+1:]
	if _, err := strconv.Atoi(port); err != nil {
		return host, "", fmt.Errorf("bad port in %q", s)
	}
	return strings.Trim(host, "[]"), port, nil
}

// redactURL hides a URL's password and query (robots carry their keys there).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable url>"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" {
		u.RawQuery = "<redacted>"
	}
	return u.String()
}

// LoadFile reads a notifier configuration from a YAML file of its own, with known-fields decoding,
// defaults and every problem reported as file:line: key: message.
func LoadFile(path string) (Config, error) {
	var f file
	if err := config.Load(path, &f); err != nil {
		return Config{}, err
	}
	return f.Config, nil
}

// ParseFile is LoadFile for data in memory; name is used in messages.
func ParseFile(name string, data []byte) (Config, error) {
	var f file
	if err := config.Parse(name, data, &f); err != nil {
		return Config{}, err
	}
	return f.Config, nil
}

// file adapts Config to collector/config's Validator for a stand-alone notifier file.
type file struct {
	Config `yaml:",inline"`
}

func (f *file) Default()                    { f.Config.Default() }
func (f *file) Validate(p *config.Problems) { f.Config.Validate(p, "") }
