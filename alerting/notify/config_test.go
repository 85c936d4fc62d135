package notify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// TestExampleConfig loads the shipped example, as every file in configs/ must be.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "notify.yml")
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	if cfg.Route.Receiver != "ops" || len(cfg.Route.Routes) != 2 || *cfg.Route.Routes[0].GroupWait != 10*time.Second {
		t.Errorf("route not as written: %+v", cfg.Route)
	}
	if got := cfg.Receivers[1].WeComConfigs[0].URL; got != DefaultWeComURL {
		t.Errorf("wecom url default = %q", got)
	}
	if q := *cfg.Receivers[2].MQTTConfigs[0].QoS; q != 1 {
		t.Errorf("mqtt qos = %d", q)
	}
	r, err := compileRoute(&cfg.Route, nil, "{}")
	if err != nil {
		t.Fatal(err)
	}
	got := Router{r}.Match(map[string]string{"alertname": "leak_imbalance", "severity": "critical", "site": "a"})
	if len(got) != 2 || got[0].receiver != "oncall" || got[1].receiver != "scada" || got[0].groupWait != 10*time.Second || got[1].groupInterval != 5*time.Minute {
		t.Errorf("critical leak routes = %v, want oncall (continue) then scada", got)
	}
}

// TestDefaults: an almost empty file gets the documented defaults.
func TestDefaults(t *testing.T) {
	cfg, err := ParseFile("min.yml", []byte("route: {receiver: x}\nreceivers: [{name: x}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Global
	if g.ResolveTimeout != 5*time.Minute || g.Timeout != 10*time.Second || g.Language != "zh" || g.Retry.MaxAttempts != 5 ||
		g.Retry.InitialBackoff != time.Second || g.Retry.MaxBackoff != time.Minute || g.LogRetention != 720*time.Hour {
		t.Errorf("global defaults: %+v", g)
	}
	r := cfg.Route
	if *r.GroupWait != 30*time.Second || *r.GroupInterval != 5*time.Minute || *r.RepeatInterval != 4*time.Hour ||
		strings.Join(r.GroupBy, ",") != "alertname,site" {
		t.Errorf("route defaults: %+v", r)
	}
}

// TestBadConfig: every problem is reported at once, with file, line and key path.
func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "unknown receiver in a route",
			in: `route:
  receiver: ops
  routes:
    - matchers: ['site="a"']
      receiver: Oncall
receivers:
  - name: ops
  - name: oncall
`,
			want: []string{`bad.yml:5: route.routes[0].receiver: "Oncall" is not the name of any receiver (did you mean "oncall"?)`},
		},
		{
			name: "bad matcher regex and operator",
			in: `route:
  receiver: ops
  routes:
    - matchers:
        - 'site=~"(unclosed"'
        - 'severity=="critical"'
        - 'bad label="x"'
receivers:
  - name: ops
`,
			want: []string{
				"bad.yml:5: route.routes[0].matchers[0]: bad regular expression \"(unclosed\"",
				"bad.yml:6: route.routes[0].matchers[1]: \"severity==\\\"critical\\\"\": == is not an operator, use =",
				"bad.yml:7: route.routes[0].matchers[2]: \"bad label\" is not a valid label name",
			},
		},
		{
			name: "missing url and required keys",
			in: `route:
  receiver: ops
receivers:
  - name: ops
    webhook_configs:
      - send_resolved: false
    alertmanager_configs:
      - url: ftp://am:9093
    email_configs:
      - to: ["not an address"]
        smarthost: smtp.example.com
    wecom_configs:
      - {}
    dingtalk_configs:
      - access_token: t
        secret: s
        secret_env: S
    feishu_configs:
      - token: x
        msg_type: card
    mqtt_configs:
      - topic: "aqualoop/v1/{plant}/alerts/#"
`,
			want: []string{
				"bad.yml:6: receivers[0].webhook_configs[0].url: is required",
				`bad.yml:8: receivers[0].alertmanager_configs[0].url: "ftp://am:9093" is not an http(s) URL`,
				`bad.yml:10: receivers[0].email_configs[0].to[0]: "not an address" is not an e-mail address`,
				"bad.yml:10: receivers[0].email_configs[0].from: is required",
				`bad.yml:11: receivers[0].email_configs[0].smarthost: "smtp.example.com" is not host:port (try smtp.example.com:587)`,
				"bad.yml:13: receivers[0].wecom_configs[0].key: is required (or key_file, key_env)",
				"bad.yml:16: receivers[0].dingtalk_configs[0].secret: set only one of secret, secret_file, secret_env",
				`bad.yml:20: receivers[0].feishu_configs[0].msg_type: "card" is not one of interactive, post, text`,
				"bad.yml:22: receivers[0].mqtt_configs[0].topic:",
			},
		},
		{
			name: "unknown key and bad durations",
			in: `route:
  receiver: ops
  group_interval: 0s
  repeat_intervall: 4h
receivers:
  - name: ops
`,
			want: []string{`bad.yml:4: route.repeat_intervall: unknown key (did you mean "repeat_interval"?)`},
		},
		{
			name: "zero interval, duplicate receiver, bad language",
			in: `global:
  language: fr
route:
  receiver: ops
  group_interval: 0s
  group_by: ["site", "bad-label"]
receivers:
  - name: ops
  - name: ops
`,
			want: []string{
				`bad.yml:2: global.language: "fr" is not one of zh, en`,
				"bad.yml:5: route.group_interval: must be positive, got 0s",
				`bad.yml:6: route.group_by[1]: "bad-label" is not a label name`,
				`bad.yml:9: receivers[1].name: "ops" is already the name of receivers[0]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile("bad.yml", []byte(tt.in))
			if err == nil {
				t.Fatal("bad config accepted")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
		})
	}
}

// platformFile embeds the notifier config under a key, as a platform config file would.
type platformFile struct {
	Alerting struct {
		Notify Config `yaml:"notify"`
	} `yaml:"alerting"`
}

func (f *platformFile) Default()                    { f.Alerting.Notify.Default() }
func (f *platformFile) Validate(p *config.Problems) { f.Alerting.Notify.Validate(p, "alerting.notify") }

// TestValidateUnderPath: embedded in a larger file, problems carry the parent key and its line.
func TestValidateUnderPath(t *testing.T) {
	in := "alerting:\n  notify:\n    route:\n      receiver: nobody\n    receivers: [{name: ops}]\n"
	err := config.Parse("serve.yml", []byte(in), &platformFile{})
	want := `serve.yml:4: alerting.notify.route.receiver: "nobody" is not the name of any receiver`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// TestSecretsFromFileAndEnv: secrets are read at New from *_file and *_env.
func TestSecretsFromFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "key")
	if err := os.WriteFile(f, []byte("file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_DT_SECRET", "env-secret")
	got, err := resolveSecret("", f, "")
	if err != nil || got != "file-key" {
		t.Errorf("file secret = %q, %v", got, err)
	}
	got, err = resolveSecret("", "", "TEST_DT_SECRET")
	if err != nil || got != "env-secret" {
		t.Errorf("env secret = %q, %v", got, err)
	}
	if _, err := resolveSecret("", "", "TEST_DT_MISSING"); err == nil {
		t.Error("missing environment variable accepted")
	}
}

func TestMatchers(t *testing.T) {
	labels := map[string]string{"site": "park-a", "severity": "critical"}
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{`site="park-a"`, true, false},
		{`site = "park-b"`, false, false},
		{`site!="park-b"`, true, false},
		{`site=~"park-.*"`, true, false},
		{`site=~"park"`, false, false}, // anchored
		{`site!~"park-.*"`, false, false},
		{`edge=""`, true, false}, // missing label reads as empty
		{`edge!=""`, false, false},
		{`severity=~warning|critical`, true, false},
		{`site=~"("`, false, true},
		{`site`, false, true},
		{`=x`, false, true},
		{`site=="x"`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMatcher(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && m.Matches(labels[m.Name]) != tt.want {
				t.Errorf("Matches = %v, want %v", !tt.want, tt.want)
			}
		})
	}
}
