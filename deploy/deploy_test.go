package deploy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/wire"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// ---- helpers -------------------------------------------------------------------------------

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs bin with its output in logPath and stops it with SIGTERM when the test ends.
func start(t *testing.T, bin string, args []string, logPath string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create log: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// waitFor retries ready until it succeeds; the limit only bounds a broken start-up.
func waitFor(t *testing.T, what, logPath string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s never became ready: %v\nlog:\n%s", what, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rewrite returns the lines of a config file with some settings replaced. edit gets the current
// [section] (empty before the first), the setting's key and the line, and returns the new line and
// whether it replaced it. Every key in must is required to have been replaced at least once, so
// the test cannot pass on a file that silently lost a setting.
func rewrite(t *testing.T, path string, must []string, edit func(section, key, line string) (string, bool)) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	seen := map[string]bool{}
	section := ""
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			section = strings.Trim(trim, "[]")
		}
		if trim != "" && !strings.HasPrefix(trim, "#") {
			key := strings.FieldsFunc(trim, func(r rune) bool { return r == ' ' || r == '=' || r == '\t' })[0]
			if n, ok := edit(section, key, line); ok {
				seen[section+"."+key] = true
				line = n
			}
		}
		out.WriteString(line + "\n")
	}
	for _, k := range must {
		if !seen[k] {
			t.Errorf("%s: setting %s not found", path, k)
		}
	}
	return out.String()
}

// settings are the key/value pairs of an ini-like file by "section.key" (values unquoted); a
// repeated key keeps every value.
func settings(t *testing.T, path string, sep string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, sep)
			if !ok {
				t.Fatalf("%s: line %q has no %q", path, line, sep)
			}
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			m[section+"."+k] = append(m[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func one(t *testing.T, m map[string][]string, key string) string {
	t.Helper()
	if len(m[key]) != 1 {
		t.Fatalf("%s is set %d times, want once", key, len(m[key]))
	}
	return m[key][0]
}

// ---- (a) Mosquitto -------------------------------------------------------------------------

const (
	platformUser = "aqualoop-platform"
	password     = "s3cret-for-this-test"
)

func TestMosquittoConfigEnforcesSiteACL(t *testing.T) {
	bin := testenv.Require(t, "mosquitto")
	passwdBin := testenv.Require(t, "mosquitto_passwd")
	// testenv's broker makes the CA, server and client certificates; ours replaces it.
	certs := testenv.Mosquitto(t, testenv.WithTLS())
	certs.Stop()
	files := certs.TLS()

	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	for i, u := range []string{"demo", "other", platformUser} {
		args := []string{"-b", passwd, u, password}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwdBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v: %s", u, err, out)
		}
	}
	acl, err := os.ReadFile("mosquitto/aqualoop.acl")
	if err != nil {
		t.Fatal(err)
	}
	aclPath := filepath.Join(dir, "aqualoop.acl")
	if err := os.WriteFile(aclPath, acl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	who := "root"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	port := freePort(t)
	keep := map[string]string{"allow_anonymous": "false", "require_certificate": "true", "persistence": "true"}
	found := map[string]bool{}
	conf := rewrite(t, "mosquitto/aqualoop.conf",
		[]string{".user", ".pid_file", ".password_file", ".acl_file", ".listener", ".cafile", ".certfile", ".keyfile", ".persistence_location", ".log_dest"},
		func(_, key, line string) (string, bool) {
			if want, ok := keep[key]; ok {
				if f := strings.Fields(line); len(f) == 2 && f[1] == want {
					found[key] = true
				}
			}
			repl := map[string]string{
				"user":                 who,
				"pid_file":             filepath.Join(dir, "mosquitto.pid"),
				"password_file":        passwd,
				"acl_file":             aclPath,
				"listener":             fmt.Sprintf("%d 127.0.0.1", port),
				"cafile":               files.CA,
				"certfile":             files.ServerCert,
				"keyfile":              files.ServerKey,
				"persistence_location": filepath.Join(dir, "data") + "/",
				"log_dest":             "stderr",
			}
			if v, ok := repl[key]; ok {
				if key == "listener" && strings.TrimSpace(line) != "listener 8883" {
					t.Errorf("listener line %q, want the MQTT-over-TLS port 8883", line)
				}
				return key + " " + v, true
			}
			return line, false
		})
	for k, v := range keep {
		if !found[k] {
			t.Errorf("aqualoop.conf does not say %s %s", k, v)
		}
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "mosquitto.log")
	start(t, bin, []string{"-c", confPath}, logPath)

	broker := fmt.Sprintf("ssl://127.0.0.1:%d", port)
	clientTLS := certs.ClientTLS()
	connect := func(id, user string, cfg *tls.Config, handler mqtt.MessageHandler) (mqtt.Client, error) {
		o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(user).SetPassword(password).
			SetTLSConfig(cfg).SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
			SetConnectTimeout(5 * time.Second).SetDefaultPublishHandler(handler)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		tok.Wait()
		return c, tok.Error()
	}

	got := make(chan string, 100)
	var platform mqtt.Client
	waitFor(t, "mosquitto", logPath, func() error {
		c, err := connect("aqualoop-platform-1", platformUser, clientTLS, nil)
		if err != nil {
			return err
		}
		platform = c
		return nil
	})
	t.Cleanup(func() { platform.Disconnect(100) })
	onMsg := func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + " " + string(m.Payload()) }
	// Ingest's shared subscription, and the edges' status.
	for _, topic := range []string{"$share/aqualoop/aqualoop/v1/+/meters/+", "aqualoop/v1/+/edges/+/status"} {
		tok := platform.Subscribe(topic, 1, onMsg)
		tok.Wait()
		if err := tok.Error(); err != nil {
			t.Fatalf("subscribe %s: %v", topic, err)
		}
		if st := tok.(*mqtt.SubscribeToken).Result()[topic]; st == 0x80 {
			t.Fatalf("subscribe %s: refused", topic)
		}
	}

	t.Run("no client certificate is refused", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(mustRead(t, files.CA))
		c, err := connect("no-cert", "demo", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil)
		if err == nil {
			c.Disconnect(0)
			t.Fatal("connected without a client certificate")
		}
	})
	t.Run("wrong password is refused", func(t *testing.T) {
		o := mqtt.NewClientOptions().AddBroker(broker).SetClientID("bad-pw").SetUsername("demo").SetPassword("nope").
			SetTLSConfig(clientTLS).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); tok.Wait() && tok.Error() == nil {
			c.Disconnect(0)
			t.Fatal("connected with a wrong password")
		}
	})

	edge, err := connect("aqualoop-edge-demo-edge-1", "demo", clientTLS, nil)
	if err != nil {
		t.Fatalf("edge connect: %v", err)
	}
	defer edge.Disconnect(100)
	publish := func(topic, payload string) {
		t.Helper()
		tok := edge.Publish(topic, 1, false, payload)
		tok.Wait()
		if err := tok.Error(); err != nil {
			t.Fatalf("publish %s: %v", topic, err)
		}
	}
	// In order: allowed, denied (still acknowledged by Mosquitto 2, never delivered), allowed,
	// and a last allowed marker. Once the marker arrives, everything before it has been routed.
	publish(wire.ReadingTopic("demo", "M01"), "own-site")
	publish(wire.ReadingTopic("other", "M01"), "other-site")
	publish(wire.DeadLetterTopic("demo"), "edge-deadletter")
	publish(wire.StatusTopic("demo", "edge-1"), "online")
	publish(wire.StatusTopic("other", "edge-9"), "spoofed")
	publish(wire.ReadingTopic("demo", "M02"), "marker")

	var received []string
	for {
		m := <-got
		received = append(received, m)
		if strings.HasSuffix(m, " marker") {
			break
		}
	}
	want := []string{
		wire.ReadingTopic("demo", "M01") + " own-site",
		wire.StatusTopic("demo", "edge-1") + " online",
		wire.ReadingTopic("demo", "M02") + " marker",
	}
	slices.Sort(received)
	slices.Sort(want)
	if !slices.Equal(received, want) {
		t.Errorf("platform received %q, want exactly %q (another site's topics must be denied)", received, want)
	}

	// The other site's own account reaches the platform; its edge is not the demo edge.
	other, err := connect("aqualoop-edge-other-edge-9", "other", clientTLS, nil)
	if err != nil {
		t.Fatalf("other edge connect: %v", err)
	}
	defer other.Disconnect(100)
	if tok := other.Publish(wire.ReadingTopic("other", "M07"), 1, false, "other-own"); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if m := <-got; m != wire.ReadingTopic("other", "M07")+" other-own" {
		t.Errorf("platform received %q, want the other site's own reading", m)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- (b) Grafana ---------------------------------------------------------------------------

// schema is what the store writes per measurement: tags and fields. Indicator fields come from
// engine.ResultOf with every figure defined, so a renamed figure breaks this test.
func schema(t *testing.T) (tags, fields map[string]map[string]bool) {
	t.Helper()
	res := fullResult(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	ind := map[string]bool{"fields": true}
	for k := range res.Fields {
		ind[k] = true
	}
	tags = map[string]map[string]bool{
		"indicator": {"site": true, "boundary": true, "period": true},
		"volume":    {"site": true, "meter": true},
	}
	fields = map[string]map[string]bool{
		"indicator": ind,
		"volume":    {"volume": true, "flags": true, "coverage": true},
	}
	return tags, fields
}

// fullResult is a site result with every indicator defined.
func fullResult(start time.Time) engine.Result {
	var ind engine.Indicators
	ind.Site, ind.Boundary = "demo", "site"
	ind.Volumes = engine.Volumes{Vi: 1000, Vu: 50, Vr: 9000}
	ind.Coverage = 1
	rv := reflect.ValueOf(&ind.Rates).Elem()
	for i := range rv.NumField() {
		x := 0.5
		rv.Field(i).Addr().Interface().(*engine.Indicator).Value = &x
	}
	for l := 1; l <= 3; l++ {
		r, e := 0.9, 1.0
		ind.Metering = append(ind.Metering, engine.LevelMetering{Level: l, Rate: &r, EquippingRate: &e})
	}
	b := &engine.Balance{Levels: []engine.LevelImbalance{{Level: 2, MaxAbs: 0.03}}}
	b.Whole.ClosureError, b.Whole.ClosureOK = 0.02, true
	return engine.ResultOf(ind, b, engine.Day, start)
}

type dashboardQuery struct{ panel, query string }

func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Query    string `json:"query"`
				RawQuery bool   `json:"rawQuery"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
				Query      any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(mustRead(t, "grafana/aqualoop-dashboard.json"), &d); err != nil {
		t.Fatalf("parse dashboard: %v", err)
	}
	var qs []dashboardQuery
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			q, _ := v.Query.(string)
			qs = append(qs, dashboardQuery{"variable " + v.Name, q})
		}
	}
	for _, want := range []string{"datasource", "site"} {
		if _, ok := vars[want]; !ok {
			t.Errorf("dashboard has no $%s variable", want)
		}
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !tg.RawQuery {
				t.Errorf("panel %q: target is not a raw InfluxQL query", p.Title)
			}
			qs = append(qs, dashboardQuery{p.Title, tg.Query})
		}
	}
	return qs
}

var (
	fromRe  = regexp.MustCompile(`FROM "([^"]+)"`)
	identRe = regexp.MustCompile(`(AS )?"([^"]+)"`)
)

func TestGrafanaQueriesNameStoredSeries(t *testing.T) {
	tags, fields := schema(t)
	qs := dashboardQueries(t)
	charted := map[string]bool{}
	for _, q := range qs {
		m := fromRe.FindAllStringSubmatch(q.query, -1)
		if len(m) != 1 {
			t.Errorf("%s: %q names %d measurements, want 1", q.panel, q.query, len(m))
			continue
		}
		meas := m[0][1]
		if fields[meas] == nil {
			t.Errorf("%s: measurement %q is not one the store writes", q.panel, meas)
			continue
		}
		if !strings.Contains(q.query, `"site" =~ /^$site$/`) && !strings.Contains(q.query, `KEY = "site"`) {
			t.Errorf("%s: %q does not filter on $site", q.panel, q.query)
		}
		nFields := 0
		rest := strings.Replace(q.query, m[0][0], "", 1)
		for _, id := range identRe.FindAllStringSubmatch(rest, -1) {
			name := id[2]
			switch {
			case id[1] != "": // an alias
			case fields[meas][name]:
				nFields++
				charted[meas+"."+name] = true
			case tags[meas][name]:
			default:
				t.Errorf("%s: %q is neither a field nor a tag of %s (query %q)", q.panel, name, meas, q.query)
			}
		}
		if nFields == 0 && !strings.HasPrefix(q.query, "SHOW TAG VALUES") {
			t.Errorf("%s: %q charts no field", q.panel, q.query)
		}
	}
	for _, want := range []string{"indicator.r", "indicator.vi", "indicator.vr", "volume.volume"} {
		if !charted[want] {
			t.Errorf("no panel charts %s", want)
		}
	}
}

// ---- (c) InfluxDB --------------------------------------------------------------------------

func TestInfluxConfigServesTheDashboard(t *testing.T) {
	bin := testenv.Require(t, "influxd")
	orig := settings(t, "influxdb/influxdb.conf", "=")
	for key, want := range map[string]string{
		".reporting-disabled": "true", "http.flux-enabled": "true", "http.auth-enabled": "true",
		"meta.dir": "/var/lib/influxdb/meta", "data.dir": "/var/lib/influxdb/data", "data.wal-dir": "/var/lib/influxdb/wal",
	} {
		if got := one(t, orig, key); got != want {
			t.Errorf("influxdb.conf %s = %q, want %q", key, got, want)
		}
	}

	dir := t.TempDir()
	httpPort, rpcPort := freePort(t), freePort(t)
	for rpcPort == httpPort {
		rpcPort = freePort(t)
	}
	conf := rewrite(t, "influxdb/influxdb.conf",
		[]string{".bind-address", "meta.dir", "data.dir", "data.wal-dir", "http.bind-address"},
		func(section, key, line string) (string, bool) {
			var v string
			switch section + "." + key {
			case ".bind-address":
				v = fmt.Sprintf("127.0.0.1:%d", rpcPort)
			case "http.bind-address":
				v = fmt.Sprintf("127.0.0.1:%d", httpPort)
			case "meta.dir", "data.dir", "data.wal-dir":
				v = filepath.Join(dir, strings.TrimPrefix(strings.Trim(strings.SplitN(line, "=", 2)[1], ` "`), "/var/lib/influxdb/"))
			default:
				return line, false
			}
			return fmt.Sprintf("%s = %q", key, v), true
		})
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "influxd.log")
	start(t, bin, []string{"run", "-config", confPath}, logPath)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitFor(t, "influxd", logPath, func() error {
		resp, err := http.Get(base + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("GET /ping: %s", resp.Status)
		}
		return nil
	})

	// Authentication is on: the first admin may be created without credentials, nothing else.
	if code, body := influxQL(t, base, "", "", "CREATE USER admin WITH PASSWORD '"+password+"' WITH ALL PRIVILEGES"); code != http.StatusOK {
		t.Fatalf("create admin: %d %s", code, body)
	}
	if code, _ := influxQL(t, base, "", "", "SHOW DATABASES"); code != http.StatusUnauthorized {
		t.Errorf("SHOW DATABASES without credentials: %d, want 401 (auth-enabled)", code)
	}

	ctx := context.Background()
	st, err := store.OpenInflux(ctx, store.InfluxConfig{
		URLs: []string{base}, Token: "admin:" + password, Bucket: "aqualoop/autogen", CreateDatabase: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := st.WriteBuckets(ctx, []ledger.Bucket{
		{Site: "demo", Meter: "M01", Start: day.Add(time.Hour), Volume: 0.7, Coverage: 1},
		{Site: "demo", Meter: "M16", Start: day.Add(time.Hour), Volume: 0.4, Flags: ledger.Rollover, Coverage: 0.5},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteResults(ctx, []engine.Result{fullResult(day)}); err != nil {
		t.Fatal(err)
	}

	// What the store actually wrote is what the dashboard test assumes.
	_, fields := schema(t)
	for meas, want := range fields {
		code, body := influxQL(t, base, "aqualoop", "admin", `SHOW FIELD KEYS FROM "`+meas+`"`)
		if code != http.StatusOK {
			t.Fatalf("show field keys: %d %s", code, body)
		}
		got := map[string]bool{}
		for _, row := range rows(t, body) {
			got[row[0].(string)] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s fields in InfluxDB %v, the dashboard test assumes %v", meas, keys(got), keys(want))
		}
	}

	// Every dashboard query runs and finds the data written above.
	vars := strings.NewReplacer("$site", "demo", "$period", "day", "$meter", ".*", "$__interval", "1h",
		"$timeFilter", fmt.Sprintf("time >= %d AND time < %d", day.UnixNano(), day.Add(48*time.Hour).UnixNano()))
	for _, q := range dashboardQueries(t) {
		code, body := influxQL(t, base, "aqualoop", "admin", vars.Replace(q.query))
		if code != http.StatusOK || strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", q.panel, code, body)
			continue
		}
		if len(rows(t, body)) == 0 {
			t.Errorf("%s: %q found nothing: %s", q.panel, vars.Replace(q.query), body)
		}
	}

	// Flux is on.
	flux := `from(bucket: "aqualoop/autogen") |> range(start: 2026-10-01T00:00:00Z) |> filter(fn: (r) => r._measurement == "volume") |> count()`
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v2/query", strings.NewReader(flux))
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Authorization", "Token admin:"+password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "_value") {
		t.Errorf("flux query: %s %s", resp.Status, out)
	}
}

func influxQL(t *testing.T, base, db, user, q string) (int, string) {
	t.Helper()
	form := url.Values{"q": {q}}
	if db != "" {
		form.Set("db", db)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// rows are every value row of every series of an InfluxQL answer.
func rows(t *testing.T, body string) [][]any {
	t.Helper()
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	var out [][]any
	for _, res := range r.Results {
		for _, s := range res.Series {
			out = append(out, s.Values...)
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ---- (d) systemd ---------------------------------------------------------------------------

var caseRe = regexp.MustCompile(`case "([a-z]+)"`)

func TestSystemdUnits(t *testing.T) {
	readme := string(mustRead(t, "../README.md"))
	tests := []struct {
		unit, binary, command, config, state string
	}{
		{"systemd/aqualoop.service", "aqualoop", "serve", "/etc/aqualoop/aqualoop.yaml", "aqualoop"},
		{"systemd/aqualoop-edge.service", "aqualoop-edge", "collect", "/etc/aqualoop/edge.yaml", "aqualoop-edge"},
	}
	for _, tc := range tests {
		t.Run(tc.unit, func(t *testing.T) {
			u := settings(t, tc.unit, "=")
			exec := strings.Fields(one(t, u, "Service.ExecStart"))
			if len(exec) != 4 || filepath.Base(exec[0]) != tc.binary || exec[1] != tc.command || exec[2] != "--config" || exec[3] != tc.config {
				t.Errorf("ExecStart %q, want %s %s --config %s", exec, tc.binary, tc.command, tc.config)
			}
			if !filepath.IsAbs(exec[0]) {
				t.Errorf("ExecStart binary %q is not an absolute path", exec[0])
			}
			var cmds []string
			for _, m := range caseRe.FindAllStringSubmatch(string(mustRead(t, "../cmd/"+tc.binary+"/main.go")), -1) {
				cmds = append(cmds, m[1])
			}
			if !slices.Contains(cmds, tc.command) {
				t.Errorf("%s has no subcommand %q (it has %v)", tc.binary, tc.command, cmds)
			}
			if _, err := os.Stat("../configs/demo/" + filepath.Base(tc.config)); err != nil {
				t.Errorf("no example config for %s: %v", tc.config, err)
			}
			if !strings.Contains(readme, tc.config) || !strings.Contains(readme, tc.unit) {
				t.Errorf("README does not name %s and deploy/%s", tc.config, tc.unit)
			}
			for key, want := range map[string]string{
				"Service.ProtectSystem": "strict", "Service.NoNewPrivileges": "yes", "Service.Restart": "on-failure",
				"Service.KillSignal": "SIGTERM", "Service.DynamicUser": "yes", "Service.StateDirectory": tc.state,
				"Service.ReadWritePaths": "/var/lib/" + tc.state, "Service.WorkingDirectory": "/var/lib/" + tc.state,
				"Install.WantedBy": "multi-user.target",
			} {
				if got := one(t, u, key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			// The edge drains its spool for up to 5 s, each publish waiting up to 10 s.
			if s, err := strconv.Atoi(one(t, u, "Service.TimeoutStopSec")); err != nil || s < 20 {
				t.Errorf("TimeoutStopSec %v, want at least 20 s for the spool flush", u["Service.TimeoutStopSec"])
			}
		})
	}
}
