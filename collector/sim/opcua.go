package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
)

// uaValues are the last values pushed to a meter's two OPC UA variables. The server reads them
// through value functions under this lock, so an update never races a client's read.
type uaValues struct {
	mu    sync.Mutex
	flow  *ua.DataValue
	total *ua.DataValue
}

func (v *uaValues) get(total bool) *ua.DataValue {
	v.mu.Lock()
	defer v.mu.Unlock()
	dv := v.flow
	if total {
		dv = v.total
	}
	c := *dv
	return &c
}

// uaServer is the OPC UA server with the meter variables.
type uaServer struct {
	srv   *server.Server
	ns    *server.NodeNameSpace
	nodes map[string][2]*ua.NodeID // meter id → flow, total
}

// startOPCUA builds the address space and starts listening; it returns the server and the
// endpoint URL a local client should dial.
func (p *Plant) startOPCUA(ctx context.Context) (*uaServer, string, error) {
	c := p.cfg.OPCUA
	addr, err := freeAddr(c.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("reserve opcua address %s: %w", c.Listen, err)
	}
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	dialHost := host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		dialHost = "127.0.0.1"
	}
	bindHost := host
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	if strings.Contains(bindHost, ":") { // IPv6 literal in a URL
		bindHost = "[" + bindHost + "]"
	}
	certHost := dialHost
	if strings.Contains(dialHost, ":") {
		dialHost = "[" + dialHost + "]"
	}

	opts := []server.Option{
		server.ServerName("aqualoop plant simulator"),
		server.ManufacturerName("aqualoop"),
		server.ProductName("aqualoop sim"),
		server.SetLogger(uaLogger{p.log.With("bus", "opcua")}),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		// The first endpoint is the one the server binds to.
		server.EndPoint(bindHost, port),
	}
	if dialHost != bindHost {
		opts = append(opts, server.EndPoint(dialHost, port), server.EndPoint("localhost", port))
	}
	if slices.Contains(c.SecurityPolicies, PolicyNone) {
		opts = append(opts, server.EnableSecurity(PolicyNone, ua.MessageSecurityModeNone))
	}
	if slices.Contains(c.SecurityPolicies, PolicyBasic256Sha256) {
		cert, key, err := p.serverCertificate(certHost)
		if err != nil {
			return nil, "", err
		}
		opts = append(opts,
			server.EnableSecurity(PolicyBasic256Sha256, ua.MessageSecurityModeSign),
			server.EnableSecurity(PolicyBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt),
			server.PrivateKey(key), server.Certificate(cert))
	}

	s := &uaServer{srv: server.New(opts...), nodes: map[string][2]*ua.NodeID{}}
	s.ns = server.NewNodeNameSpace(s.srv, c.NamespaceURI)
	root, err := s.srv.Namespace(0)
	if err != nil {
		return nil, "", fmt.Errorf("find opcua namespace 0: %w", err)
	}
	nsObjects := s.ns.Objects()
	root.Objects().AddRef(nsObjects, id.HasComponent, true)

	t := p.uaInstant()
	for _, m := range p.meters {
		if m.Protocol != ProtocolOPCUA {
			continue
		}
		p.updateUA(m, t)
		folder := server.NewFolderNode(ua.NewStringNodeID(s.ns.ID(), m.ID), m.ID)
		s.ns.AddNode(folder)
		nsObjects.AddRef(folder, id.Organizes, true)
		flowID := ua.NewStringNodeID(s.ns.ID(), m.ID+".flow")
		totalID := ua.NewStringNodeID(s.ns.ID(), m.ID+".total")
		mv := &m.ua
		for _, v := range []struct {
			id    *ua.NodeID
			name  string
			desc  string
			total bool
		}{
			{flowID, m.ID + ".flow", "flow rate, m³/h", false},
			{totalID, m.ID + ".total", "forward totalizer, m³", true},
		} {
			n := server.NewNode(v.id, uaVariableAttrs(v.name, v.desc), nil, func() *ua.DataValue { return mv.get(v.total) })
			s.ns.AddNode(n)
			folder.AddRef(n, id.HasComponent, true)
		}
		s.nodes[m.ID] = [2]*ua.NodeID{flowID, totalID}
	}

	if err := s.srv.Start(ctx); err != nil {
		return nil, "", fmt.Errorf("start opcua server on %s: %w", addr, err)
	}
	return s, fmt.Sprintf("opc.tcp://%s:%d", dialHost, port), nil
}

// uaVariableAttrs are a read-only scalar Double variable's attributes. The DataType is set
// explicitly: gopcua's helpers would otherwise advertise the VariableNode type, which clients
// reject. gopcua stores it as an ExpandedNodeID (its browse code expects that type).
func uaVariableAttrs(name, desc string) server.Attributes {
	ro := byte(ua.AccessLevelTypeCurrentRead)
	return server.Attributes{
		ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:      server.DataValueFromValue(attrs.BrowseName(name)),
		ua.AttributeIDDisplayName:     server.DataValueFromValue(attrs.DisplayName(name, "")),
		ua.AttributeIDDescription:     server.DataValueFromValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: desc}),
		ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.Double)),
		ua.AttributeIDValueRank:       server.DataValueFromValue(int32(-1)),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(ro),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(ro),
		ua.AttributeIDHistorizing:     server.DataValueFromValue(false),
	}
}

// uaInstant is the simulated time of an OPC UA update, cut to the microsecond so that the source
// timestamp on the wire (100 ns ticks) is exactly the instant the values were computed at.
func (p *Plant) uaInstant() time.Time { return p.Now().Truncate(time.Microsecond) }

// updateUA recomputes a meter's OPC UA values at t.
func (p *Plant) updateUA(m *meter, t time.Time) {
	now := time.Now()
	mk := func(v float64) *ua.DataValue {
		return &ua.DataValue{
			EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:           ua.MustVariant(v),
			SourceTimestamp: t,
			ServerTimestamp: now,
		}
	}
	flow, total := mk(p.servedRate(m, t)), mk(p.wrappedTotal(m, t))
	if p.silent(m.ID, t) {
		// An injected silent fault: the server has lost the device.
		for _, dv := range []*ua.DataValue{flow, total} {
			dv.EncodingMask |= ua.DataValueStatusCode
			dv.Status = ua.StatusBadNoCommunication
		}
	}
	m.ua.mu.Lock()
	m.ua.flow, m.ua.total = flow, total
	m.ua.mu.Unlock()
}

// publish recomputes every OPC UA meter at the current simulated instant and notifies
// subscribers.
func (p *Plant) publish(s *uaServer) {
	t := p.uaInstant()
	for _, m := range p.meters {
		ids, ok := s.nodes[m.ID]
		if !ok {
			continue
		}
		p.updateUA(m, t)
		s.srv.ChangeNotification(ids[0])
		s.srv.ChangeNotification(ids[1])
	}
}

// serverCertificate loads the configured certificate, or makes a self-signed one for this run.
func (p *Plant) serverCertificate(host string) ([]byte, *rsa.PrivateKey, error) {
	c := p.cfg.OPCUA
	if c.Certificate != "" {
		pair, err := tls.LoadX509KeyPair(c.Certificate, c.PrivateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("load opcua certificate %s: %w", c.Certificate, err)
		}
		key, ok := pair.PrivateKey.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("load opcua private key %s: Basic256Sha256 needs an RSA key, not %T", c.PrivateKey, pair.PrivateKey)
		}
		return pair.Certificate[0], key, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generate opcua server key: %w", err)
	}
	appURI, _ := url.Parse("urn:aqualoop:sim:server")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "aqualoop plant simulator", Organization: []string{"aqualoop"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		URIs:                  []*url.URL{appURI},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create opcua server certificate: %w", err)
	}
	p.log.Info("generated a self-signed opcua certificate for this run")
	return der, key, nil
}

// uaLogger adapts slog to gopcua's printf-style server logger. gopcua warns about its own
// built-in node set at every start and logs ordinary client disconnects and shutdown as errors,
// so everything it says is debug here: nothing in it is for the person watching the demo.
type uaLogger struct{ l *slog.Logger }

func (u uaLogger) Debug(msg string, args ...any) {
	u.l.Debug("opcua server", "detail", fmt.Sprintf(msg, args...))
}
func (u uaLogger) Info(msg string, args ...any) {
	u.l.Debug("opcua server", "detail", fmt.Sprintf(msg, args...))
}
func (u uaLogger) Warn(msg string, args ...any) {
	u.l.Debug("opcua server", "detail", fmt.Sprintf(msg, args...))
}
func (u uaLogger) Error(msg string, args ...any) {
	u.l.Debug("opcua server", "detail", fmt.Sprintf(msg, args...))
}

var _ server.Logger = uaLogger{}
