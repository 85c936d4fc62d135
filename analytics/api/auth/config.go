package auth

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// Modes of authentication (the http.auth key).
const (
	ModeTokens = "tokens" // API tokens and browser sessions made from them (the default)
	ModeProxy  = "proxy"  // tokens, plus a user named by a trusted reverse proxy's header
	ModeOpen   = "open"   // no authentication: every caller is admin; loopback addresses only
)

// Config is the HTTP server's security, under http: in aqualoop.yaml.
type Config struct {
	Auth  string      `yaml:"auth"`
	TLS   TLSConfig   `yaml:"tls"`
	Proxy ProxyConfig `yaml:"proxy"`
	// SessionTTL is how long a browser session lasts (default 12h); never beyond its token.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// TLSConfig names the certificate and key files; both are re-read when they change on disk.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// ProxyConfig trusts identity headers set by an authenticating reverse proxy (oauth2-proxy,
// Pomerium, an nginx auth_request): only from the listed networks, and only in proxy mode.
type ProxyConfig struct {
	// UserHeader names the user (default X-Forwarded-User).
	UserHeader string `yaml:"user_header"`
	// RoleHeader gives the role (default X-Forwarded-Role); missing or empty means DefaultRole.
	RoleHeader string `yaml:"role_header"`
	// SitesHeader, when set, scopes the user to a comma-separated list of sites.
	SitesHeader string `yaml:"sites_header"`
	// DefaultRole applies when the role header is missing (default viewer).
	DefaultRole string `yaml:"default_role"`
	// TrustedProxies are the CIDRs (or addresses) the proxy connects from. Required.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Default fills in defaults.
func (c *Config) Default() {
	if c.Auth == "" {
		c.Auth = ModeTokens
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.Proxy.UserHeader == "" {
		c.Proxy.UserHeader = "X-Forwarded-User"
	}
	if c.Proxy.RoleHeader == "" {
		c.Proxy.RoleHeader = "X-Forwarded-Role"
	}
	if c.Proxy.DefaultRole == "" {
		c.Proxy.DefaultRole = "viewer"
	}
}

// Validate reports every problem under path (the key that holds this config, e.g. "http"). The
// files are resolved by the caller before (relative paths name the config file's folder).
func (c *Config) Validate(p *config.Problems, path string) {
	switch c.Auth {
	case ModeTokens, ModeProxy, ModeOpen:
	default:
		p.Addf(path+".auth", "%q is not one of tokens, proxy, open", c.Auth)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.Addf(path+".tls", "cert_file and key_file go together")
	}
	for key, f := range map[string]string{"cert_file": c.TLS.CertFile, "key_file": c.TLS.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			p.Addf(path+".tls."+key, "cannot be read: %v", err)
		}
	}
	if c.SessionTTL < time.Minute {
		p.Addf(path+".session_ttl", "%v is shorter than a minute", c.SessionTTL)
	}
	if _, err := ParseRole(c.Proxy.DefaultRole); err != nil {
		p.Addf(path+".proxy.default_role", "%v", err)
	}
	if c.Auth == ModeProxy && len(c.Proxy.TrustedProxies) == 0 {
		p.Addf(path+".proxy.trusted_proxies", "proxy mode needs the addresses of the proxy (e.g. [127.0.0.1/32]); without them anyone could send the header")
	}
	for i, s := range c.Proxy.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			p.Addf(fmt.Sprintf("%s.proxy.trusted_proxies[%d]", path, i), "%q is not a CIDR like 10.0.0.0/8 or an address", s)
		}
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Loopback reports whether a listen address binds only loopback interfaces ("127.0.0.1:8080",
// "[::1]:8080", "localhost:8080"). An empty host ("":8080, "0.0.0.0:8080") is every interface.
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
