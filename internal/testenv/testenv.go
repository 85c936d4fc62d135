// Package testenv starts the real servers that aqualoop's tests talk to, Mosquitto and InfluxDB
// 1.8, each on free 127.0.0.1 ports with its configuration and data in the test's temporary
// folder, and stops them when the test ends. It is test plumbing only: nothing outside _test.go
// files may import it.
//
// A missing binary skips the test on a developer machine and fails it when the CI environment
// variable is set, so a CI run can never pass by skipping (see Require).
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// installHints says how to get each binary this package starts.
var installHints = map[string]string{
	"mosquitto":        "install it with `apt-get install mosquitto` (Debian/Ubuntu) or `brew install mosquitto`",
	"mosquitto_passwd": "it comes with Mosquitto: `apt-get install mosquitto` (Debian/Ubuntu) or `brew install mosquitto`",
	"chromium":         "install it with `apt-get install chromium fonts-noto-cjk` (Debian/Ubuntu; the fonts draw the Chinese pages)",
	"influxd":          "install it with `go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10` (about 2.5 minutes the first time)",
}

// Require returns the path of binary, looked up in PATH, then in the sbin folders (where Debian
// puts mosquitto) and in Go's bin folders ($GOBIN, $(go env GOPATH)/bin). When it is missing the
// test is skipped, unless the CI environment variable is non-empty: then it fails, because a CI
// run must never pass by skipping.
func Require(t testing.TB, binary string) string {
	t.Helper()
	if p, err := lookup(binary); err == nil {
		return p
	}
	hint := installHints[binary]
	if hint == "" {
		hint = "install it or put it in PATH"
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (CI is set, so this fails instead of skipping): %s", binary, hint)
		return ""
	}
	t.Skipf("%s not found, skipping: %s", binary, hint)
	return ""
}

func lookup(binary string) (string, error) {
	if p, err := exec.LookPath(binary); err == nil {
		return p, nil
	}
	dirs := []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	dirs = append(dirs, filepath.Join(goPath(), "bin"))
	for _, d := range dirs {
		p := filepath.Join(d, binary)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", binary, exec.ErrNotFound)
}

var goPath = sync.OnceValue(func() string {
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			// GOPATH may list several folders; installs go to the first.
			return filepath.SplitList(p)[0]
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.SplitList(p)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go")
})

// freePort returns a TCP port on 127.0.0.1 that nobody listened on a moment ago. Another process
// can take it before the server binds it; startup retries with new ports when that happens.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is one run of a server binary whose output goes to a log file.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, valid after done
}

func startProcess(bin string, args []string, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	fmt.Fprintf(logf, "=== %s %s (%s)\n", bin, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = cleanEnv()
	// Its own process group, so a Ctrl-C in the terminal reaches the test binary, which then
	// stops the server through t.Cleanup, rather than killing the server under a running test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// cleanEnv drops variables that would override the generated configuration (influxd reads
// INFLUXDB_* settings from the environment).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "INFLUXDB_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the exit, killing the process if it takes longer than grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM and was killed", filepath.Base(p.cmd.Path), grace)
	}
}

// errExited reports a server that died while we waited for it to become ready.
var errExited = errors.New("server exited during startup")

// waitReady polls ready until it succeeds, the process exits or timeout passes. A success is
// only trusted while our process is still running: on a port race the answer could come from
// whoever took the port.
// launch starts a server and waits until ready answers. retry is true when the server exited
// because another process took its port between choosing it and binding it, and another try
// on new ports is allowed; any other failure ends the test with the server's log.
func launch(t testing.TB, name, addr, bin string, args []string, logPath string, wait, stopWait time.Duration,
	ready func(ctx context.Context) error, mayRetry bool) (p *process, retry bool) {
	t.Helper()
	p, err := startProcess(bin, args, logPath)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	err = waitReady(p, wait, ready)
	if err == nil {
		return p, false
	}
	_ = p.stop(stopWait)
	if errors.Is(err, errExited) && portInUse(logPath) && mayRetry {
		return nil, true
	}
	t.Logf("%s log %s (tail):\n%s", name, logPath, logTail(logPath, 40))
	t.Fatalf("start %s on %s: %v", name, addr, err)
	return nil, false
}

func waitReady(p *process, timeout time.Duration, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%w: %v", errExited, p.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		last = ready(ctx)
		cancel()
		if last == nil && !p.exited() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// portInUse reports whether the last run in a log says the server could not bind its port.
func portInUse(logPath string) bool {
	b, _ := os.ReadFile(logPath)
	if i := bytes.LastIndex(b, []byte("=== ")); i >= 0 {
		b = b[i:]
	}
	b = bytes.ToLower(b)
	return bytes.Contains(b, []byte("address already in use")) || bytes.Contains(b, []byte("address in use"))
}

// logTail returns the last n lines of the log at path, for a failure message.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
