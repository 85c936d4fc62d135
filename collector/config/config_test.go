package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Name  string `yaml:"name"`
	Order string `yaml:"byte_order"`
	Type  string `yaml:"type"`
	Slave uint8  `yaml:"slave_id"`
}

type outer struct {
	Site     string        `yaml:"site"`
	Interval time.Duration `yaml:"interval"`
	Items    []inner       `yaml:"items"`
}

func (o *outer) Default() {
	if o.Interval == 0 {
		o.Interval = 15 * time.Second
	}
}

func (o *outer) Validate(p *Problems) {
	if o.Site == "" {
		p.Addf("site", "is required")
	}
	for i, it := range o.Items {
		if it.Order != "ABCD" && it.Order != "CDAB" {
			p.Addf("items["+itoa(i)+"].byte_order", "%q is not one of ABCD, CDAB", it.Order)
		}
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // substrings of the error, in order; nil means no error
		notWant string   // must not appear in the error
		wantInt time.Duration
	}{
		{
			name:    "valid with default",
			in:      "site: demo\nitems:\n  - {name: a, byte_order: CDAB}\n",
			wantInt: 15 * time.Second,
		},
		{
			name:    "duration as text",
			in:      "site: demo\ninterval: 2s\n",
			wantInt: 2 * time.Second,
		},
		{
			name: "unknown key names its line",
			in:   "site: demo\nitems:\n  - name: a\n    byte_order: ABCD\n    colour: red\n",
			want: []string{"f.yaml:5: items[0].colour: unknown key"},
		},
		{
			name: "nearest key suggested",
			in:   "site: demo\nitems:\n  - name: a\n    byte_order: ABCD\n    data_type: FLOAT32\n    byte_ordr: ABCD\n",
			want: []string{
				`f.yaml:5: items[0].data_type: unknown key (did you mean "type"?)`,
				`f.yaml:6: items[0].byte_ordr: unknown key (did you mean "byte_order"?)`,
			},
		},
		{
			name:    "nothing near",
			in:      "site: demo\nzzzzzz: 1\n",
			want:    []string{"f.yaml:2: zzzzzz: unknown key"},
			notWant: "did you mean",
		},
		{
			// Type errors and unknown keys (in file order), then the validation problems of
			// the rest, all in one run, each with its full path.
			name: "every kind of problem at once",
			in:   "site: \"\"\ninterval: 1min\nitems:\n  - name: a\n    byte_order: XYZ\n    slave_id: 300\n  - name: b\n    byte_order: ABCD\n    slave: 2\n",
			want: []string{
				`f.yaml:2: interval: "1min" is not a duration such as 15s, 2m or 1h30m`,
				`f.yaml:6: items[0].slave_id: 300 is not a whole number from 0 to 255`,
				`f.yaml:9: items[1].slave: unknown key (did you mean "slave_id"?)`,
				`f.yaml:1: site: is required`,
				`f.yaml:5: items[0].byte_order: "XYZ" is not one of ABCD, CDAB`,
			},
		},
		{
			name: "a list where a mapping belongs",
			in:   "site: demo\nitems:\n  - [a, b]\n  - name: b\n    byte_order: ABCD\n",
			want: []string{"f.yaml:3: items[0]: is a list, want a mapping of keys"},
		},
		{
			name: "a scalar where a list belongs",
			in:   "site: demo\nitems: none\n",
			want: []string{`f.yaml:2: items: is "none", want a list`},
		},
		{
			name: "every validation problem with its line",
			in:   "site: \"\"\nitems:\n  - name: a\n    byte_order: ABCD\n  - name: b\n    byte_order: XYZ\n",
			want: []string{"f.yaml:1: site: is required", "f.yaml:6: items[1].byte_order: \"XYZ\" is not one of ABCD, CDAB"},
		},
		{
			name: "wrong type",
			in:   "site: demo\ninterval: often\n",
			want: []string{"f.yaml:2:", "often"},
		},
		{
			name: "syntax error",
			in:   "site: demo\nitems: [\n",
			want: []string{"f.yaml:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			err := Parse("f.yaml", []byte(tt.in), &o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if o.Interval != tt.wantInt {
					t.Errorf("interval = %v, want %v", o.Interval, tt.wantInt)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			msg := err.Error()
			if tt.notWant != "" && strings.Contains(msg, tt.notWant) {
				t.Errorf("error %q contains %q", msg, tt.notWant)
			}
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
