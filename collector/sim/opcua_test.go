package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

func dialOPCUA(t *testing.T, endpoint string, opts ...opcua.Option) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if len(opts) == 0 {
		opts = []opcua.Option{opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous()}
	}
	c, err := opcua.NewClient(endpoint, opts...)
	if err != nil {
		t.Fatalf("new opcua client: %v", err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

type uaSample struct {
	v  float64
	ts time.Time
}

// readNodes reads the values of "<meter>.flow" / "<meter>.total" variables, resolving the
// namespace index from its URI.
func readNodes(t *testing.T, c *opcua.Client, uri string, names ...string) []uaSample {
	t.Helper()
	ctx := context.Background()
	ns, err := c.FindNamespace(ctx, uri)
	if err != nil {
		t.Fatalf("find namespace %s: %v", uri, err)
	}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, n := range names {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewStringNodeID(ns, n), AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(ctx, req)
	if err != nil {
		t.Fatalf("read %v: %v", names, err)
	}
	out := make([]uaSample, len(names))
	for i, r := range res.Results {
		if r.Status != ua.StatusOK {
			t.Fatalf("read %s: status %v", names[i], r.Status)
		}
		v, ok := r.Value.Value().(float64)
		if !ok {
			t.Fatalf("read %s: value %T, want a Double", names[i], r.Value.Value())
		}
		out[i] = uaSample{v: v, ts: r.SourceTimestamp}
	}
	return out
}

func opcuaMeters(p *Plant) []MeterInfo {
	var ms []MeterInfo
	for _, m := range p.Meters() {
		if m.Protocol == ProtocolOPCUA {
			ms = append(ms, m)
		}
	}
	return ms
}

func wrapDiff(a, b, max float64) float64 {
	d := b - a
	if d < 0 {
		d += max
	}
	return d
}

// OPC UA totalizers, stamped with simulated source time, agree with Truth exactly, including M12
// wrapping at its register_max; at time scale 3600 a simulated hour passes in a second.
func TestOPCUATotalsMatchTruth(t *testing.T) {
	c := testConfig(t)
	c.Meters = []MeterConfig{{ID: "M12", RegisterMax: 1e8, InitialTotal: 99_999_000}}
	p := newPlant(t, c, nil)
	runPlant(t, p)
	cl := dialOPCUA(t, p.OPCUAEndpoint())

	ms := opcuaMeters(p)
	if len(ms) != 7 {
		t.Fatalf("%d opcua meters, want 7", len(ms))
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.ID+".total", m.ID+".flow")
	}
	first := readNodes(t, cl, p.NamespaceURI(), names...)
	// Wait (wall clock) until more than a simulated hour has passed: M12 has wrapped by then.
	for p.Now().Sub(first[0].ts) < time.Hour {
		time.Sleep(50 * time.Millisecond)
	}
	second := readNodes(t, cl, p.NamespaceURI(), names...)

	for i, m := range ms {
		a, b := first[2*i], second[2*i]
		if !b.ts.After(a.ts) {
			t.Fatalf("%s: source time did not advance: %s then %s", m.ID, a.ts, b.ts)
		}
		want := p.Truth(a.ts, b.ts).Meters[m.ID]
		if got := wrapDiff(a.v, b.v, m.RegisterMax); math.Abs(got-want) > 1e-6 {
			t.Errorf("%s: totalizer moved %.6f m³ between %s and %s, truth %.6f", m.ID, got, a.ts, b.ts, want)
		}
		for _, s := range []uaSample{a, b} {
			abs := math.Mod(p.Truth(p.Start(), s.ts).Meters[m.ID]+initialOf(p, m.ID), m.RegisterMax)
			if math.Abs(s.v-abs) > 1e-6 {
				t.Errorf("%s at %s: total %.6f, want %.6f", m.ID, s.ts, s.v, abs)
			}
		}
		f := second[2*i+1]
		rate := p.trueRate(p.meters[index(p, m.ID)], f.ts)
		if math.Abs(f.v-rate) > 5*0.005*rate {
			t.Errorf("%s: flow %.4f m³/h, true %.4f (noise σ 0.5 %%)", m.ID, f.v, rate)
		}
	}
	if m12 := second[2*index12(ms)]; m12.v >= 99_999_000 {
		t.Errorf("M12 did not wrap: %.2f m³ after %s", m12.v, m12.ts.Sub(p.Start()))
	}
}

func initialOf(p *Plant, id string) float64 { return p.meters[index(p, id)].InitialTotal }

func index12(ms []MeterInfo) int {
	for i, m := range ms {
		if m.ID == "M12" {
			return i
		}
	}
	return -1
}

func TestOPCUAVariablesAreTypedDoubles(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	runPlant(t, p)
	cl := dialOPCUA(t, p.OPCUAEndpoint())
	ctx := context.Background()
	ns, err := cl.FindNamespace(ctx, "urn:aqualoop:sim")
	if err != nil {
		t.Fatalf("find namespace: %v", err)
	}
	res, err := cl.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.NewStringNodeID(ns, "M06.flow"), AttributeID: ua.AttributeIDDataType},
		{NodeID: ua.NewStringNodeID(ns, "M14.total"), AttributeID: ua.AttributeIDDataType},
		{NodeID: ua.NewStringNodeID(ns, "M01.total"), AttributeID: ua.AttributeIDValue}, // a Modbus meter
	}})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	for _, r := range res.Results[:2] {
		var got uint32
		switch v := r.Value.Value().(type) {
		case *ua.ExpandedNodeID:
			got = v.NodeID.IntID()
		case *ua.NodeID:
			got = v.IntID()
		default:
			t.Fatalf("DataType attribute is %T", v)
		}
		if got != id.Double {
			t.Errorf("DataType is i=%d, want Double (i=%d)", got, id.Double)
		}
	}
	if st := res.Results[2].Status; st != ua.StatusBadNodeIDUnknown {
		t.Errorf("M01.total over OPC UA: status %v, want BadNodeIdUnknown", st)
	}
}

// Subscribers get a data change per update with advancing simulated source timestamps, which
// only happens if the plant calls ChangeNotification.
func TestOPCUASubscriptionGetsChanges(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	runPlant(t, p)
	cl := dialOPCUA(t, p.OPCUAEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ns, err := cl.FindNamespace(ctx, p.NamespaceURI())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *opcua.PublishNotificationData, 16)
	sub, err := cl.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 50 * time.Millisecond}, ch)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Cancel(context.Background())
	item := opcua.NewMonitoredItemCreateRequestWithDefaults(ua.NewStringNodeID(ns, "M06.total"), ua.AttributeIDValue, 42)
	if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, item); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	var last time.Time
	for changes := 0; changes < 4; {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d data changes before timeout", changes)
		case n := <-ch:
			if n.Error != nil {
				t.Fatalf("notification error: %v", n.Error)
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, it := range dc.MonitoredItems {
				ts, v := it.Value.SourceTimestamp, it.Value.Value.Value().(float64)
				if !ts.After(last) {
					t.Fatalf("source time %s does not advance past %s", ts, last)
				}
				want := math.Mod(initialOf(p, "M06")+p.Truth(p.Start(), ts).Meters["M06"], 1e8)
				if math.Abs(v-want) > 1e-6 {
					t.Errorf("M06.total %.6f at %s, want %.6f", v, ts, want)
				}
				last = ts
				changes++
			}
		}
	}
}

// The server also offers Basic256Sha256 endpoints with a generated certificate.
func TestOPCUABasic256Sha256(t *testing.T) {
	c := testConfig(t)
	c.OPCUA.SecurityPolicies = []string{PolicyNone, PolicyBasic256Sha256}
	p := newPlant(t, c, nil)
	runPlant(t, p)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, p.OPCUAEndpoint())
	if err != nil {
		t.Fatalf("get endpoints: %v", err)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt)
	if err != nil {
		t.Fatalf("select endpoint: %v", err)
	}
	key, cert := clientCertificate(t)
	cl := dialOPCUA(t, p.OPCUAEndpoint(),
		opcua.SecurityPolicy(ua.SecurityPolicyURIBasic256Sha256),
		opcua.SecurityMode(ua.MessageSecurityModeSignAndEncrypt),
		opcua.PrivateKey(key), opcua.Certificate(cert),
		opcua.AuthAnonymous(),
		opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
	)
	s := readNodes(t, cl, p.NamespaceURI(), "M09.total")
	want := p.Truth(p.Start(), s[0].ts).Meters["M09"] + initialOf(p, "M09")
	if math.Abs(s[0].v-want) > 1e-6 {
		t.Errorf("M09.total over Basic256Sha256 %.6f, want %.6f", s[0].v, want)
	}
}

func clientCertificate(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := url.Parse("urn:aqualoop:sim:test-client")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sim test client"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}
