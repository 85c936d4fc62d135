package ingest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// The whole write path under arbitrary payloads: MQTT payload bytes → decode and validate →
// limits → SQLite store → ledger → buckets in the store. FuzzIngest is the fuzz target (run it
// with `go test -fuzz FuzzIngest ./analytics/ingest/` for as long as you like);
// TestFuzzGenerated runs the same checks in CI over the seed corpus and a few thousand inputs
// mutated from it with a fixed seed, in a few seconds.

// fuzzSeeds are payloads near every edge the path has: good readings, the times that used to
// stop ingest, extreme numbers, broken JSON.
func fuzzSeeds() [][]byte {
	good := `{"v":1,"site":"demo","meter":"M01","edge":"edge-1","seq":%d,"time":"%s","time_source":"collector","points":[{"name":"total","value":%s,"unit":"m3","quality":"good"}]}`
	var out [][]byte
	add := func(seq uint64, tm, v string) { out = append(out, fmt.Appendf(nil, good, seq, tm, v)) }
	add(1, "2026-11-28T08:00:00Z", "100")
	add(2, "2026-11-28T08:01:00Z", "101.5")
	add(3, "2026-11-28T08:02:00.5Z", "99999.9")
	add(4, "2026-11-28T08:03:00Z", "3")
	add(5, "1970-01-02T00:00:00Z", "5")
	add(6, "2199-01-01T00:00:00Z", "5")
	add(7, "2036-11-28T08:00:00Z", "5")
	add(8, "2027-11-28T08:00:00Z", "5")
	add(9, "2026-11-29T07:59:00Z", "1e308")
	add(10, "2026-11-28T09:00:00Z", "-1e308")
	add(11, "1677-09-21T00:12:43.145224193Z", "1")
	add(12, "2262-04-11T23:47:16.854775807Z", "1")
	add(13, "0001-01-01T00:00:00Z", "1")
	add(18446744073709551615, "2026-11-28T08:05:00Z", "110")
	out = append(out,
		[]byte(`{"v":1,"site":"demo","meter":"M01","seq":1,"time":"2026-11-28T08:00:00Z","time_source":"source","points":[{"name":"flow","quality":"bad","code":2,"error":"x"}]}`),
		[]byte(`{"v":2}`), []byte(`{`), []byte(``), []byte(`null`), []byte(`[]`),
		[]byte(`{"v":1,"points":[{"name":"total","value":1,"quality":"good"},{"name":"total","value":2,"quality":"good"}]}`),
	)
	return out
}

// fuzzPath is one ingester over a real SQLite store, as serve builds it.
type fuzzPath struct {
	in *Ingester
	st *store.SQLite
}

// newFuzzPath opens the store in tb's temporary folder: the fuzz target's (testing.F), not one
// input's, whose folder goes when that input ends.
func newFuzzPath(tb testing.TB) *fuzzPath {
	st, err := store.OpenSQLite(filepath.Join(tb.TempDir(), "fuzz.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	cfg := Config{}
	cfg.Default()
	l := ledger.New([]ledger.MeterSpec{
		{Site: "demo", Meter: "M01", RegisterMax: 100000, Q4: 1000, Interval: time.Minute},
		{Site: "demo", Meter: "M02", FlowOnly: true, Q4: 100, Interval: time.Minute},
	}, st, nil)
	return &fuzzPath{in: New(cfg, st, l, Options{Known: known, Now: clockAt(t0.Add(time.Hour))}), st: st}
}

// run feeds msgs as one batch and checks that the path returns within a bounded time and that
// what it stored is sane.
func (p *fuzzPath) run(t testing.TB, msgs []Message) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.in.HandleBatch(ctx, msgs) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("HandleBatch: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("HandleBatch did not return within 30 s on %d messages, the first %q", len(msgs), msgs[0].Payload)
	}
}

// check reads the store back: every stored reading is inside the plausibility window and every
// bucket finite, and there are few buckets for the readings stored.
func (p *fuzzPath) check(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	lim := p.in.cfg.Limits
	readings := 0
	for _, m := range []string{"M01", "M02"} {
		rs, err := p.st.Readings(ctx, "demo", m, time.Time{}, time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		readings += len(rs)
		for _, r := range rs {
			if r.Time.Before(lim.NotBefore) || r.Time.After(t0.Add(time.Hour+lim.MaxAhead)) {
				t.Errorf("stored a reading at %v, outside the plausibility window", r.Time)
			}
		}
	}
	bs, err := p.st.Buckets(ctx, "demo", time.Time{}, time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if math.IsNaN(b.Volume) || math.IsInf(b.Volume, 0) || b.Coverage < 0 || b.Coverage > 1 {
			t.Errorf("bucket %+v is not finite or its coverage not in 0..1", b)
		}
	}
	// A day of minutes at most between two readings, plus the reading's own: bounded by data.
	if max := (readings + 1) * 1442; len(bs) > max {
		t.Errorf("%d buckets for %d readings, more than %d", len(bs), readings, max)
	}
}

func FuzzIngest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	p := newFuzzPath(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		p.run(t, []Message{{Topic: wire.ReadingTopic("demo", "M01"), Payload: payload}})
	})
}

// mutate returns a variant of seed: a byte changed, a number replaced by an extreme one, a piece
// cut or repeated.
func mutate(rnd *rand.Rand, seed []byte) []byte {
	b := bytes.Clone(seed)
	extremes := []string{"0", "-1", "1e308", "-1e308", "4.9e-324", "18446744073709551616", "9223372036854775807",
		`"2026-11-28T08:30:00Z"`, `"1970-01-01T00:00:00Z"`, `"9999-12-31T23:59:59Z"`, `"2026-11-29T08:00:00+14:00"`, "null", "[]", "{}", `""`}
	for range 1 + rnd.IntN(3) {
		if len(b) == 0 {
			return []byte(extremes[rnd.IntN(len(extremes))])
		}
		i := rnd.IntN(len(b))
		switch rnd.IntN(6) {
		case 0:
			b[i] = byte(rnd.IntN(256))
		case 1: // replace the number or string at i
			j := i
			for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
				j++
			}
			k := bytes.LastIndexAny(b[:i], ":[,")
			if k >= 0 && k < j {
				b = append(append(append([]byte{}, b[:k+1]...), extremes[rnd.IntN(len(extremes))]...), b[j:]...)
			}
		case 2:
			b = b[:i]
		case 3:
			j := min(len(b), i+1+rnd.IntN(64))
			b = append(append(append([]byte{}, b[:j]...), b[i:j]...), b[j:]...)
		case 4: // a time shifted by a random amount, in or out of the window
			if k := bytes.Index(b, []byte(`"time":"`)); k >= 0 {
				if e := bytes.IndexByte(b[k+8:], '"'); e >= 0 {
					d := time.Duration(rnd.Int64N(int64(400*24*time.Hour))) - 200*24*time.Hour
					ts := t0.Add(d).Format(time.RFC3339Nano)
					b = append(append(append([]byte{}, b[:k+8]...), ts...), b[k+8+e:]...)
				}
			}
		case 5: // another seq, so the time is a conflict or a new reading
			if k := bytes.Index(b, []byte(`"seq":`)); k >= 0 {
				b = append(append(append([]byte{}, b[:k+6]...), strconv.Itoa(rnd.IntN(1000))...), b[k+6:]...)
			}
		}
	}
	return b
}

// wellFormed is a valid reading of M01 with a random time (mostly within a few days, sometimes
// months or years away, sometimes late) and a value that mostly counts up, sometimes jumps,
// drops or resets: the ledger's whole range of cases.
func wellFormed(rnd *rand.Rand, i int) []byte {
	var d time.Duration
	switch rnd.IntN(10) {
	case 0:
		d = time.Duration(rnd.Int64N(int64(800*24*time.Hour))) - 400*24*time.Hour
	case 1:
		d = time.Duration(rnd.Int64N(int64(48 * time.Hour)))
	default:
		d = time.Duration(i) * 20 * time.Second
	}
	v := float64(i) * 0.3
	switch rnd.IntN(20) {
	case 0:
		v = 99990 + rnd.Float64()*10
	case 1:
		v = 0
	case 2:
		v = rnd.NormFloat64() * 1e6
	}
	return fmt.Appendf(nil, `{"v":1,"site":"demo","meter":"M01","edge":"edge-%d","seq":%d,"time":"%s","time_source":"collector","points":[{"name":"total","value":%g,"quality":"good"},{"name":"flow","value":%g,"quality":"good"}]}`,
		rnd.IntN(3), rnd.IntN(i+1), t0.Add(d).Format(time.RFC3339Nano), v, rnd.Float64()*10)
}

func TestFuzzGenerated(t *testing.T) {
	const n = 2500
	p := newFuzzPath(t)
	seeds := fuzzSeeds()
	for _, s := range seeds {
		p.run(t, []Message{{Topic: wire.ReadingTopic("demo", "M01"), Payload: s}})
	}
	rnd := rand.New(rand.NewPCG(7, 119))
	topics := []string{wire.ReadingTopic("demo", "M01"), wire.ReadingTopic("demo", "M02"), wire.ReadingTopic("demo", "M99"), "aqualoop/v1/demo/meters"}
	batch := make([]Message, 0, 100)
	for i := range n {
		var payload []byte
		if rnd.IntN(2) == 0 {
			payload = mutate(rnd, seeds[rnd.IntN(len(seeds))])
		} else {
			payload = wellFormed(rnd, i)
		}
		topic := topics[0]
		if rnd.IntN(8) == 0 {
			topic = topics[rnd.IntN(len(topics))]
		}
		batch = append(batch, Message{Topic: topic, Payload: payload})
		if len(batch) == cap(batch) || i == n-1 {
			p.run(t, batch)
			batch = batch[:0]
		}
	}
	p.check(t)
	m := p.in.opts.Metrics
	var rejected float64
	for _, k := range []string{KindDecode, KindTopic, KindMismatch, KindUnknownMeter, KindRejected, KindTooLarge, KindTooMany,
		KindLongString, KindValueRange, KindAhead, KindTooOld, KindBehind, KindPanic, KindLedgerError} {
		rejected += m.Rejected(k)
	}
	if m.Rejected(KindPanic) > 0 || m.Rejected(KindLedgerError) > 0 || m.Rejected(KindBucketRejected) > 0 {
		t.Errorf("%v panics, %v ledger failures and %v rejected buckets on generated input",
			m.Rejected(KindPanic), m.Rejected(KindLedgerError), m.Rejected(KindBucketRejected))
	}
	stored := value(m.stored)
	t.Logf("%d generated messages: %v stored, %v duplicates, %v rejected", n, stored, value(m.duplicates), rejected)
	if stored == 0 || rejected == 0 {
		t.Errorf("the generator reached only one side: %v stored, %v rejected", stored, rejected)
	}
}
