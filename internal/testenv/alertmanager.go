package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// AM is a Prometheus Alertmanager process listening on 127.0.0.1, with clustering off and its
// configuration and data in the test's temporary folder.
type AM struct {
	bin     string
	dir     string
	conf    string
	logPath string
	port    int
	proc    *process
}

// alertmanagerBinaries are the names Alertmanager is installed under: Debian's package and the
// upstream release.
var alertmanagerBinaries = []string{"prometheus-alertmanager", "alertmanager"}

const alertmanagerHint = "install it with `apt-get install prometheus-alertmanager` (Debian/Ubuntu) or put the upstream `alertmanager` binary in PATH"

// requireAlertmanager is Require for a binary with two possible names.
func requireAlertmanager(t testing.TB) string {
	t.Helper()
	for _, b := range alertmanagerBinaries {
		if p, err := lookup(b); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("prometheus-alertmanager not found (CI is set, so this fails instead of skipping): %s", alertmanagerHint)
		return ""
	}
	t.Skipf("prometheus-alertmanager not found, skipping: %s", alertmanagerHint)
	return ""
}

// Alertmanager starts Alertmanager for the test with config (its YAML; a single null receiver
// when empty) and stops it when the test ends.
func Alertmanager(t testing.TB, config string) *AM {
	t.Helper()
	bin := requireAlertmanager(t)
	dir := t.TempDir()
	am := &AM{
		bin:     bin,
		dir:     dir,
		conf:    filepath.Join(dir, "alertmanager.yml"),
		logPath: filepath.Join(dir, "alertmanager.log"),
	}
	if config == "" {
		config = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"
	}
	if err := os.WriteFile(am.conf, []byte(config), 0o644); err != nil {
		t.Fatalf("write alertmanager config: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatalf("create alertmanager data dir: %v", err)
	}
	t.Cleanup(func() {
		if am.proc != nil {
			if err := am.proc.stop(15 * time.Second); err != nil {
				t.Logf("stop alertmanager: %v", err)
			}
		}
	})
	const attempts = 5
	for i := 1; ; i++ {
		am.port = freePort(t)
		args := []string{
			"--config.file=" + am.conf,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + hostPort(am.port),
			"--cluster.listen-address=", // no gossip: a single instance, no extra port
			"--log.level=info",
		}
		p, retry := launch(t, "alertmanager", hostPort(am.port), bin, args, am.logPath, 30*time.Second, 5*time.Second, am.ready, i < attempts)
		if retry {
			continue // someone took the port between freePort and the bind
		}
		am.proc = p
		return am
	}
}

// URL is Alertmanager's base URL: "http://127.0.0.1:PORT".
func (am *AM) URL() string { return "http://" + hostPort(am.port) }

// Log is what Alertmanager has logged so far.
func (am *AM) Log() string {
	b, _ := os.ReadFile(am.logPath)
	return string(b)
}

func (am *AM) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, am.URL()+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/-/ready answered %s", resp.Status)
	}
	return nil
}
