package auth

import "strings"

// Rule says which role a request needs: the first rule whose methods and pattern match wins.
// Methods is a space-separated list or "*". Pattern is a path of segments where "*" matches one
// segment and a final "**" matches any number, including none.
type Rule struct {
	Methods string
	Pattern string
	Role    Role
}

// Policy is the one table of who may call what. Routes added later fall under its general
// rules: reads of /api/ need a viewer (scoped by the site or park in the path or the site
// query parameter), writes under /api/v1/ an editor, and every other write an admin, so an
// unforeseen write route is denied by default rather than open.
func Policy() []Rule {
	return []Rule{
		{"*", "/api/v1/session", Public}, // login and logout; answered by the Middleware itself
		{"*", "/api/v1/tokens/**", Admin},
		{"*", "/api/v1/audit/**", Admin},
		{"*", "/api/v1/sites/*/reports/**", Auditor},
		{"GET HEAD", "/api/**", Viewer},
		{"POST PUT PATCH DELETE", "/api/v1/**", Editor},
		// The console's static assets, /login, /healthz, /readyz and /metrics (platform health,
		// no water data) are public, as in Grafana and Prometheus.
		{"GET HEAD", "/**", Public},
		{"*", "/**", Admin},
	}
}

// Required returns the role a request needs under rules.
func Required(rules []Rule, method, path string) Role {
	segs := split(path)
	for _, r := range rules {
		if r.Methods != "*" && !hasWord(r.Methods, method) {
			continue
		}
		if match(split(r.Pattern), segs) {
			return r.Role
		}
	}
	return Admin
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if f == w {
			return true
		}
	}
	return false
}

func split(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func match(pat, segs []string) bool {
	for i, p := range pat {
		if p == "**" && i == len(pat)-1 {
			return true
		}
		if i >= len(segs) || (p != "*" && p != segs[i]) {
			return false
		}
	}
	return len(pat) == len(segs)
}

// scopeOf returns the site and park a request names: {site} in /api/v1/sites/{site}/...,
// {park} in /api/v1/parks/{park}/..., and every site query parameter.
func scopeOf(path string, query map[string][]string) (sites []string, park string) {
	segs := split(path)
	if len(segs) >= 4 && segs[0] == "api" && segs[1] == "v1" {
		switch segs[2] {
		case "sites":
			sites = append(sites, segs[3])
		case "parks":
			park = segs[3]
		}
	}
	for _, v := range query["site"] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sites = append(sites, s)
			}
		}
	}
	return sites, park
}
