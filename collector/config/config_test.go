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
			want: []string{"f.yaml:5: colour: unknown key"},
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
