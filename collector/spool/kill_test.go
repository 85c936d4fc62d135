package spool

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// kill9Env switches the test binary into the child of TestKill9: "dir|policy|first|stopAcking".
const kill9Env = "AQUALOOP_SPOOL_KILL9_CHILD"

var kill9Meters = []string{"M0", "M1", "M2", "M3"}

func kill9Config(dir, policy string) Config {
	// Small segments, so that sealing and deleting segments happen during the run.
	return Config{Dir: dir, SegmentBytes: 16 << 10, MaxBytes: 1 << 30, Fsync: policy, FsyncInterval: 10 * time.Millisecond}
}

// TestKill9 runs a child process that appends as fast as it can while a consumer acknowledges,
// SIGKILLs it mid-write, and checks what a new Open finds: no corrupt record, every meter's
// numbers contiguous, nothing unacknowledged lost, and every Append that returned present. The
// last holds for every policy, since a reading reaches the kernel before Append returns; the
// policies differ only on a power cut, which a test cannot cause. Three rounds run on the same
// directory, so recovery also recovers from its own earlier recoveries.
func TestKill9(t *testing.T) {
	if spec := os.Getenv(kill9Env); spec != "" {
		os.Exit(kill9Child(spec))
	}
	tests := []struct {
		policy string
		// appends is how many returned Appends the parent waits for before the kill.
		appends int
	}{
		{FsyncNever, 4000},
		{FsyncInterval, 4000},
		{FsyncAlways, 400},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			dir := t.TempDir()
			appended := map[string]uint64{}       // last seq reported appended, per meter
			acked := map[string]uint64{}          // last seq reported acknowledged, per meter
			values := map[string]map[uint64]int{} // the reading index reported for each seq
			for _, m := range kill9Meters {
				values[m] = map[uint64]int{}
			}
			for round := range 3 {
				runKill9Child(t, dir, tt.policy, round, tt.appends, appended, acked, values)
				checkAfterKill(t, dir, tt.policy, round, appended, acked, values)
			}
		})
	}
}

// runKill9Child starts the child, reads its reports until it has reported the given number of
// appends, kills it with SIGKILL, and reads what it reported before dying.
func runKill9Child(t *testing.T, dir, policy string, round, appends int, appended, acked map[string]uint64, values map[string]map[uint64]int) {
	t.Helper()
	first := round * 1_000_000
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d|%d", kill9Env, dir, policy, first, appends*3/4))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "a":
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			i, _ := strconv.Atoi(f[3])
			if seq <= appended[f[1]] {
				t.Errorf("round %d: %s appended seq %d after %d", round, f[1], seq, appended[f[1]])
			}
			appended[f[1]] = seq
			values[f[1]][seq] = i
			if n++; n == appends {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		case len(f) == 3 && f[0] == "k":
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			acked[f[1]] = max(acked[f[1]], seq)
		default:
			// Test framework chatter would show here; anything else is the child's error.
			if !strings.HasPrefix(sc.Text(), "=== RUN") {
				t.Errorf("round %d: child said %q", round, sc.Text())
			}
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("round %d: child ended after %d appends before it was killed: %v\n%s", round, n, werr, stderr.String())
	}
	if ee, ok := werr.(*exec.ExitError); !ok || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("round %d: child ended with %v, want signal: killed", round, werr)
	}
}

func checkAfterKill(t *testing.T, dir, policy string, round int, appended, acked map[string]uint64, values map[string]map[uint64]int) {
	t.Helper()
	var logs logBuffer
	q, err := Open(kill9Config(dir, policy), newLogger(&logs), nil)
	if err != nil {
		t.Fatalf("round %d: open after kill -9: %v", round, err)
	}
	defer q.Close()
	es := peekAll(t, q)
	t.Logf("round %d: %d unacknowledged after the kill, torn tail truncated: %v",
		round, len(es), len(logs.records(t, "torn write at the end of the spool truncated")) > 0)
	if len(es) == 0 {
		t.Fatalf("round %d: nothing unacknowledged after the kill; the child stops acknowledging early so there must be", round)
	}
	present := map[string][]uint64{}
	for k, e := range es {
		if k > 0 && e.ID != es[k-1].ID+1 {
			t.Fatalf("round %d: ID %d follows %d", round, e.ID, es[k-1].ID)
		}
		r := e.Reading
		vals, ok := values[r.Meter]
		if !ok || r.Site != "demo" || len(r.Points) != 2 {
			t.Fatalf("round %d: entry %d is not a reading the child wrote: %+v", round, e.ID, r)
		}
		if i, ok := vals[r.Seq]; ok && r.Points[0].Value != float64(i) {
			t.Fatalf("round %d: %s seq %d holds total %v, the child appended %d", round, r.Meter, r.Seq, r.Points[0].Value, i)
		}
		present[r.Meter] = append(present[r.Meter], r.Seq)
	}
	for _, m := range kill9Meters {
		ps := present[m]
		for k := 1; k < len(ps); k++ {
			if ps[k] != ps[k-1]+1 {
				t.Fatalf("round %d: %s seq %d follows %d", round, m, ps[k], ps[k-1])
			}
		}
		if len(ps) == 0 {
			if appended[m] > acked[m] {
				t.Fatalf("round %d: %s appended through %d, acknowledged through %d, but none is left", round, m, appended[m], acked[m])
			}
			continue
		}
		// Together with the acknowledged 1..acked, the present ones cover 1..last.
		if ps[0] > acked[m]+1 {
			t.Fatalf("round %d: %s acknowledged through %d but the spool resumes at %d: unacknowledged readings lost", round, m, acked[m], ps[0])
		}
		if last := ps[len(ps)-1]; last < appended[m] {
			t.Fatalf("round %d: %s Append returned seq %d but the spool ends at %d", round, m, appended[m], last)
		}
	}
	if round < 2 {
		return
	}
	// Numbering continues after kill -9. At most one reading was written but not reported
	// (killed between the write and the report), so the next number is one or two beyond the
	// highest known.
	for _, m := range kill9Meters {
		known := max(appended[m], acked[m])
		if ps := present[m]; len(ps) > 0 {
			known = max(known, ps[len(ps)-1])
		}
		r := mustAppend(t, q, reading(m, 0))
		if r.Seq != known+1 && r.Seq != known+2 {
			t.Errorf("%s continues at seq %d after kill -9, want %d", m, r.Seq, known+1)
		}
	}
}

// kill9Child appends until it is killed, printing "a meter seq index" after every Append that
// returned and "k meter seq" after every Ack, per meter in the batch. Its consumer stops
// acknowledging after stopAcking appends so that unacknowledged readings exist at the kill.
func kill9Child(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		fmt.Printf("error bad spec %q\n", spec)
		return 2
	}
	first, _ := strconv.Atoi(parts[2])
	stopAcking, _ := strconv.Atoi(parts[3])
	q, err := Open(kill9Config(parts[0], parts[1]), nil, nil)
	if err != nil {
		fmt.Printf("error open: %v\n", err)
		return 2
	}
	var n atomic.Int64
	go func() {
		for n.Load() < int64(stopAcking) {
			es, err := q.Peek(context.Background(), 20)
			if err != nil {
				fmt.Printf("error peek: %v\n", err)
				os.Exit(2)
			}
			if err := q.Ack(es[len(es)-1].ID); err != nil {
				fmt.Printf("error ack: %v\n", err)
				os.Exit(2)
			}
			last := map[string]uint64{}
			for _, e := range es {
				last[e.Reading.Meter] = e.Reading.Seq
			}
			for m, s := range last {
				fmt.Printf("k %s %d\n", m, s)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := first; ; i++ {
		r, err := q.Append(reading(kill9Meters[i%len(kill9Meters)], i))
		if err != nil {
			fmt.Printf("error append: %v\n", err)
			return 2
		}
		// One write per line: lines from the two goroutines never interleave on the pipe.
		fmt.Printf("a %s %d %d\n", r.Meter, r.Seq, i)
		n.Add(1)
	}
}
