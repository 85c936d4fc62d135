package notify

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// route is a compiled node of the routing tree, with every inherited value filled in.
type route struct {
	key            string // stable across restarts for the same config: the notification log uses it
	receiver       string
	matchers       Matchers
	groupBy        []string
	groupByAll     bool
	groupWait      time.Duration
	groupInterval  time.Duration
	repeatInterval time.Duration
	cont           bool
	children       []*route
}

// compileRoute builds the tree; cfg has been validated.
func compileRoute(cfg *Route, parent *route, key string) (*route, error) {
	r := &route{key: key, cont: cfg.Continue}
	if parent != nil {
		r.receiver, r.groupBy, r.groupByAll = parent.receiver, parent.groupBy, parent.groupByAll
		r.groupWait, r.groupInterval, r.repeatInterval = parent.groupWait, parent.groupInterval, parent.repeatInterval
	}
	if cfg.Receiver != "" {
		r.receiver = cfg.Receiver
	}
	if cfg.GroupBy != nil {
		r.groupBy, r.groupByAll = nil, false
		for _, l := range cfg.GroupBy {
			if l == "..." {
				r.groupByAll = true
				continue
			}
			r.groupBy = append(r.groupBy, l)
		}
		slices.Sort(r.groupBy)
	}
	if cfg.GroupWait != nil {
		r.groupWait = *cfg.GroupWait
	}
	if cfg.GroupInterval != nil {
		r.groupInterval = *cfg.GroupInterval
	}
	if cfg.RepeatInterval != nil {
		r.repeatInterval = *cfg.RepeatInterval
	}
	if r.groupInterval <= 0 || r.repeatInterval <= 0 || r.groupWait < 0 {
		return nil, fmt.Errorf("route %s: group_interval and repeat_interval must be positive and group_wait not negative", key)
	}
	for _, s := range cfg.Matchers {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", key, err)
		}
		r.matchers = append(r.matchers, m)
	}
	seen := map[string]bool{}
	for i := range cfg.Routes {
		child := &cfg.Routes[i]
		ck := key + "/" + matcherKey(child.Matchers)
		if seen[ck] {
			// Siblings with the same matchers need the index to keep their logs apart.
			ck = fmt.Sprintf("%s/%d", ck, i)
		}
		seen[ck] = true
		c, err := compileRoute(child, r, ck)
		if err != nil {
			return nil, err
		}
		r.children = append(r.children, c)
	}
	return r, nil
}

func matcherKey(ss []string) string {
	ms := make(Matchers, 0, len(ss))
	for _, s := range ss {
		if m, err := ParseMatcher(s); err == nil {
			ms = append(ms, m)
		}
	}
	return ms.String()
}

// Router is the intake stage that finds the routes an alert takes, Alertmanager's way: depth
// first, the deepest matching routes win, and a matching route stops its later siblings unless
// it says continue.
type Router struct{ root *route }

// Match returns the routes for a label set; at least the root.
func (rt Router) Match(labels map[string]string) []*route {
	return rt.root.match(labels)
}

func (r *route) match(labels map[string]string) []*route {
	if !r.matchers.Matches(labels) {
		return nil
	}
	var out []*route
	for _, c := range r.children {
		m := c.match(labels)
		out = append(out, m...)
		if len(m) > 0 && !c.cont {
			break
		}
	}
	if len(out) == 0 {
		out = []*route{r}
	}
	return out
}

// groupLabels is the part of labels the route groups by.
func (r *route) groupLabels(labels map[string]string) map[string]string {
	if r.groupByAll {
		return maps.Clone(labels)
	}
	out := make(map[string]string, len(r.groupBy))
	for _, l := range r.groupBy {
		if v, ok := labels[l]; ok {
			out[l] = v
		}
	}
	return out
}
