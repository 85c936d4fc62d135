package testenv

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MosquittoConf starts Mosquitto with the configuration file at path as it is, except for the
// lines a test must own: the listener moves to a free port on 127.0.0.1, the persistence folder
// to a temporary one, logs to the test's log file, and user to the current user. Every other
// setting (queue limits, persistence, autosave, packet size) is the file's, so a test proves what
// the file does.
func MosquittoConf(t testing.TB, path string) *Broker {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read mosquitto config: %v", err)
	}
	b := newBroker(t)
	b.render = func() (string, error) { return b.rewrite(string(src)) }
	b.launch()
	return b
}

// rewrite replaces the test-owned settings of a Mosquitto config and checks there is exactly
// one listener.
func (b *Broker) rewrite(src string) (string, error) {
	who := "root"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	var out []string
	listeners := 0
	for line := range strings.SplitSeq(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			out = append(out, line)
			continue
		}
		switch f[0] {
		case "listener":
			listeners++
			line = fmt.Sprintf("listener %d 127.0.0.1", b.port)
		case "persistence_location":
			line = "persistence_location " + filepath.Join(b.dir, "data") + "/"
		case "user", "pid_file", "log_dest":
			continue
		}
		out = append(out, line)
	}
	if listeners != 1 {
		return "", fmt.Errorf("%d listeners in the config, want 1", listeners)
	}
	out = append(out, "user "+who, "log_dest stderr", "log_timestamp_format %Y-%m-%dT%H:%M:%S")
	return strings.Join(out, "\n") + "\n", nil
}

// Kill stops the broker with SIGKILL, as a crash or the OOM killer would: nothing is saved
// since the last autosave. Start runs it again.
func (b *Broker) Kill() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return
	}
	_ = b.proc.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-b.proc.done:
	case <-time.After(15 * time.Second):
		b.t.Errorf("mosquitto did not exit within 15 s of SIGKILL")
	}
	b.proc = nil
}
