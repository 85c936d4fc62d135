// Package auth decides who may call the platform's HTTP API and records what they wrote. It
// follows what operators of Grafana and InfluxDB already know: API tokens that are shown once and
// stored hashed, four roles (viewer, auditor, editor, admin) of which the viewer can be scoped
// to some sites or one park, browser sessions by cookie with a CSRF header, an optional
// authenticating reverse proxy (oauth2-proxy and the like) that names the user in a header,
// and an audit log of every write.
//
// Who needs which role is one policy table keyed by method and path pattern (Policy), so a
// route another package adds is covered the day it is mounted: reads need a viewer, writes under
// /api/v1/ an editor, anything else that writes an admin. The Middleware authenticates,
// authorises, checks the caller's site scope, enforces JSON-only writes and CSRF, sets the
// secure headers and writes the audit log; handlers that list sites filter with SiteAllowed.
//
// State lives in the platform's state database (SQLite): tables auth_tokens, auth_sessions and
// auth_audit, created by Open.
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Role is what a caller may do. Each role includes the ones below it.
type Role int

// Roles in increasing power. Public is what needs no credential.
const (
	Public Role = iota
	Viewer
	Auditor
	Editor
	Admin
)

var roleNames = []string{"public", "viewer", "auditor", "editor", "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads a role name (viewer, auditor, editor, admin).
func ParseRole(s string) (Role, error) {
	i := slices.Index(roleNames, strings.ToLower(strings.TrimSpace(s)))
	if i <= 0 {
		return 0, fmt.Errorf("role %q is not one of viewer, auditor, editor, admin", s)
	}
	return Role(i), nil
}

// Principal is an authenticated caller.
type Principal struct {
	Name    string   `json:"name"` // the token's name, the proxy's user, or "open"
	Role    Role     `json:"-"`
	TokenID string   `json:"token_id,omitempty"`
	Sites   []string `json:"sites,omitempty"` // scope: empty with no Park means every site
	Park    string   `json:"park,omitempty"`
	Via     string   `json:"via"` // token, session, proxy or open

	scope map[string]bool // the sites of Sites and Park; nil means every site
	csrf  string          // a session's CSRF token
}

// public is p without its session secret, as handlers see it.
func (p Principal) public() Principal {
	p.csrf = ""
	return p
}

// Scoped reports whether the principal sees only some sites.
func (p Principal) Scoped() bool { return p.Role < Admin && (len(p.Sites) > 0 || p.Park != "") }

// Allows reports whether site is in the principal's scope. A principal made outside the
// Middleware (WithPrincipal in a test) has its park unresolved and sees only its listed Sites.
func (p Principal) Allows(site string) bool {
	switch {
	case !p.Scoped():
		return true
	case p.scope != nil:
		return p.scope[site]
	}
	return slices.Contains(p.Sites, site)
}

// resolve fills the scope from Sites and Park, with parkSites mapping a park to its sites.
func (p *Principal) resolve(parkSites func(string) []string) {
	if len(p.Sites) == 0 && p.Park == "" {
		p.scope = nil
		return
	}
	p.scope = map[string]bool{}
	for _, s := range p.Sites {
		p.scope[s] = true
	}
	if p.Park != "" && parkSites != nil {
		for _, s := range parkSites(p.Park) {
			p.scope[s] = true
		}
	}
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p (the Middleware does this; tests may too).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the caller of a request that passed the Middleware.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// SiteAllowed reports whether the caller may see site. A request that did not pass the
// Middleware (a handler mounted without it, as in a package's own tests) sees every site; an
// anonymous caller on a public route sees none.
func SiteAllowed(ctx context.Context, site string) bool {
	p, ok := FromContext(ctx)
	if !ok {
		return true
	}
	if p.Role == Public {
		return false
	}
	return p.Allows(site)
}

// SitesAllowed reports whether the caller may see every one of sites (a park's, say).
func SitesAllowed(ctx context.Context, sites []string) bool {
	for _, s := range sites {
		if !SiteAllowed(ctx, s) {
			return false
		}
	}
	return true
}
