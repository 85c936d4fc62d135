package opcua

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector/config"
)

// fileConfig is how a parent file carries OPC UA servers: a list under "opcua".
type fileConfig struct {
	OPCUA []Config `yaml:"opcua"`
}

func (f *fileConfig) Default() {
	for i := range f.OPCUA {
		f.OPCUA[i].Default()
	}
}

func (f *fileConfig) Validate(p *config.Problems) {
	for i := range f.OPCUA {
		f.OPCUA[i].Validate(p, fmt.Sprintf("opcua[%d]", i))
	}
}

// entry wraps the body of one server entry (indented for the list) with a name and endpoint.
func entry(body string) string {
	return "opcua:\n  - name: plant\n    endpoint: opc.tcp://10.0.0.5:4840\n" + body
}

const oneMeter = `    meters:
      - meter: m1
        nodes:
          - {name: total, node_id: "nsu=urn:vendor:plant;s=FT101.Total"}
`

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // "path: message fragment", in order
	}{
		{name: "minimal", yaml: entry(oneMeter)},
		{name: "secured with generated certificate", yaml: entry(`    security_policy: basic256sha256
    security_mode: SignAndEncrypt
    auth_method: UserName
    username: op
    password_file: /run/secrets/opcua
    cert_dir: /var/lib/aqualoop/pki
` + oneMeter)},
		{name: "missing name and endpoint", yaml: "opcua:\n  - interval: 5s\n" + oneMeter, want: []string{
			"opcua[0].name: is required",
			"opcua[0].endpoint: is required",
		}},
		{name: "endpoint not opc.tcp", yaml: "opcua:\n  - name: x\n    endpoint: http://10.0.0.5:4840\n" + oneMeter, want: []string{
			`opcua[0].endpoint: "http://10.0.0.5:4840" is not opc.tcp://host:port[/path]`,
		}},
		{name: "credentials in endpoint", yaml: "opcua:\n  - name: x\n    endpoint: opc.tcp://op:pw@10.0.0.5:4840\n" + oneMeter, want: []string{
			"opcua[0].endpoint: \"opc.tcp://op:xxxxx@10.0.0.5:4840\" carries credentials",
		}},
		{name: "unknown policy", yaml: entry("    security_policy: Basic128Rsa15\n    cert_dir: /pki\n" + oneMeter), want: []string{
			`opcua[0].security_policy: "Basic128Rsa15" is not one of None, Basic256Sha256, Basic256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss`,
		}},
		{name: "policy without mode", yaml: entry("    security_policy: Basic256Sha256\n    security_mode: None\n    cert_dir: /pki\n" + oneMeter), want: []string{
			"opcua[0].security_mode: is None but security_policy Basic256Sha256 needs Sign or SignAndEncrypt",
		}},
		{name: "mode without policy", yaml: entry("    security_mode: Sign\n" + oneMeter), want: []string{
			"opcua[0].security_mode: Sign needs a security_policy other than None",
		}},
		{name: "security without certificate or cert_dir", yaml: entry("    security_policy: Basic256Sha256\n" + oneMeter), want: []string{
			"opcua[0].cert_dir: is required to keep the generated client certificate",
		}},
		{name: "certificate auth without certificate or cert_dir", yaml: entry("    auth_method: certificate\n" + oneMeter), want: []string{
			"opcua[0].cert_dir: is required",
		}},
		{name: "half a key pair", yaml: entry("    certificate: /pki/c.pem\n" + oneMeter), want: []string{
			"opcua[0].private_key: is required when certificate is set",
		}},
		{name: "user name problems", yaml: entry("    auth_method: UserName\n    password: a\n    password_file: /b\n" + oneMeter), want: []string{
			"opcua[0].username: is required when auth_method is UserName",
			"opcua[0].password_file: is set together with password",
		}},
		{name: "bad auth, mode and timestamp", yaml: entry("    auth_method: kerberos\n    mode: push\n    timestamp: device\n" + oneMeter), want: []string{
			`opcua[0].auth_method: "kerberos" is not one of Anonymous, UserName, Certificate`,
			`opcua[0].mode: "push" is not one of subscribe, poll`,
			`opcua[0].timestamp: "device" is not one of source, server`,
		}},
		{name: "negative durations and deadband", yaml: entry("    interval: -1s\n    timeout: -2s\n    deadband: -0.5\n" + oneMeter), want: []string{
			"opcua[0].interval: -1s is negative",
			"opcua[0].timeout: -2s is negative",
			"opcua[0].deadband: -0.5 is negative",
		}},
		{name: "no meters", yaml: entry(""), want: []string{"opcua[0].meters: is empty"}},
		{name: "meter and node problems with their paths", yaml: "opcua:\n" +
			"  - name: a\n    endpoint: opc.tcp://a:4840\n" + oneMeter +
			"  - name: b\n    endpoint: opc.tcp://b:4840\n" + `    meters:
      - meter: m1
        nodes:
          - {name: total, node_id: "ns=2;s=T"}
      - meter: "bad id"
        nodes: []
      - meter: m1
        nodes:
          - {name: total, node_id: "i=85"}
          - {name: flow, node_id: "ns=2;x=1"}
          - {name: flow, node_id: ""}
          - {node_id: "nsu=;s=x"}
          - {name: a, node_id: "ns=70000;s=x"}
          - {name: b, node_id: "i=abc"}
          - {name: c, node_id: "s="}
          - {name: d, node_id: "nsu=urn:x:y"}
`, want: []string{
			`opcua[1].meters[1].meter: "bad id" is not a valid meter id`,
			"opcua[1].meters[1].nodes: is empty",
			`opcua[1].meters[2].meter: "m1" is already the id of meters[0]`,
			`opcua[1].meters[2].nodes[1].node_id: "ns=2;x=1" has no identifier i=, s=, g= or b=`,
			`opcua[1].meters[2].nodes[2].name: "flow" is already the name of nodes[1]`,
			"opcua[1].meters[2].nodes[2].node_id: is required",
			"opcua[1].meters[2].nodes[3].name: is required",
			`opcua[1].meters[2].nodes[3].node_id: "nsu=;s=x" is not nsu=<namespace uri>;`,
			`opcua[1].meters[2].nodes[4].node_id: "ns=70000;s=x" is not ns=<0..65535>;`,
			`opcua[1].meters[2].nodes[5].node_id: "i=abc"`,
			`opcua[1].meters[2].nodes[6].node_id: "s=" has no identifier`,
			`opcua[1].meters[2].nodes[7].node_id: "nsu=urn:x:y" is not nsu=<namespace uri>;`,
		}},
		{name: "unknown key", yaml: entry("    secruity_policy: None\n" + oneMeter), want: []string{
			`opcua[0].secruity_policy: unknown key (did you mean "security_policy"?)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f fileConfig
			err := config.Parse("opcua.yaml", []byte(tc.yaml), &f)
			var got []string
			if err != nil {
				var ce *config.Error
				if !errors.As(err, &ce) {
					t.Fatalf("Parse: %v is not a *config.Error", err)
				}
				for _, p := range ce.Problems {
					got = append(got, p.Path+": "+p.Msg)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	var f fileConfig
	yaml := entry(`    security_policy: basic256sha256
    cert_dir: /pki
    meters:
      - meter: m1
        nodes:
          - {name: total, node_id: "i=1"}
          - {name: flow, node_id: "i=2", scale: 0.1}
`)
	if err := config.Parse("opcua.yaml", []byte(yaml), &f); err != nil {
		t.Fatal(err)
	}
	c := f.OPCUA[0]
	got := fmt.Sprint(c.SecurityPolicy, c.SecurityMode, c.Auth, c.Mode, c.Timestamp, c.Interval, c.Timeout,
		c.ConnectBackoffMax, c.QueueSize, c.Meters[0].Nodes[0].Scale, c.Meters[0].Nodes[1].Scale)
	want := fmt.Sprint(PolicyBasic256Sha256, SecurityModeSignAndEncrypt, AuthAnonymous, ModeSubscribe, TimestampSource,
		10*time.Second, 10*time.Second, time.Minute, uint32(1), 1.0, 0.1)
	if got != want {
		t.Errorf("defaulted config = %s, want %s", got, want)
	}
}

func TestValidationProblemsCarryLines(t *testing.T) {
	var f fileConfig
	yaml := entry(`    meters:
      - meter: m1
        nodes:
          - {name: total, node_id: "i=1"}
          - name: flow
            node_id: "nsu=urn:x"
`)
	err := config.Parse("opcua.yaml", []byte(yaml), &f)
	if err == nil || !strings.Contains(err.Error(), `opcua.yaml:9: opcua[0].meters[0].nodes[1].node_id: "nsu=urn:x"`) {
		t.Errorf("error = %v, want it at line 9 with its path", err)
	}
}

func TestNewReportsProblems(t *testing.T) {
	_, err := New(Config{Name: "x", Endpoint: "opc.tcp://h:4840", Meters: []Meter{{Meter: "m", Nodes: []Node{{Name: "t", NodeID: "q=1"}}}}}, "site", Options{})
	if err == nil || !strings.Contains(err.Error(), `meters[0].nodes[0].node_id: "q=1"`) {
		t.Errorf("New error = %v, want the node id problem with its path", err)
	}
	_, err = New(Config{Name: "x", Endpoint: "opc.tcp://h:4840", Auth: AuthUserName, Username: "u",
		Meters: []Meter{{Meter: "m", Nodes: []Node{{Name: "t", NodeID: "i=1"}}}}}, "site", Options{})
	if err == nil || !strings.Contains(err.Error(), PasswordEnv) {
		t.Errorf("New error = %v, want it to name the password sources", err)
	}
}

func TestParseAndResolveNodeID(t *testing.T) {
	namespaces := []string{"http://opcfoundation.org/UA/", "urn:decoy", "urn:vendor:plant"}
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: "i=2258", want: "i=2258"},
		{in: "ns=2;s=FT101.Total", want: "ns=2;s=FT101.Total"},
		{in: "ns=3;i=1001", want: "ns=3;i=1001"},
		{in: "nsu=urn:vendor:plant;s=FT101.Total", want: "ns=2;s=FT101.Total"},
		{in: "nsu=urn:vendor:plant;i=7", want: "ns=2;i=7"},
		{in: "nsu=urn:vendor:plant;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", want: "ns=2;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63"},
		{in: "nsu=urn:vendor:plant;b=YWJj", want: "ns=2;b=YWJj"},
		{in: "ns=2;s=a;b", want: "ns=2;s=a;b"}, // string ids may hold ';'
		{in: "nsu=urn:other;s=x", wantErr: `namespace "urn:other" is not in the server's NamespaceArray`},
		{in: "s=", wantErr: "has no identifier"},
		{in: "FT101", wantErr: "has no identifier"},
		{in: "ns=x;i=1", wantErr: "is not ns="},
		{in: "i=-1", wantErr: "invalid numeric id"},
		{in: "g=zz", wantErr: "invalid guid"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := parseNodeID(tc.in)
			var got string
			if err == nil {
				var id fmt.Stringer
				id, err = n.resolve(namespaces)
				if err == nil {
					got = id.String()
				}
			}
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case got != tc.want:
				t.Errorf("resolved = %q, want %q", got, tc.want)
			}
		})
	}
}
