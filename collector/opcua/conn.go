package opcua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// defaultOperationLimit bounds reads and monitored-item creation when the server does not
// publish its operation limits (or publishes 0, "no limit"): large enough to need few requests,
// small enough for any server's message size.
const defaultOperationLimit = 500

// conn is one activated session with the node ids resolved for it.
type conn struct {
	c            *opcua.Client
	policy, mode string
	namespaces   []string
	ids          []*ua.NodeID // per point; nil when the id did not resolve
	idErr        []string     // per point: why it did not resolve
	maxRead      int
	maxItems     int
}

// connect discovers the endpoint that matches the configured security, opens a secure channel
// and an activated session, resolves every node id against the server's current NamespaceArray
// and reads the server's operation limits.
func (s *Source) connect(ctx context.Context) (*conn, error) {
	cfg := &s.cfg
	policyURI := ua.FormatSecurityPolicyURI(cfg.SecurityPolicy)
	mode := ua.MessageSecurityModeFromString(cfg.SecurityMode)

	ectx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	eps, err := opcua.GetEndpoints(ectx, cfg.Endpoint, opcua.DialTimeout(cfg.Timeout), opcua.RequestTimeout(cfg.Timeout))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("get endpoints of %s: %w", cfg.Endpoint, err)
	}
	ep := selectEndpoint(eps, policyURI, mode)
	if ep == nil {
		return nil, fmt.Errorf("select endpoint of %s: no endpoint with security %s/%s; the server offers %s",
			cfg.Endpoint, cfg.SecurityPolicy, cfg.SecurityMode, describeEndpoints(eps))
	}
	if s.pinned != nil && !bytes.Equal(ep.ServerCertificate, s.pinned) {
		return nil, fmt.Errorf("check server certificate of %s: %w: it presents %s, not %s from server_certificate",
			cfg.Endpoint, errServerCertificate, thumbprint(ep.ServerCertificate), thumbprint(s.pinned))
	}
	tokenType := map[string]ua.UserTokenType{
		AuthAnonymous:   ua.UserTokenTypeAnonymous,
		AuthUserName:    ua.UserTokenTypeUserName,
		AuthCertificate: ua.UserTokenTypeCertificate,
	}[cfg.Auth]
	if !offersToken(ep, tokenType) {
		return nil, fmt.Errorf("select endpoint of %s: endpoint %s/%s does not accept auth_method %s; it offers %s",
			cfg.Endpoint, cfg.SecurityPolicy, cfg.SecurityMode, cfg.Auth, describeTokens(ep))
	}

	opts := []opcua.Option{
		opcua.ApplicationName("aqualoop edge"),
		opcua.ApplicationURI("urn:aqualoop:edge"),
		opcua.ProductURI("urn:aqualoop"),
		opcua.SessionName("aqualoop " + cfg.Name),
		opcua.SessionTimeout(max(20*time.Minute, 3*cfg.Interval)),
		opcua.DialTimeout(cfg.Timeout),
		opcua.RequestTimeout(s.requestTimeout()),
		// This package rebuilds lost connections itself (see Run): gopcua's own reconnect would
		// keep namespace indexes and monitored items from before a server restart.
		opcua.AutoReconnect(false),
	}
	if s.ident != nil {
		opts = append(opts, opcua.Certificate(s.ident.cert), opcua.PrivateKey(s.ident.key))
	}
	switch cfg.Auth {
	case AuthAnonymous:
		opts = append(opts, opcua.AuthAnonymous())
	case AuthUserName:
		opts = append(opts, opcua.AuthUsername(cfg.Username, s.password))
	case AuthCertificate:
		opts = append(opts, opcua.AuthCertificate(s.ident.cert), opcua.AuthPrivateKey(s.ident.key))
	}
	// Last, so that it fills in the token policy of the identity token chosen above.
	opts = append(opts, opcua.SecurityFromEndpoint(ep, tokenType))

	c, err := opcua.NewClient(cfg.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("configure client for %s: %w", cfg.Endpoint, err)
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	err = connectClient(cctx, c)
	cancel()
	if err != nil {
		closeClient(c, cfg.Timeout)
		return nil, fmt.Errorf("open session on %s: %w", cfg.Endpoint, explain(err))
	}
	cn := &conn{c: c, policy: cfg.SecurityPolicy, mode: cfg.SecurityMode, namespaces: c.Namespaces()}
	cn.resolve(s.points)
	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	cn.maxRead, cn.maxItems = readLimits(lctx, c)
	cancel()
	return cn, nil
}

// connectClient runs Client.Connect. gopcua v0.9.0's CreateSession only logs a server signature
// it cannot verify and then hands ActivateSession a nil session, which panics; a server with a
// broken certificate must not take the edge down, so that panic becomes an error.
func connectClient(ctx context.Context, c *opcua.Client) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("create session: server signature could not be verified (%v)", r)
		}
	}()
	return c.Connect(ctx)
}

// close ends the session (which deletes its subscriptions on the server) and the channel.
func (cn *conn) close(timeout time.Duration) { closeClient(cn.c, timeout) }

func closeClient(c *opcua.Client, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.Close(ctx)
}

// resolve maps every point's node id onto this session's namespace indexes.
func (cn *conn) resolve(points []point) {
	cn.ids = make([]*ua.NodeID, len(points))
	cn.idErr = make([]string, len(points))
	for i, p := range points {
		nid, err := p.id.resolve(cn.namespaces)
		if err != nil {
			cn.idErr[i] = err.Error()
			continue
		}
		cn.ids[i] = nid
	}
}

// readLimits reads MaxNodesPerRead and MaxMonitoredItemsPerCall; a limit the server does not
// publish falls back to defaultOperationLimit.
func readLimits(ctx context.Context, c *opcua.Client) (maxRead, maxItems int) {
	maxRead, maxItems = defaultOperationLimit, defaultOperationLimit
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead), AttributeID: ua.AttributeIDValue},
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall), AttributeID: ua.AttributeIDValue},
	}})
	if err != nil || len(res.Results) != 2 {
		return maxRead, maxItems
	}
	limit := func(dv *ua.DataValue, def int) int {
		if dv == nil || quality(dv.Status) != 0 {
			return def
		}
		v, err := numeric(dv.Value)
		if err != nil || v < 1 || v > defaultOperationLimit {
			// 0 means "no limit"; a huge limit is no reason for huge requests either.
			return def
		}
		return int(v)
	}
	return limit(res.Results[0], maxRead), limit(res.Results[1], maxItems)
}

// selectEndpoint picks the endpoint with exactly the configured policy and mode.
func selectEndpoint(eps []*ua.EndpointDescription, policyURI string, mode ua.MessageSecurityMode) *ua.EndpointDescription {
	var best *ua.EndpointDescription
	for _, ep := range eps {
		if ep.SecurityPolicyURI == policyURI && ep.SecurityMode == mode {
			if best == nil || ep.SecurityLevel > best.SecurityLevel {
				best = ep
			}
		}
	}
	return best
}

func offersToken(ep *ua.EndpointDescription, t ua.UserTokenType) bool {
	for _, tok := range ep.UserIdentityTokens {
		if tok.TokenType == t {
			return true
		}
	}
	return false
}

func describeEndpoints(eps []*ua.EndpointDescription) string {
	if len(eps) == 0 {
		return "no endpoint for this URL (does the server know itself under another host name?)"
	}
	var parts []string
	for _, ep := range eps {
		parts = append(parts, strings.TrimPrefix(ep.SecurityPolicyURI, ua.SecurityPolicyURIPrefix)+"/"+
			strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode"))
	}
	return strings.Join(parts, ", ")
}

func describeTokens(ep *ua.EndpointDescription) string {
	var parts []string
	for _, tok := range ep.UserIdentityTokens {
		parts = append(parts, strings.TrimPrefix(tok.TokenType.String(), "UserTokenType"))
	}
	if len(parts) == 0 {
		return "no user token policy"
	}
	return strings.Join(parts, ", ")
}

// explain adds the usual cause to the status codes an operator meets when setting up security.
func explain(err error) error {
	var sc ua.StatusCode
	if !errors.As(err, &sc) {
		return err
	}
	hint := map[ua.StatusCode]string{
		ua.StatusBadUserAccessDenied:           "the server refused the user: check username and password",
		ua.StatusBadIdentityTokenInvalid:       "the server did not accept the identity token: check auth_method",
		ua.StatusBadIdentityTokenRejected:      "the server rejected the identity token: check username and password or the certificate",
		ua.StatusBadCertificateUntrusted:       "the server does not trust the client certificate yet: move it to the server's trusted list",
		ua.StatusBadSecurityChecksFailed:       "the server does not trust the client certificate or the security settings differ",
		ua.StatusBadCertificateTimeInvalid:     "the client certificate is expired or not yet valid",
		ua.StatusBadCertificateURIInvalid:      "the application URI in the client certificate does not match",
		ua.StatusBadSecurityPolicyRejected:     "the server does not accept this security_policy",
		ua.StatusBadSecurityModeRejected:       "the server does not accept this security_mode",
		ua.StatusBadCertificateHostNameInvalid: "the host name in the certificate does not match",
	}[sc]
	if hint == "" {
		return fmt.Errorf("%s: %w", statusName(sc), err)
	}
	return fmt.Errorf("%s, %s: %w", statusName(sc), hint, err)
}

// errServerCertificate is a server presenting another certificate than the pinned one.
var errServerCertificate = errors.New("server certificate mismatch")

// isAuthProblem says whether err is the server refusing credentials or certificates, or a
// server certificate that does not match the pin: problems an operator has to fix.
func isAuthProblem(err error) bool {
	if errors.Is(err, errServerCertificate) {
		return true
	}
	for _, sc := range []ua.StatusCode{
		ua.StatusBadUserAccessDenied, ua.StatusBadIdentityTokenInvalid, ua.StatusBadIdentityTokenRejected,
		ua.StatusBadCertificateUntrusted, ua.StatusBadSecurityChecksFailed, ua.StatusBadCertificateTimeInvalid,
		ua.StatusBadCertificateURIInvalid, ua.StatusBadSecurityPolicyRejected, ua.StatusBadSecurityModeRejected,
		ua.StatusBadCertificateHostNameInvalid,
	} {
		if errors.Is(err, sc) {
			return true
		}
	}
	return false
}

// connectionLost says whether err means the channel or session is gone, so that only a new
// connection helps.
func connectionLost(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, sc := range []ua.StatusCode{
		ua.StatusBadServerNotConnected, ua.StatusBadNotConnected, ua.StatusBadConnectionClosed,
		ua.StatusBadSecureChannelClosed, ua.StatusBadSecureChannelIDInvalid, ua.StatusBadCommunicationError,
		ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated,
		ua.StatusBadServerHalted, ua.StatusBadShutdown, ua.StatusBadTCPInternalError,
	} {
		if errors.Is(err, sc) {
			return true
		}
	}
	return false
}

// requestTimeout is the client's timeout for every request, which it also sends to the server
// as TimeoutHint. Ordinary requests are bounded earlier by their context; the point of the long
// value is Publish: a Publish request waits on the server until data or a keep-alive is due, and
// one that the client gives up on while the server still holds it would later take a
// notification with it. It allows for a server that revises the publishing interval upwards.
func (s *Source) requestTimeout() time.Duration {
	return max(2*publishWait(s.keepAliveCount(), s.cfg.Interval, s.cfg.Timeout), 10*time.Minute)
}

// publishWait is how long a Publish may stay unanswered before the subscription counts as dead:
// three keep-alive periods (gopcua's server sends a keep-alive after k+1 empty intervals, the
// spec after k) plus the request timeout.
func publishWait(keepAlive uint32, interval, timeout time.Duration) time.Duration {
	return 3*time.Duration(keepAlive+1)*interval + timeout
}

// keepAliveCount asks for a keep-alive at least every timeout (and at least every publishing
// interval), so that a silent subscription is noticed within a few timeouts.
func (s *Source) keepAliveCount() uint32 {
	k := (s.cfg.Timeout + s.cfg.Interval - 1) / s.cfg.Interval
	return uint32(max(1, min(k, 1000)))
}
