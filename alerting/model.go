package alerting

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alert is what the notifier pipeline receives: the Alertmanager alert model.
type Alert struct {
	Fingerprint  string
	Status       string // "firing" or "resolved"
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
}

// States of an alert. Acknowledged is a firing alert someone took on; the API shows it as its
// own state.
const (
	StatePending      = "pending"
	StateFiring       = "firing"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
)

// record is one alert instance as the manager keeps and stores it. A fingerprint that fires again
// after it resolved starts a new record, so history is never rewritten.
type record struct {
	ID          int64
	Fingerprint string
	Rule        string
	Kind        string
	Site        string
	Severity    string
	State       string // pending, firing or resolved
	Labels      map[string]string
	Annotations map[string]string
	Value       float64
	ActiveAt    time.Time // when the condition began (pending since)
	StartsAt    time.Time // when it fired
	EndsAt      time.Time // when it resolved
	AckedBy     string
	AckComment  string
	AckedAt     time.Time
	Assignee    string
	AssignedAt  time.Time
	ClosedBy    string
	CloseNote   string
	ClosedAt    time.Time
	// Uses are the meters the alert's figure depends on, for inhibition.
	Uses    []string
	Runbook Runbook
	// SentState is the last state handed to Notify ("" never), SentAt when (platform clock).
	SentState string
	SentAt    time.Time
}

// shownState is the state the API reports.
func (r *record) shownState() string {
	if r.State == StateFiring && !r.AckedAt.IsZero() {
		return StateAcknowledged
	}
	return r.State
}

// fingerprint identifies an alert by its rule and labels, severity left out so an escalation
// from warning to critical stays one alert. Like Alertmanager's, it is FNV-1a 64 over the sorted
// label pairs.
func fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "severity" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// Matcher ops, as in Alertmanager.
const (
	OpEqual    = "="
	OpNotEqual = "!="
	OpRegex    = "=~"
	OpNotRegex = "!~"
)

// Matcher matches one label.
type Matcher struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
	re    *regexp.Regexp
}

var labelRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func labelName(s string) bool { return labelRe.MatchString(s) }

// NewMatcher checks and compiles a matcher; a regex is anchored at both ends, as in Prometheus.
func NewMatcher(name, op, value string) (Matcher, error) {
	m := Matcher{Name: name, Op: op, Value: value}
	if !labelName(name) {
		return m, fmt.Errorf("matcher label %q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
	}
	switch op {
	case OpEqual, OpNotEqual:
	case OpRegex, OpNotRegex:
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return m, fmt.Errorf("matcher %s%s%q: bad regular expression: %v", name, op, value, err)
		}
		m.re = re
	default:
		return m, fmt.Errorf("matcher op %q is not one of =, !=, =~, !~", op)
	}
	return m, nil
}

// ParseMatcher reads `name="value"`, `name!="value"`, `name=~"re"` or `name!~"re"` (quotes
// optional).
func ParseMatcher(s string) (Matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return Matcher{}, fmt.Errorf("matcher %q is not name=\"value\" (ops =, !=, =~, !~)", s)
	}
	name, rest := strings.TrimSpace(s[:i]), s[i:]
	var op string
	for _, o := range []string{OpRegex, OpNotRegex, OpNotEqual, OpEqual} {
		if strings.HasPrefix(rest, o) {
			op = o
			break
		}
	}
	if op == "" {
		return Matcher{}, fmt.Errorf("matcher %q has no op (=, !=, =~, !~)", s)
	}
	v := strings.TrimSpace(rest[len(op):])
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	} else if strings.ContainsAny(v, `"`) {
		return Matcher{}, fmt.Errorf("matcher %q has an unbalanced quote", s)
	}
	return NewMatcher(name, op, v)
}

// Matches tests one label set; a missing label matches as "".
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case OpEqual:
		return v == m.Value
	case OpNotEqual:
		return v != m.Value
	case OpRegex:
		return m.re.MatchString(v)
	case OpNotRegex:
		return !m.re.MatchString(v)
	}
	return false
}

func (m Matcher) String() string { return fmt.Sprintf("%s%s%q", m.Name, m.Op, m.Value) }

// Silence mutes the alerts all of whose matchers match, between StartsAt and EndsAt.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Author    string    `json:"author"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
	// File names the rules file of a standing silence, which the API cannot expire.
	File string `json:"file,omitempty"`
}

// Active reports whether the silence is in force at t.
func (s *Silence) Active(t time.Time) bool { return !t.Before(s.StartsAt) && t.Before(s.EndsAt) }

// Mutes reports whether the silence mutes an alert with these labels at t.
func (s *Silence) Mutes(labels map[string]string, t time.Time) bool {
	if !s.Active(t) {
		return false
	}
	for _, m := range s.Matchers {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}
