package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aqualoop/aqualoop/collector"
)

func TestAppendPeekAck(t *testing.T) {
	q := mustOpen(t, Config{Dir: t.TempDir()}, nil, nil)
	meters := []string{"M01", "M02", "M03"}
	wantSeq := map[string]uint64{}
	for i := range 10 {
		m := meters[i%len(meters)]
		r := mustAppend(t, q, reading(m, i))
		wantSeq[m]++
		if r.Seq != wantSeq[m] {
			t.Fatalf("reading %d of %s stamped seq %d, want %d", i, m, r.Seq, wantSeq[m])
		}
	}
	if q.Len() != 10 {
		t.Fatalf("Len = %d, want 10", q.Len())
	}
	ctx := context.Background()
	first, err := q.Peek(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	again, err := q.Peek(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range first {
		if e.ID != uint64(i+1) || e.Reading.Points[0].Value != float64(i) || e.Reading.Meter != meters[i%3] {
			t.Fatalf("entry %d = id %d %s total %v, want id %d %s total %d", i, e.ID, e.Reading.Meter, e.Reading.Points[0].Value, i+1, meters[i%3], i)
		}
		if again[i].ID != e.ID {
			t.Fatalf("a second Peek without Ack returned id %d at %d, want %d", again[i].ID, i, e.ID)
		}
	}
	if err := q.Ack(2); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 8 {
		t.Fatalf("Len after Ack(2) = %d, want 8", q.Len())
	}
	next, err := q.Peek(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 8 || next[0].ID != 3 || next[7].ID != 10 {
		t.Fatalf("after Ack(2) Peek returned %d entries from %d, want 8 from 3", len(next), next[0].ID)
	}
	if err := q.Ack(10); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 0 || q.OldestAge(base.Add(time.Hour)) != 0 {
		t.Fatalf("after acking everything Len = %d, OldestAge = %v, want 0 and 0", q.Len(), q.OldestAge(base.Add(time.Hour)))
	}
	if err := q.Ack(11); err == nil {
		t.Fatal("Ack beyond the last appended reading succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Peek(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Peek on an empty queue with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestPeekWaitsForAppend(t *testing.T) {
	q := mustOpen(t, Config{Dir: t.TempDir()}, nil, nil)
	got := make(chan []Entry, 1)
	go func() {
		es, err := q.Peek(context.Background(), 10)
		if err != nil {
			t.Error(err)
		}
		got <- es
	}()
	mustAppend(t, q, reading("M01", 7))
	es := <-got
	if len(es) != 1 || es[0].Reading.Points[0].Value != 7 {
		t.Fatalf("waiting Peek returned %+v, want the one reading appended", es)
	}

	// Close wakes a waiting Peek.
	if err := q.Ack(es[0].ID); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := q.Peek(context.Background(), 1)
		errc <- err
	}()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Peek across Close = %v, want ErrClosed", err)
	}
	if _, err := q.Append(reading("M01", 8)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestAppendRejects(t *testing.T) {
	q := mustOpen(t, Config{Dir: t.TempDir(), SegmentBytes: minSegmentBytes}, nil, nil)
	bad := reading("M01", 1)
	bad.Meter = "M/01"
	if _, err := q.Append(bad); err == nil {
		t.Fatal("Append of a reading the wire codec rejects succeeded")
	}
	huge := reading("M01", 1)
	huge.Points[0].Error = string(make([]byte, minSegmentBytes))
	huge.Points[0].Quality = collector.Bad
	if _, err := q.Append(huge); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of a reading larger than a segment = %v, want ErrTooLarge", err)
	}
	// Neither used a sequence number.
	if r := mustAppend(t, q, reading("M01", 1)); r.Seq != 1 {
		t.Fatalf("first stored reading has seq %d, want 1", r.Seq)
	}
}

func TestReopen(t *testing.T) {
	tests := []struct {
		name  string
		ack   int // readings acknowledged before Close
		total int
	}{
		{"nothing acknowledged", 0, 150},
		{"partly acknowledged", 70, 150},
		// Every segment but the last is deleted: the numbering must come from state.json.
		{"everything acknowledged", 150, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Dir: t.TempDir(), SegmentBytes: minSegmentBytes}
			q := mustOpen(t, cfg, nil, nil)
			meters := []string{"M01", "M02"}
			for i := range tt.total {
				mustAppend(t, q, reading(meters[i%2], i))
			}
			before := peekAll(t, q)
			if tt.ack > 0 {
				if err := q.Ack(before[tt.ack-1].ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(segmentFiles(t, cfg.Dir)); tt.ack == tt.total && n != 1 {
				t.Errorf("%d segment files left with everything acknowledged, want 1", n)
			}

			reg := prometheus.NewRegistry()
			q = mustOpen(t, cfg, nil, NewMetrics(reg))
			after := peekAll(t, q)
			want := before[tt.ack:]
			if len(after) != len(want) {
				t.Fatalf("after reopen %d readings, want %d", len(after), len(want))
			}
			for i := range want {
				if after[i].ID != want[i].ID || after[i].Reading.Meter != want[i].Reading.Meter ||
					after[i].Reading.Seq != want[i].Reading.Seq || !after[i].Reading.Time.Equal(want[i].Reading.Time) {
					t.Fatalf("entry %d after reopen = %d %s#%d, want %d %s#%d", i,
						after[i].ID, after[i].Reading.Meter, after[i].Reading.Seq, want[i].ID, want[i].Reading.Meter, want[i].Reading.Seq)
				}
			}
			if got := testutil.ToFloat64(q.m.replayed); got != float64(len(want)) {
				t.Errorf("replayed counter = %v, want %d", got, len(want))
			}
			for _, meter := range meters {
				r := mustAppend(t, q, reading(meter, 1000))
				if want := uint64(tt.total/2 + 1); r.Seq != want {
					t.Errorf("%s continues at seq %d after reopen, want %d", meter, r.Seq, want)
				}
			}
			r := mustAppend(t, q, reading("M03", 0))
			if r.Seq != 1 {
				t.Errorf("a new meter starts at seq %d, want 1", r.Seq)
			}
			if es := peekAll(t, q); es[len(es)-1].ID != uint64(tt.total+3) {
				t.Errorf("IDs continue at %d after reopen, want %d", es[len(es)-1].ID, tt.total+3)
			}
		})
	}
}

func TestLockedDir(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, Config{Dir: dir}, nil, nil)
	if _, err := Open(Config{Dir: dir}, nil, nil); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestOpenRejectsConfig(t *testing.T) {
	_, err := Open(Config{Dir: t.TempDir(), Fsync: "sometimes"}, nil, nil)
	if err == nil {
		t.Fatal("Open accepted fsync: sometimes")
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the last segment of a crash image holding 30 readings; the last record
		// starts at lastOff and the file is size bytes long.
		damage   func(t *testing.T, path string, lastOff, size int64)
		wantKept int
	}{
		{"cut inside the header", func(t *testing.T, path string, lastOff, _ int64) {
			truncate(t, path, lastOff+3)
		}, 29},
		{"cut inside the payload", func(t *testing.T, path string, _, size int64) {
			truncate(t, path, size-5)
		}, 29},
		{"payload bytes flipped", func(t *testing.T, path string, _, size int64) {
			writeAt(t, path, size-10, []byte("XX"))
		}, 29},
		{"zeros after the last record", func(t *testing.T, path string, _, size int64) {
			writeAt(t, path, size, make([]byte, 100))
		}, 30},
		{"length pointing past the end", func(t *testing.T, path string, _, size int64) {
			writeAt(t, path, size, []byte{0xff, 0xff, 0x00, 0x00, 1, 2, 3, 4, 5})
		}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := mustOpen(t, Config{Dir: t.TempDir()}, nil, nil)
			for i := range 30 {
				mustAppend(t, live, reading("M01", i))
			}
			dir := crashImage(t, live.cfg.Dir)
			live.mu.Lock()
			active := *live.segs[len(live.segs)-1]
			live.mu.Unlock()
			path := filepath.Join(dir, filepath.Base(active.path))
			tt.damage(t, path, active.lastOff, active.size)

			var logs logBuffer
			q := mustOpen(t, Config{Dir: dir}, newLogger(&logs), nil)
			es := peekAll(t, q)
			if len(es) != tt.wantKept {
				t.Fatalf("%d readings after recovery, want %d", len(es), tt.wantKept)
			}
			for i, e := range es {
				if e.Reading.Seq != uint64(i+1) || e.Reading.Points[0].Value != float64(i) {
					t.Fatalf("entry %d is seq %d total %v, want seq %d total %d", i, e.Reading.Seq, e.Reading.Points[0].Value, i+1, i)
				}
			}
			if len(logs.records(t, "torn write at the end of the spool truncated")) != 1 {
				t.Errorf("no warning about the truncated tail; logs:\n%s", logs.b.String())
			}
			// The torn reading was never durable: its number is given again.
			if r := mustAppend(t, q, reading("M01", 99)); r.Seq != uint64(tt.wantKept+1) {
				t.Errorf("next seq after recovery = %d, want %d", r.Seq, tt.wantKept+1)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = mustOpen(t, Config{Dir: dir}, nil, nil)
			if q.Len() != tt.wantKept+1 {
				t.Errorf("after a clean reopen Len = %d, want %d", q.Len(), tt.wantKept+1)
			}
		})
	}
}

func TestCorruptRecordInSealedSegment(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), SegmentBytes: minSegmentBytes}
	q := mustOpen(t, cfg, nil, nil)
	for i := range 100 {
		mustAppend(t, q, reading("M01", i))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, cfg.Dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3 for this test", len(segs))
	}
	// Damage the middle of the first segment: Open keeps what is before the damage.
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, segs[0], int64(len(data)/2), []byte("garbage"))

	var logs logBuffer
	q = mustOpen(t, cfg, newLogger(&logs), nil)
	es := peekAll(t, q)
	if len(logs.records(t, "damaged spool segment truncated, the readings after the damage are lost")) != 1 {
		t.Errorf("no error about the damaged segment; logs:\n%s", logs.b.String())
	}
	last := uint64(0)
	for _, e := range es {
		if e.Reading.Seq <= last {
			t.Fatalf("seq %d after %d: order broken", e.Reading.Seq, last)
		}
		last = e.Reading.Seq
	}
	if last != 100 || len(es) >= 100 || len(es) < 50 {
		t.Fatalf("%d readings up to seq %d after damage to the first segment, want the later segments whole", len(es), last)
	}
	if r := mustAppend(t, q, reading("M01", 100)); r.Seq != 101 {
		t.Errorf("next seq = %d, want 101", r.Seq)
	}
}

func TestDropOldestWhenFull(t *testing.T) {
	tests := []struct {
		name    string
		ackedAt int // readings acknowledged before the spool overflows
	}{
		{"nothing delivered", 0},
		{"part of the oldest segment delivered", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			var logs logBuffer
			cfg := Config{Dir: t.TempDir(), SegmentBytes: minSegmentBytes, MaxBytes: 3 * minSegmentBytes}
			q := mustOpen(t, cfg, newLogger(&logs), m)
			const total = 300
			for i := range total {
				mustAppend(t, q, reading("M01", i))
				if i+1 == tt.ackedAt {
					if err := q.Ack(uint64(tt.ackedAt)); err != nil {
						t.Fatal(err)
					}
				}
				if q.Bytes() > cfg.MaxBytes {
					t.Fatalf("after %d appends the spool holds %d bytes, above max_bytes %d", i+1, q.Bytes(), cfg.MaxBytes)
				}
			}
			dropped := testutil.ToFloat64(m.dropped.WithLabelValues(ReasonFull))
			es := peekAll(t, q)
			if int(dropped)+len(es)+tt.ackedAt != total {
				t.Fatalf("dropped %v + kept %d + delivered %d != appended %d", dropped, len(es), tt.ackedAt, total)
			}
			if dropped == 0 {
				t.Fatal("nothing dropped")
			}
			// The newest are kept, contiguous, and the oldest kept follows the last dropped.
			if es[len(es)-1].Reading.Seq != total {
				t.Fatalf("newest kept is seq %d, want %d", es[len(es)-1].Reading.Seq, total)
			}
			for i, e := range es {
				if want := uint64(tt.ackedAt + int(dropped) + i + 1); e.Reading.Seq != want {
					t.Fatalf("kept entry %d has seq %d, want %d", i, e.Reading.Seq, want)
				}
			}
			if got := testutil.ToFloat64(m.depth); got != float64(len(es)) {
				t.Errorf("depth gauge = %v, want %d", got, len(es))
			}
			// Every drop event is one error record; together they account for every dropped
			// reading and their time ranges follow each other without gap or overlap.
			recs := logs.records(t, "spool full, oldest readings dropped")
			if len(recs) == 0 {
				t.Fatal("no error logged for the drops")
			}
			sum := 0
			next := base.Add(time.Duration(tt.ackedAt) * time.Second)
			for _, r := range recs {
				if r["level"] != "ERROR" {
					t.Errorf("drop logged at %v, want ERROR", r["level"])
				}
				n := int(r["dropped"].(float64))
				from, _ := time.Parse(time.RFC3339Nano, r["from"].(string))
				to, _ := time.Parse(time.RFC3339Nano, r["to"].(string))
				if !from.Equal(next) || !to.Equal(from.Add(time.Duration(n-1)*time.Second)) {
					t.Errorf("drop of %d logged from %v to %v, want from %v to %v", n, from, to, next, next.Add(time.Duration(n-1)*time.Second))
				}
				next = to.Add(time.Second)
				sum += n
			}
			if sum != int(dropped) {
				t.Errorf("logs report %d dropped, counter %v", sum, dropped)
			}
		})
	}
}

func TestFsyncPolicies(t *testing.T) {
	tests := []struct {
		policy string
		// wantAppendSyncs says whether five appends fsync five times at once (always) or none.
		wantAppendSyncs bool
		// wantTickSyncs says whether the first tick of the flusher fsyncs.
		wantTickSyncs bool
	}{
		{FsyncNever, false, false},
		{FsyncInterval, false, true},
		{FsyncAlways, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				cfg := Config{Dir: t.TempDir(), Fsync: tt.policy, FsyncInterval: time.Second}
				q, err := Open(cfg, nil, NewMetrics(reg))
				if err != nil {
					t.Fatal(err)
				}
				start := fsyncCount(t, reg)
				for i := range 5 {
					mustAppend(t, q, reading("M01", i))
				}
				appendSyncs := fsyncCount(t, reg) - start
				if tt.wantAppendSyncs && appendSyncs < 5 || !tt.wantAppendSyncs && appendSyncs != 0 {
					t.Errorf("5 appends fsynced %d times", appendSyncs)
				}
				if err := q.Ack(2); err != nil {
					t.Fatal(err)
				}
				// No tick yet: the ack position on disk is still the one of Open.
				if n := reopenLen(t, crashImage(t, cfg.Dir)); n != 5 {
					t.Errorf("before the first tick a crash would resend %d readings, want 5", n)
				}
				beforeTick := fsyncCount(t, reg)
				time.Sleep(cfg.FsyncInterval)
				synctest.Wait()
				tickSyncs := fsyncCount(t, reg) - beforeTick
				if tt.wantTickSyncs && tickSyncs == 0 || !tt.wantTickSyncs && tickSyncs != 0 {
					t.Errorf("the flusher's tick fsynced %d times", tickSyncs)
				}
				// After a tick the ack position is saved, synced or not.
				if n := reopenLen(t, crashImage(t, cfg.Dir)); n != 3 {
					t.Errorf("after a tick a crash would resend %d readings, want 3", n)
				}
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
				if n := reopenLen(t, cfg.Dir); n != 3 {
					t.Errorf("after Close %d readings, want 3", n)
				}
			})
		})
	}
}

// reopenLen opens dir, returns Len and closes it again.
func reopenLen(t *testing.T, dir string) int {
	t.Helper()
	q, err := Open(Config{Dir: dir, Fsync: FsyncNever}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := q.Len()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOldestAge(t *testing.T) {
	q := mustOpen(t, Config{Dir: t.TempDir()}, nil, nil)
	now := base.Add(time.Hour)
	if got := q.OldestAge(now); got != 0 {
		t.Fatalf("empty spool OldestAge = %v, want 0", got)
	}
	for i := range 3 {
		mustAppend(t, q, reading("M01", 10*i))
	}
	if got, want := q.OldestAge(now), time.Hour; got != want {
		t.Fatalf("OldestAge = %v, want %v", got, want)
	}
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	if got, want := q.OldestAge(now), time.Hour-10*time.Second; got != want {
		t.Fatalf("after Ack(1) OldestAge = %v, want %v", got, want)
	}
}

func TestConcurrentAppend(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 16 << 10, Fsync: FsyncAlways}
	q := mustOpen(t, cfg, nil, nil)
	const pollers, each = 8, 100
	done := make(chan error, pollers)
	for p := range pollers {
		go func() {
			meter := fmt.Sprintf("M%02d", p)
			for i := range each {
				r, err := q.Append(reading(meter, i))
				if err == nil && r.Seq != uint64(i+1) {
					err = fmt.Errorf("%s reading %d stamped %d", meter, i, r.Seq)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	// The consumer delivers while the pollers append.
	delivered := map[string]uint64{}
	ctx := context.Background()
	for n := 0; n < pollers*each; {
		es, err := q.Peek(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Reading.Seq != delivered[e.Reading.Meter]+1 {
				t.Fatalf("%s delivered seq %d after %d", e.Reading.Meter, e.Reading.Seq, delivered[e.Reading.Meter])
			}
			delivered[e.Reading.Meter] = e.Reading.Seq
		}
		if err := q.Ack(es[len(es)-1].ID); err != nil {
			t.Fatal(err)
		}
		n += len(es)
	}
	for range pollers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d after delivering everything", q.Len())
	}
	if n := len(segmentFiles(t, cfg.Dir)); n != 1 {
		t.Fatalf("%d segment files after delivering everything, want 1", n)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestAckAheadOfPeek(t *testing.T) {
	q := mustOpen(t, Config{Dir: t.TempDir(), SegmentBytes: minSegmentBytes}, nil, nil)
	for i := range 200 {
		mustAppend(t, q, reading("M01", i))
	}
	ctx := context.Background()
	tests := []struct {
		ack    uint64 // acknowledged after peeking 5
		wantID uint64
	}{
		{3, 4},     // inside what was peeked
		{57, 58},   // beyond it, a few segments later
		{120, 121}, // further, from a segment never read
		{199, 200},
	}
	for _, tt := range tests {
		if _, err := q.Peek(ctx, 5); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(tt.ack); err != nil {
			t.Fatal(err)
		}
		es, err := q.Peek(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if es[0].ID != tt.wantID || es[0].Reading.Seq != tt.wantID {
			t.Fatalf("after Ack(%d) Peek returned id %d seq %d, want %d", tt.ack, es[0].ID, es[0].Reading.Seq, tt.wantID)
		}
		if q.Len() != int(200-tt.ack) {
			t.Fatalf("after Ack(%d) Len = %d, want %d", tt.ack, q.Len(), 200-tt.ack)
		}
	}
}

// TestDropWhileDelivering drops segments under a consumer that is reading them.
func TestDropWhileDelivering(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	q := mustOpen(t, Config{Dir: t.TempDir(), SegmentBytes: minSegmentBytes, MaxBytes: 2 * minSegmentBytes}, nil, m)
	const pollers, each = 4, 500
	done := make(chan error, pollers)
	for p := range pollers {
		go func() {
			for i := range each {
				if _, err := q.Append(reading(fmt.Sprintf("M%d", p), i)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	ctx := context.Background()
	last := map[string]uint64{}
	delivered, finished := 0, 0
	for finished < pollers || q.Len() > 0 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished++
		default:
		}
		if q.Len() == 0 {
			continue
		}
		es, err := q.Peek(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			r := e.Reading
			if r.Seq <= last[r.Meter] {
				t.Fatalf("%s seq %d delivered after %d", r.Meter, r.Seq, last[r.Meter])
			}
			if r.Points[0].Value != float64(r.Seq-1) {
				t.Fatalf("%s seq %d carries reading %v", r.Meter, r.Seq, r.Points[0].Value)
			}
			last[r.Meter] = r.Seq
		}
		delivered += len(es)
		if err := q.Ack(es[len(es)-1].ID); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing vanishes uncounted. A reading peeked just before its segment was dropped is both
	// delivered and counted as dropped, hence "at least".
	dropped := int(testutil.ToFloat64(m.dropped.WithLabelValues(ReasonFull)))
	if delivered+dropped < pollers*each {
		t.Errorf("delivered %d + dropped %d < appended %d: readings lost without being counted", delivered, dropped, pollers*each)
	}
	t.Logf("delivered %d, dropped %d of %d", delivered, dropped, pollers*each)
}

func TestLastSeqSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Config{Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := q.Append(collector.Reading{
			Site: "demo", Meter: "M07", Time: time.Date(2026, 11, 28, 0, i, 0, 0, time.UTC), TimeSource: collector.TimeSourceCollector,
			Points: []collector.Point{{Name: collector.PointTotal, Value: float64(i), Unit: "m3"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.LastSeq("M07"); got != 3 {
		t.Errorf("LastSeq = %d, want 3", got)
	}
	q.Close()
	q, err = Open(Config{Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got, none := q.LastSeq("M07"), q.LastSeq("M99"); got != 3 || none != 0 {
		t.Errorf("after reopen LastSeq = %d and %d for an unknown meter, want 3 and 0", got, none)
	}
}
