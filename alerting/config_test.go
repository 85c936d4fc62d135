package alerting

import (
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/analytics"
)

func demoSite(t testing.TB) *analytics.Site {
	t.Helper()
	s, err := analytics.LoadSite("../configs/demo/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRulesFilesNameFileLineAndKey(t *testing.T) {
	sites := []*analytics.Site{demoSite(t)}
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/bad-rules.yaml", []string{
			`bad-rules.yaml:4: rules[0].kind: unknown rule kind "leakage"`,
			`bad-rules.yaml:7: rules[1].meters[1]: unknown meter "M99"`,
			`bad-rules.yaml:11: rules[2].clear: clear (0.06) must be at or below threshold (0.05)`,
			`bad-rules.yaml:14: rules[3].node: kind plan does not read node`,
			`bad-rules.yaml:14: rules[3].node: unknown node "ws9"`,
			`bad-rules.yaml:16: silences[0].matchers[1]: matcher "meter~\"M01\"" is not name="value"`,
		}},
		{"testdata/unknown-key.yaml", []string{`unknown-key.yaml:4: rules[0].intervalz: unknown key (did you mean "intervals"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadRules(tt.file, sites)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDemoRulesLoad(t *testing.T) {
	f, err := LoadRules("../configs/demo/alerts.yaml", []*analytics.Site{demoSite(t)})
	if err != nil {
		t.Fatal(err)
	}
	rs := siteRules(demoSite(t), []*RulesFile{f})
	names := map[string]string{}
	for _, r := range rs {
		names[r.Name] = r.Kind
	}
	for name, kind := range map[string]string{"meter_stale": KindStale, "plan_threshold": KindPlan, "leak_burst_municipal": KindBurst,
		"leak_cusum_site": KindCUSUM, "edge_offline": KindEdgeOffline} {
		if names[name] != kind {
			t.Errorf("effective rule %s has kind %q, want %s", name, names[name], kind)
		}
	}
	// A site without a rules file still gets the defaults.
	if n := len(siteRules(demoSite(t), nil)); n != len(DefaultRules()) {
		t.Errorf("site without rules file: %d rules, want the %d defaults", n, len(DefaultRules()))
	}
}

func TestMatchers(t *testing.T) {
	labels := map[string]string{"alertname": "meter_stale", "meter": "M07", "site": "demo"}
	tests := []struct {
		in      string
		match   bool
		wantErr bool
	}{
		{`meter="M07"`, true, false},
		{`meter!="M07"`, false, false},
		{`alertname=~"meter_.*"`, true, false},
		{`alertname=~"stale"`, false, false}, // anchored
		{`alertname!~"leak.*"`, true, false},
		{`edge=""`, true, false}, // a missing label matches ""
		{`meter=~"(M07"`, false, true},
		{`1meter="x"`, false, true},
		{`meter=="x"`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMatcher(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && m.Matches(labels) != tt.match {
				t.Errorf("Matches = %v, want %v", !tt.match, tt.match)
			}
		})
	}
}
