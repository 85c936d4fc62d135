package opcua

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// Security policies, by the short names Telegraf and most OPC UA tools use.
const (
	PolicyNone                = "None"
	PolicyBasic256Sha256      = "Basic256Sha256"
	PolicyBasic256            = "Basic256"
	PolicyAes128Sha256RsaOaep = "Aes128_Sha256_RsaOaep"
	PolicyAes256Sha256RsaPss  = "Aes256_Sha256_RsaPss"
)

// Message security modes.
const (
	SecurityModeNone           = "None"
	SecurityModeSign           = "Sign"
	SecurityModeSignAndEncrypt = "SignAndEncrypt"
)

// Authentication methods.
const (
	AuthAnonymous   = "Anonymous"
	AuthUserName    = "UserName"
	AuthCertificate = "Certificate"
)

// Collection modes.
const (
	ModeSubscribe = "subscribe"
	ModePoll      = "poll"
)

// Timestamp choices: which of a value's two OPC UA timestamps becomes Reading.Time.
const (
	TimestampSource = "source"
	TimestampServer = "server"
)

// PasswordEnv is read for the password when neither password nor password_file is set.
const PasswordEnv = "AQUALOOP_OPCUA_PASSWORD"

// Defaults, applied by Config.Default to fields left at zero.
const (
	DefaultInterval          = 10 * time.Second
	DefaultTimeout           = 10 * time.Second
	DefaultConnectBackoffMax = time.Minute
	DefaultQueueSize         = 1
)

var (
	policyNames = []string{PolicyNone, PolicyBasic256Sha256, PolicyBasic256, PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss}
	modeNames   = []string{SecurityModeNone, SecurityModeSign, SecurityModeSignAndEncrypt}
	authNames   = []string{AuthAnonymous, AuthUserName, AuthCertificate}
)

// Config is one OPC UA server: one connection, one session and (in subscribe mode) one
// subscription carrying every node of its meters. YAML keys follow Telegraf's opcua inputs where
// the meaning is the same.
type Config struct {
	Name     string `yaml:"name"`
	Endpoint string `yaml:"endpoint"` // opc.tcp://host:port[/path]; the client always dials this URL, whatever the server advertises

	SecurityPolicy string `yaml:"security_policy"` // None (default) | Basic256Sha256 | Basic256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss
	SecurityMode   string `yaml:"security_mode"`   // None | Sign | SignAndEncrypt; default None with policy None, else SignAndEncrypt

	Auth         string `yaml:"auth_method"` // Anonymous (default) | UserName | Certificate
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"` // read at start; else the AQUALOOP_OPCUA_PASSWORD environment variable

	// Certificate and PrivateKey are PEM (or DER) files of the client's application instance
	// certificate. When both are empty and a secured channel or certificate authentication needs
	// one, a self-signed pair is generated into CertDir on first start and reused afterwards.
	Certificate string `yaml:"certificate"`
	PrivateKey  string `yaml:"private_key"`
	CertDir     string `yaml:"cert_dir"`
	// ServerCertificate is a PEM (or DER) file with the server's certificate. When set, the
	// client refuses an endpoint that presents another one. gopcua does not check server
	// certificates against a trust list, so this pin is what keeps a machine in the middle
	// from posing as the server.
	ServerCertificate string `yaml:"server_certificate"`

	Mode string `yaml:"mode"` // subscribe (default) | poll
	// Interval is the poll interval, or the subscription's publishing interval. Default 10s.
	Interval time.Duration `yaml:"interval"`
	// SamplingInterval is how often the server samples each node; 0 lets the server sample at
	// the publishing interval.
	SamplingInterval time.Duration `yaml:"sampling_interval"`
	QueueSize        uint32        `yaml:"queue_size"` // per monitored item, default 1 (the newest value)
	// Deadband is an absolute deadband on each monitored value; 0 reports every change.
	// It applies to subscribe mode only.
	Deadband float64 `yaml:"deadband"`

	// RepublishInterval is, in subscribe mode, the longest time a meter goes without a reading:
	// a server sends a value only when it changes, so the last value and status of every point
	// of a meter whose values did not change are published again (stamped by the collector's
	// clock), and the platform can tell a constant totalizer from a dead edge. Default: the
	// interval.
	RepublishInterval time.Duration `yaml:"republish_interval"`

	Timestamp string `yaml:"timestamp"` // source (default) | server: the timestamp put in Reading.Time

	Timeout           time.Duration `yaml:"timeout"`             // per request and per connect, default 10s
	ConnectBackoffMax time.Duration `yaml:"connect_backoff_max"` // longest wait between connect attempts, default 1m

	Meters []Meter `yaml:"meters"`
}

// Meter is one water meter: its nodes' values travel together in one Reading.
type Meter struct {
	Meter string `yaml:"meter"`
	Nodes []Node `yaml:"nodes"`
}

// Node is one value of a meter. Value = raw · scale.
type Node struct {
	Name string `yaml:"name"` // point name: total, flow, ...
	// NodeID is "ns=2;s=FT101.Total", "i=1234", or "nsu=urn:vendor:plant;s=FT101.Total". The nsu
	// form is resolved to a namespace index from the server's NamespaceArray at every connect,
	// so it survives servers that renumber their namespaces when they restart.
	NodeID string  `yaml:"node_id"`
	Unit   string  `yaml:"unit"`
	Scale  float64 `yaml:"scale"` // 0 means 1
}

// Default fills every field left at its zero value. It only touches zero fields, so it can run
// before or after decoding, and New runs it again on its own copy. Names of policies, modes and
// methods are put in their canonical spelling when they match one ignoring case.
func (c *Config) Default() {
	c.SecurityPolicy = canonical(c.SecurityPolicy, policyNames, PolicyNone)
	defMode := SecurityModeSignAndEncrypt
	if c.SecurityPolicy == PolicyNone {
		defMode = SecurityModeNone
	}
	c.SecurityMode = canonical(c.SecurityMode, modeNames, defMode)
	c.Auth = canonical(c.Auth, authNames, AuthAnonymous)
	c.Mode = canonical(c.Mode, []string{ModeSubscribe, ModePoll}, ModeSubscribe)
	c.Timestamp = canonical(c.Timestamp, []string{TimestampSource, TimestampServer}, TimestampSource)
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RepublishInterval == 0 && c.Interval > 0 {
		c.RepublishInterval = c.Interval
	}
	if c.ConnectBackoffMax == 0 {
		c.ConnectBackoffMax = DefaultConnectBackoffMax
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	for i := range c.Meters {
		for j := range c.Meters[i].Nodes {
			if c.Meters[i].Nodes[j].Scale == 0 {
				c.Meters[i].Nodes[j].Scale = 1
			}
		}
	}
}

// canonical returns the entry of names that s matches ignoring case, def when s is empty, and s
// unchanged otherwise (Validate then reports it).
func canonical(s string, names []string, def string) string {
	if s == "" {
		return def
	}
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return n
		}
	}
	return s
}

// Validate adds every problem of c to p, each under path (for example "opcua[0]"). It works on
// a defaulted copy, so it may run before or after Default.
func (c *Config) Validate(p *config.Problems, path string) {
	c.check(path, p.Addf)
}

// check is Validate with the sink abstracted, so that New can report the same problems in its
// error without a config.Problems.
func (c *Config) check(path string, addf func(path, format string, args ...any)) {
	d := *c
	d.Meters = nil
	d.Default()
	at := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	if c.Name == "" {
		addf(at("name"), "is required: it names the server in logs, metrics and /healthz")
	}
	if err := checkEndpoint(c.Endpoint); err != nil {
		addf(at("endpoint"), "%v", err)
	}
	policyOK := oneOf(d.SecurityPolicy, policyNames)
	if !policyOK {
		addf(at("security_policy"), "%q is not one of %s", c.SecurityPolicy, strings.Join(policyNames, ", "))
	}
	switch {
	case !oneOf(d.SecurityMode, modeNames):
		addf(at("security_mode"), "%q is not one of %s", c.SecurityMode, strings.Join(modeNames, ", "))
	case policyOK && d.SecurityPolicy == PolicyNone && d.SecurityMode != SecurityModeNone:
		addf(at("security_mode"), "%s needs a security_policy other than None", d.SecurityMode)
	case policyOK && d.SecurityPolicy != PolicyNone && d.SecurityMode == SecurityModeNone:
		addf(at("security_mode"), "is None but security_policy %s needs Sign or SignAndEncrypt", d.SecurityPolicy)
	}
	switch d.Auth {
	case AuthAnonymous, AuthCertificate:
	case AuthUserName:
		if c.Username == "" {
			addf(at("username"), "is required when auth_method is UserName")
		}
		if c.Password != "" && c.PasswordFile != "" {
			addf(at("password_file"), "is set together with password: keep one")
		}
	default:
		addf(at("auth_method"), "%q is not one of %s", c.Auth, strings.Join(authNames, ", "))
	}
	if (c.Certificate == "") != (c.PrivateKey == "") {
		if c.Certificate == "" {
			addf(at("certificate"), "is required when private_key is set")
		} else {
			addf(at("private_key"), "is required when certificate is set")
		}
	}
	if d.needsIdentity() && c.Certificate == "" && c.PrivateKey == "" && c.CertDir == "" {
		addf(at("cert_dir"), "is required to keep the generated client certificate (security_policy %s, auth_method %s), or set certificate and private_key", d.SecurityPolicy, d.Auth)
	}
	if d.Mode != ModeSubscribe && d.Mode != ModePoll {
		addf(at("mode"), "%q is not one of subscribe, poll", c.Mode)
	}
	if d.Timestamp != TimestampSource && d.Timestamp != TimestampServer {
		addf(at("timestamp"), "%q is not one of source, server", c.Timestamp)
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"interval", d.Interval}, {"sampling_interval", d.SamplingInterval}, {"republish_interval", d.RepublishInterval}, {"timeout", d.Timeout}, {"connect_backoff_max", d.ConnectBackoffMax}} {
		if f.v < 0 {
			addf(at(f.key), "%v is negative", f.v)
		}
	}
	if d.Deadband < 0 {
		addf(at("deadband"), "%v is negative", d.Deadband)
	}
	if len(c.Meters) == 0 {
		addf(at("meters"), "is empty: a server without meters reads nothing")
	}
	meters := make(map[string]int, len(c.Meters))
	for i := range c.Meters {
		m := &c.Meters[i]
		mp := at(fmt.Sprintf("meters[%d]", i))
		if !wire.ValidID(m.Meter) {
			addf(mp+".meter", "%q is not a valid meter id (letters, digits, '-', '_', '.')", m.Meter)
		} else if j, dup := meters[m.Meter]; dup {
			addf(mp+".meter", "%q is already the id of meters[%d]", m.Meter, j)
		} else {
			meters[m.Meter] = i
		}
		if len(m.Nodes) == 0 {
			addf(mp+".nodes", "is empty: the meter would read nothing")
		}
		names := make(map[string]int, len(m.Nodes))
		for j, n := range m.Nodes {
			np := fmt.Sprintf("%s.nodes[%d]", mp, j)
			if n.Name == "" {
				addf(np+".name", "is required")
			} else if k, dup := names[n.Name]; dup {
				addf(np+".name", "%q is already the name of nodes[%d]", n.Name, k)
			} else {
				names[n.Name] = j
			}
			if n.NodeID == "" {
				addf(np+".node_id", "is required")
			} else if _, err := parseNodeID(n.NodeID); err != nil {
				addf(np+".node_id", "%v", err)
			}
		}
	}
}

// needsIdentity says whether the client must present an application instance certificate.
func (c *Config) needsIdentity() bool {
	return c.SecurityPolicy != PolicyNone || c.Auth == AuthCertificate
}

func oneOf(s string, names []string) bool {
	for _, n := range names {
		if s == n {
			return true
		}
	}
	return false
}

func checkEndpoint(s string) error {
	if s == "" {
		return fmt.Errorf("is required: opc.tcp://host:port")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "opc.tcp" || u.Hostname() == "" {
		return fmt.Errorf("%q is not opc.tcp://host:port[/path]", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q carries credentials: use username and password", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has port %q outside 1..65535", s, p)
		}
	}
	return nil
}

// nodeID is a configured node id, kept apart from its namespace index so that an nsu= id can
// be resolved again at every connect.
type nodeID struct {
	nsURI string // namespace URI of an nsu= id; empty for ns= ids
	ns    uint16 // namespace index of an ns= id (0 when the id has no namespace part)
	ident string // "i=…", "s=…", "g=…" or "b=…"
}

// parseNodeID checks the syntax of s without a server. A namespace URI ends at the first ';',
// as OPC UA requires URIs in node ids to escape it.
func parseNodeID(s string) (nodeID, error) {
	var n nodeID
	rest := s
	switch {
	case strings.HasPrefix(s, "nsu="):
		uri, ident, ok := strings.Cut(s[len("nsu="):], ";")
		if !ok || uri == "" {
			return n, fmt.Errorf("%q is not nsu=<namespace uri>;<i=|s=|g=|b=><id>", s)
		}
		n.nsURI, rest = uri, ident
	case strings.HasPrefix(s, "ns="):
		num, ident, ok := strings.Cut(s[len("ns="):], ";")
		v, err := strconv.ParseUint(num, 10, 16)
		if !ok || err != nil {
			return n, fmt.Errorf("%q is not ns=<0..65535>;<i=|s=|g=|b=><id>", s)
		}
		n.ns, rest = uint16(v), ident
	}
	if len(rest) < 3 || !strings.Contains("isgb", rest[:1]) || rest[1] != '=' {
		return n, fmt.Errorf("%q has no identifier i=, s=, g= or b= with a value", s)
	}
	n.ident = rest
	if _, err := ua.ParseNodeID(fmt.Sprintf("ns=%d;%s", n.ns, n.ident)); err != nil {
		return n, fmt.Errorf("%q: %v", s, err)
	}
	return n, nil
}

// resolve returns the wire node id, looking an nsu= namespace up in the server's NamespaceArray.
func (n nodeID) resolve(namespaces []string) (*ua.NodeID, error) {
	ns := n.ns
	if n.nsURI != "" {
		i := indexOf(namespaces, n.nsURI)
		if i < 0 {
			return nil, fmt.Errorf("namespace %q is not in the server's NamespaceArray", n.nsURI)
		}
		ns = uint16(i)
	}
	return ua.ParseNodeID(fmt.Sprintf("ns=%d;%s", ns, n.ident))
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
