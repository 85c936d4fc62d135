package testenv

import (
	"syscall"
	"testing"
	"time"
)

// Stop stops influxd with SIGTERM (its data stays); Start runs it again on the same ports.
func (in *Influx) Stop(t testing.TB) {
	t.Helper()
	if in.proc == nil {
		return
	}
	if err := in.proc.stop(30 * time.Second); err != nil {
		t.Errorf("stop influxd: %v", err)
	}
	in.proc = nil
}

// Start runs a stopped influxd again with the same config, ports and data, and waits until it
// answers /ping.
func (in *Influx) Start(t testing.TB) {
	t.Helper()
	if in.proc != nil && !in.proc.exited() {
		return
	}
	p, err := startProcess(in.bin, []string{"run", "-config", in.conf}, in.logPath)
	if err != nil {
		t.Fatalf("restart influxd: %v", err)
	}
	if err := waitReady(p, 90*time.Second, in.ping); err != nil {
		_ = p.stop(10 * time.Second)
		t.Logf("influxd log %s (tail):\n%s", in.logPath, logTail(in.logPath, 40))
		t.Fatalf("restart influxd on %s: %v", hostPort(in.port), err)
	}
	in.proc = p
}

// Freeze stops influxd with SIGSTOP: its port stays open and accepts connections, but nothing
// answers, as with a server stuck on a full disk or in a long GC. Thaw (SIGCONT) resumes it.
func (in *Influx) Freeze(t testing.TB) {
	t.Helper()
	if in.proc == nil {
		t.Fatal("freeze influxd: not running")
	}
	if err := in.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze influxd: %v", err)
	}
	// A frozen influxd cannot take SIGTERM when the test ends: thaw it first.
	p := in.proc
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
}

// Thaw resumes a frozen influxd.
func (in *Influx) Thaw(t testing.TB) {
	t.Helper()
	if err := in.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("thaw influxd: %v", err)
	}
}
