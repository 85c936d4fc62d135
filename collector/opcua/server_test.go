package opcua

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uapolicy"
	"github.com/gopcua/opcua/uasc"
)

// testNamespace is the URI of the test server's namespace of meter variables.
const testNamespace = "urn:aqualoop:test"

// serverOpts shape a test server.
type serverOpts struct {
	port int // public port; 0 picks a free one

	// security adds Basic256Sha256 endpoints (Sign and SignAndEncrypt), and SignAndEncrypt ones
	// for Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss and Basic256, next to None.
	security bool
	// user and password, when set, are required: the server then accepts UserName tokens and
	// rejects anonymous ones and wrong passwords. certAuth accepts X509 identity tokens.
	user, password string
	certAuth       bool

	// decoyFirst registers a decoy namespace before the test namespace, holding variables with
	// the same names and the value -1, so that a client that kept an old namespace index reads
	// wrong values instead of errors.
	decoyFirst bool

	// maxNodesPerRead and maxItemsPerCall, when set, are published as the server's operation
	// limits and enforced with BadTooManyOperations.
	maxNodesPerRead int
	maxItemsPerCall int
	hideLimits      bool // enforce the limits without publishing them

	// refuseFilters answers BadMonitoredItemFilterUnsupported for monitored items with a filter,
	// as servers do for deadbands they cannot apply.
	refuseFilters bool

	vars []string // variable names in the test namespace
}

// testServer is gopcua's server behind a small TCP forwarder. The forwarder exists because
// Server.Close leaves established connections open; closing the forwarder drops them the way a
// stopped server process does.
type testServer struct {
	t    *testing.T
	opts serverOpts
	srv  *server.Server
	ns   *server.NodeNameSpace
	cert []byte
	key  *rsa.PrivateKey
	url  string
	port int

	vars map[string]*testVar

	mu            sync.Mutex
	readSizes     []int
	monitorSizes  []int
	deadbands     []float64 // deadbands of the monitored items requested with a filter
	identityCerts [][]byte  // X509 identity tokens received

	stopOnce sync.Once
	cancel   context.CancelFunc
	ln       net.Listener
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// testVar is one Double variable whose whole DataValue (value and both timestamps) the test sets.
type testVar struct {
	mu sync.Mutex
	dv *ua.DataValue
}

func (v *testVar) get() *ua.DataValue {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := *v.dv
	return &c
}

// freePort returns a port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testCert makes a self-signed application instance certificate.
func testCert(t *testing.T, uri string) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "aqualoop test server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		URIs:                  []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// startServer starts a test server; it is stopped when the test ends.
func startServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	if o.port == 0 {
		o.port = freePort(t)
	}
	ts := &testServer{t: t, opts: o, port: o.port, vars: map[string]*testVar{}, conns: map[net.Conn]bool{}}
	ts.url = "opc.tcp://127.0.0.1:" + strconv.Itoa(o.port)
	ts.cert, ts.key = testCert(t, "urn:aqualoop:test:server")

	backend := freePort(t)
	opts := []server.Option{
		// The server listens on its first endpoint and answers GetEndpoints for the URL a client
		// names, so it knows both its own and the forwarder's address.
		server.EndPoint("127.0.0.1", backend),
		server.EndPoint("127.0.0.1", o.port),
		server.Certificate(ts.cert),
		server.PrivateKey(ts.key),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	}
	if o.security {
		opts = append(opts,
			server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSign),
			server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt),
			server.EnableSecurity("Aes128_Sha256_RsaOaep", ua.MessageSecurityModeSignAndEncrypt),
			server.EnableSecurity("Aes256_Sha256_RsaPss", ua.MessageSecurityModeSignAndEncrypt),
			server.EnableSecurity("Basic256", ua.MessageSecurityModeSignAndEncrypt))
	}
	if o.user != "" {
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeUserName))
	}
	if o.certAuth {
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeCertificate))
	}
	ts.srv = server.New(opts...)

	if o.decoyFirst {
		decoy := server.NewNodeNameSpace(ts.srv, "urn:aqualoop:decoy")
		for _, name := range o.vars {
			v := &testVar{dv: dataValue(-1, time.Now(), time.Now())}
			addVariable(decoy, name, v)
		}
	}
	ts.ns = server.NewNodeNameSpace(ts.srv, testNamespace)
	for _, name := range o.vars {
		v := &testVar{dv: dataValue(0, time.Now(), time.Now())}
		ts.vars[name] = v
		addVariable(ts.ns, name, v)
	}

	// gopcua's server accepts any identity token; this handler checks them, replacing its
	// ActivateSession (RegisterHandler keeps the first handler registered for a request type).
	ts.srv.RegisterHandler(id.ActivateSessionRequest_Encoding_DefaultBinary, ts.activateSession)
	if o.maxNodesPerRead > 0 && !o.hideLimits {
		ts.publishLimit(id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead, o.maxNodesPerRead)
	}
	if o.maxItemsPerCall > 0 && !o.hideLimits {
		ts.publishLimit(id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall, o.maxItemsPerCall)
	}
	ts.srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, ts.read)
	ts.srv.RegisterHandler(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, ts.createMonitoredItems)

	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	if err := ts.srv.Start(ctx); err != nil {
		cancel()
		t.Fatalf("start opc ua server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(o.port))
	if err != nil {
		ts.srv.Close()
		cancel()
		t.Fatalf("listen on forwarder port: %v", err)
	}
	ts.ln = ln
	ts.wg.Add(1)
	go ts.forward(ln, "127.0.0.1:"+strconv.Itoa(backend))
	t.Cleanup(ts.stop)
	return ts
}

func addVariable(ns *server.NodeNameSpace, name string, v *testVar) {
	n := server.NewNode(ua.NewStringNodeID(ns.ID(), name), map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:  server.DataValueFromValue(attrs.BrowseName(name)),
		ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(name, name)),
		ua.AttributeIDDataType:    server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.Double)),
	}, nil, v.get)
	ns.AddNode(n)
	ns.Objects().AddRef(n, server.RefTypeIDHasComponent, true)
}

func dataValue(v float64, source, srv time.Time) *ua.DataValue {
	return &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value:           ua.MustVariant(v),
		SourceTimestamp: source,
		ServerTimestamp: srv,
	}
}

// set changes a variable's value and timestamps and notifies the subscriptions.
func (ts *testServer) set(name string, v float64, source, srv time.Time) {
	tv := ts.vars[name]
	if tv == nil {
		ts.t.Fatalf("no variable %q", name)
	}
	tv.mu.Lock()
	tv.dv = dataValue(v, source, srv)
	tv.mu.Unlock()
	ts.srv.ChangeNotification(ua.NewStringNodeID(ts.ns.ID(), name))
}

// nodeID is the nsu= id of a test variable.
func nodeIDOf(name string) string { return "nsu=" + testNamespace + ";s=" + name }

// publishLimit overrides (or adds) an operation-limit variable of namespace 0.
func (ts *testServer) publishLimit(nodeID uint32, v int) {
	ns0, err := ts.srv.Namespace(0)
	if err != nil {
		ts.t.Fatal(err)
	}
	ns0.AddNode(server.NewNode(ua.NewNumericNodeID(0, nodeID), map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName: server.DataValueFromValue(attrs.BrowseName("limit")),
		ua.AttributeIDDataType:   server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.UInt32)),
	}, nil, func() *ua.DataValue { return server.DataValueFromValue(uint32(v)) }))
}

// read is gopcua's Read service (which is no more than this loop) plus the enforcement of
// MaxNodesPerRead, and it records the size of every request.
func (ts *testServer) read(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	ts.mu.Lock()
	ts.readSizes = append(ts.readSizes, len(req.NodesToRead))
	ts.mu.Unlock()
	if ts.opts.maxNodesPerRead > 0 && len(req.NodesToRead) > ts.opts.maxNodesPerRead {
		return nil, ua.StatusBadTooManyOperations
	}
	results := make([]*ua.DataValue, len(req.NodesToRead))
	for i, n := range req.NodesToRead {
		ns, err := ts.srv.Namespace(int(n.NodeID.Namespace()))
		if err != nil {
			results[i] = &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
			continue
		}
		results[i] = ns.Attribute(n.NodeID, n.AttributeID)
	}
	return &ua.ReadResponse{ResponseHeader: okHeader(req.RequestHeader), Results: results}, nil
}

// createMonitoredItems enforces MaxMonitoredItemsPerCall and records request sizes before
// handing the request to gopcua's service.
func (ts *testServer) createMonitoredItems(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	ts.mu.Lock()
	ts.monitorSizes = append(ts.monitorSizes, len(req.ItemsToCreate))
	ts.mu.Unlock()
	if ts.opts.maxItemsPerCall > 0 && len(req.ItemsToCreate) > ts.opts.maxItemsPerCall {
		return nil, ua.StatusBadTooManyOperations
	}
	filtered := false
	for _, it := range req.ItemsToCreate {
		if f := it.RequestedParameters.Filter; f != nil && f.Value != nil {
			filtered = true
			if dcf, ok := f.Value.(*ua.DataChangeFilter); ok {
				ts.mu.Lock()
				ts.deadbands = append(ts.deadbands, dcf.DeadbandValue)
				ts.mu.Unlock()
			}
		}
	}
	if filtered && ts.opts.refuseFilters {
		res := &ua.CreateMonitoredItemsResponse{ResponseHeader: okHeader(req.RequestHeader)}
		for range req.ItemsToCreate {
			res.Results = append(res.Results, &ua.MonitoredItemCreateResult{StatusCode: ua.StatusBadMonitoredItemFilterUnsupported, FilterResult: ua.NewExtensionObject(nil)})
		}
		return res, nil
	}
	return ts.srv.MonitoredItemService.CreateMonitoredItems(sc, r, reqID)
}

// activateSession checks the identity token. It does not verify the client's signature, which
// gopcua's own handler does and which needs session fields this package cannot reach.
func (ts *testServer) activateSession(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.ActivateSessionRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if ts.srv.Session(req.RequestHeader) == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	var tok any
	if req.UserIdentityToken != nil {
		tok = req.UserIdentityToken.Value
	}
	switch tok := tok.(type) {
	case *ua.AnonymousIdentityToken:
		if ts.opts.user != "" {
			return nil, ua.StatusBadIdentityTokenInvalid
		}
	case *ua.UserNameIdentityToken:
		if ts.opts.user == "" {
			return nil, ua.StatusBadIdentityTokenInvalid
		}
		pw, err := ts.password(tok)
		if err != nil || tok.UserName != ts.opts.user || pw != ts.opts.password {
			return nil, ua.StatusBadUserAccessDenied
		}
	case *ua.X509IdentityToken:
		if !ts.opts.certAuth {
			return nil, ua.StatusBadIdentityTokenInvalid
		}
		ts.mu.Lock()
		ts.identityCerts = append(ts.identityCerts, tok.CertificateData)
		ts.mu.Unlock()
	default:
		return nil, ua.StatusBadIdentityTokenInvalid
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, ua.StatusBadInternalError
	}
	return &ua.ActivateSessionResponse{ResponseHeader: okHeader(req.RequestHeader), ServerNonce: nonce}, nil
}

// password decrypts a UserName token: RSA-OAEP over length, password and the 32-byte server nonce.
func (ts *testServer) password(tok *ua.UserNameIdentityToken) (string, error) {
	if tok.EncryptionAlgorithm == "" {
		return string(tok.Password), nil
	}
	alg, err := uapolicy.Asymmetric(ua.SecurityPolicyURIBasic256Sha256, ts.key, &ts.key.PublicKey)
	if err != nil {
		return "", err
	}
	plain, err := alg.Decrypt(tok.Password)
	if err != nil {
		return "", err
	}
	if len(plain) < 4 {
		return "", errors.New("short secret")
	}
	n := int(binary.LittleEndian.Uint32(plain))
	if n < 32 || 4+n > len(plain) {
		return "", errors.New("bad secret length")
	}
	return string(plain[4 : 4+n-32]), nil
}

func okHeader(h *ua.RequestHeader) *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      h.RequestHandle,
		ServiceResult:      ua.StatusOK,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

// dropSubscriptions deletes every subscription on the server without telling the client: the
// client's Publish requests then go unanswered, as with a server that lost them.
func (ts *testServer) dropSubscriptions() int {
	ss := ts.srv.SubscriptionService
	ss.Mu.Lock()
	var ids []uint32
	for id := range ss.Subs {
		ids = append(ids, id)
	}
	ss.Mu.Unlock()
	for _, id := range ids {
		ss.DeleteSubscription(id)
	}
	return len(ids)
}

func (ts *testServer) sizes() (reads, monitors []int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]int(nil), ts.readSizes...), append([]int(nil), ts.monitorSizes...)
}

// forward accepts on ln and pipes each connection to the server.
func (ts *testServer) forward(ln net.Listener, backend string) {
	defer ts.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", backend)
		if err != nil {
			c.Close()
			continue
		}
		ts.mu.Lock()
		ts.conns[c], ts.conns[b] = true, true
		ts.mu.Unlock()
		ts.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer ts.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(b, c)
		go pipe(c, b)
	}
}

// stop closes the listener and every connection, then the server.
func (ts *testServer) stop() {
	ts.stopOnce.Do(func() {
		ts.ln.Close()
		ts.mu.Lock()
		for c := range ts.conns {
			c.Close()
		}
		ts.mu.Unlock()
		ts.wg.Wait()
		// Close waits for the server's channel goroutines, which end now that their connections
		// are gone; cancel after it so that none of them is stuck handing over a message.
		ts.srv.Close()
		ts.cancel()
	})
}
