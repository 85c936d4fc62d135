package telegraf

import (
	"fmt"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector/opcua"
)

// opcua converts one [[inputs.opcua]]: one aqualoop server read in poll mode, as Telegraf reads
// it; the top-level nodes make one meter named after the input, each group one more.
func (c *converter) opcua(i int, in opcuaInput, interval time.Duration) {
	at := fmt.Sprintf("inputs.opcua[%d]", i)
	name := c.busName(in.Name, "opcua")
	srv := opcua.Config{
		Name: name, Endpoint: in.Endpoint, Mode: opcua.ModePoll, Interval: interval,
		Certificate: in.Certificate, PrivateKey: in.PrivateKey, Username: in.Username,
	}
	if d := c.duration(at+".interval", in.Interval); d > 0 {
		srv.Interval = d
	}
	srv.Timeout = max(c.duration(at+".connect_timeout", in.ConnectTimeout), c.duration(at+".request_timeout", in.RequestTimeout))
	switch p := in.SecurityPolicy; strings.ToLower(p) {
	case "", "auto":
		if p != "" {
			c.note("%s.security_policy: auto is not supported; set to None, choose the server's policy", at)
		}
	case "none", "basic256sha256", "basic256", "aes128_sha256_rsaoaep", "aes256_sha256_rsapss":
		srv.SecurityPolicy = p
	default:
		c.note("%s.security_policy: %q is not supported (None, Basic256Sha256, Basic256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss); set to None", at, p)
	}
	switch m := in.SecurityMode; strings.ToLower(m) {
	case "", "auto":
	default:
		srv.SecurityMode = m
	}
	if srv.SecurityPolicy != "" && !strings.EqualFold(srv.SecurityPolicy, "none") && srv.Certificate == "" {
		srv.CertDir = "/var/lib/aqualoop-edge/opcua-pki"
		c.note("%s: no client certificate: cert_dir %s keeps the one the edge generates; trust it on the server (docs/edge.md)", at, srv.CertDir)
	}
	switch a := in.AuthMethod; strings.ToLower(a) {
	case "", "anonymous":
	case "username":
		srv.Auth = opcua.AuthUserName
		if in.Password != "" {
			srv.PasswordFile = "/etc/aqualoop-edge/opcua-" + srv.Name + ".password"
			c.note("%s.password: not copied into edge.yaml: write it to %s (password_file) or set %s", at, srv.PasswordFile, opcua.PasswordEnv)
		}
	case "certificate":
		srv.Auth = opcua.AuthCertificate
		if srv.Certificate == "" && srv.CertDir == "" {
			srv.CertDir = "/var/lib/aqualoop-edge/opcua-pki"
		}
	default:
		c.note("%s.auth_method: %q is not supported", at, a)
	}
	switch t := strings.ToLower(in.Timestamp); t {
	case "", "gather":
		if t == "gather" {
			c.note("%s.timestamp: gather (the collector's clock) is not offered; the source timestamp is used", at)
		}
	case "source":
		srv.Timestamp = opcua.TimestampSource
	case "server":
		srv.Timestamp = opcua.TimestampServer
	default:
		c.note("%s.timestamp: %q not mapped", at, in.Timestamp)
	}
	add := func(meter string, nodes []opcuaNode, ns, nsu, idType, nat string) {
		m := opcua.Meter{Meter: meter}
		for k, n := range nodes {
			id, err := nodeID(firstOf(n.Namespace, ns), firstOf(n.NamespaceURI, nsu), firstOf(n.IdentifierType, idType), n.Identifier)
			if err != nil {
				c.note("%s[%d]: %v, left out", nat, k, err)
				continue
			}
			m.Nodes = append(m.Nodes, opcua.Node{Name: pointName(n.Name), NodeID: id})
		}
		if len(m.Nodes) > 0 {
			srv.Meters = append(srv.Meters, m)
		}
	}
	add(srv.Name, in.Nodes, "", "", "", at+".nodes")
	for g, grp := range in.Groups {
		name := idOf(grp.Name)
		if name == "" {
			name = fmt.Sprintf("%s-group-%d", srv.Name, g+1)
		}
		add(name, grp.Nodes, grp.Namespace, grp.NamespaceURI, grp.IdentifierType, fmt.Sprintf("%s.group[%d].nodes", at, g))
	}
	if len(srv.Meters) == 0 {
		c.note("%s: no node could be mapped, server %s left out", at, srv.Name)
		return
	}
	c.note("%s: read in poll mode as Telegraf did; subscribe mode (mode: subscribe) suits flow rates, see docs/edge.md", at)
	c.res.Config.OPCUA = append(c.res.Config.OPCUA, srv)
}

// nodeID builds an aqualoop node id from Telegraf's parts.
func nodeID(ns, nsu, idType, ident string) (string, error) {
	t := strings.ToLower(idType)
	if t != "i" && t != "s" && t != "g" && t != "b" {
		return "", fmt.Errorf("identifier_type %q is not i, s, g or b", idType)
	}
	if ident == "" {
		return "", fmt.Errorf("no identifier")
	}
	switch {
	case nsu != "":
		return "nsu=" + nsu + ";" + t + "=" + ident, nil
	case ns != "" && ns != "0":
		return "ns=" + ns + ";" + t + "=" + ident, nil
	}
	return t + "=" + ident, nil
}
