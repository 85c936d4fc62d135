package notify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MatchType is a matcher's operator.
type MatchType string

// The operators Alertmanager users know.
const (
	MatchEqual     MatchType = "="
	MatchNotEqual  MatchType = "!="
	MatchRegexp    MatchType = "=~"
	MatchNotRegexp MatchType = "!~"
)

// Matcher tests one label. A label that is missing reads as the empty string, as in Alertmanager,
// so `edge!=""` means "has an edge label".
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

// ParseMatcher reads `name op value` where op is one of =, !=, =~, !~ and value may be
// double-quoted (`severity=~"warning|critical"`). Regular expressions are anchored at both ends.
func ParseMatcher(s string) (Matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return Matcher{}, fmt.Errorf("%q is not `label op value` with op one of =, !=, =~, !~", s)
	}
	name := strings.TrimSpace(s[:i])
	if !validLabelName(name) {
		return Matcher{}, fmt.Errorf("%q is not a valid label name", name)
	}
	rest := s[i:]
	var t MatchType
	switch {
	case strings.HasPrefix(rest, "=~"):
		t = MatchRegexp
	case strings.HasPrefix(rest, "!~"):
		t = MatchNotRegexp
	case strings.HasPrefix(rest, "!="):
		t = MatchNotEqual
	case strings.HasPrefix(rest, "="):
		t = MatchEqual
	default:
		return Matcher{}, fmt.Errorf("%q: operator must be one of =, !=, =~, !~", s)
	}
	val := strings.TrimSpace(rest[len(t):])
	if t == MatchEqual && strings.HasPrefix(val, "=") {
		return Matcher{}, fmt.Errorf("%q: == is not an operator, use =", s)
	}
	if strings.HasPrefix(val, `"`) {
		u, err := strconv.Unquote(val)
		if err != nil {
			return Matcher{}, fmt.Errorf("%q: value %s is not a valid quoted string", s, val)
		}
		val = u
	}
	return NewMatcher(name, t, val)
}

// NewMatcher builds a matcher, compiling the regular expression of =~ and !~.
func NewMatcher(name string, t MatchType, value string) (Matcher, error) {
	m := Matcher{Name: name, Type: t, Value: value}
	if t == MatchRegexp || t == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("bad regular expression %q: %w", value, err)
		}
		m.re = re
	}
	return m, nil
}

// Matches tests the label value v.
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

func (m Matcher) String() string { return m.Name + string(m.Type) + quote(m.Value) }

// Matchers is a conjunction: every matcher must match.
type Matchers []Matcher

// Matches tests a label set.
func (ms Matchers) Matches(labels map[string]string) bool {
	for i := range ms {
		if !ms[i].Matches(labels[ms[i].Name]) {
			return false
		}
	}
	return true
}

func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// validLabelName follows Prometheus' classic label name rule, which Alertmanager's API enforces.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
