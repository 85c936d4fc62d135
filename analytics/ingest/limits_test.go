package ingest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// clockAt is a platform clock stopped at t.
func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

func withPoints(r collector.Reading, n int) collector.Reading {
	r.Points = nil
	for i := range n {
		r.Points = append(r.Points, collector.Point{Name: fmt.Sprintf("p%d", i), Value: float64(i)})
	}
	r.Points[0].Name = collector.PointTotal
	return r
}

// TestLimitsRejectAndCount sends one message of every limited kind after a good reading: each
// is rejected under its kind and counted, stores nothing, and the next good reading is stored.
// The time cases are the readings that used to stop ingest: 1970 (an edge booted without NTP),
// 2199, ten years and one year ahead.
func TestLimitsRejectAndCount(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	big := reading("M01", 9, 2*time.Minute, 102)
	big.Points[0].Error = strings.Repeat("e", 300)
	big.Points[0].Quality = collector.Bad
	ahead := func(d time.Duration) collector.Reading { return reading("M01", 9, time.Hour+d, 500) }
	at := func(tm time.Time) collector.Reading { r := reading("M01", 9, 0, 5); r.Time = tm; return r }
	cases := []struct {
		name string
		r    collector.Reading
		raw  []byte
		kind string
	}{
		{"payload over max_payload_bytes", collector.Reading{}, []byte(`{"v":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`), KindTooLarge},
		{"65 points", withPoints(reading("M01", 9, 2*time.Minute, 102), 65), nil, KindTooMany},
		{"300-byte error text", big, nil, KindLongString},
		{"total of 1e16", reading("M01", 9, 2*time.Minute, 1e16), nil, KindValueRange},
		{"a day and a minute ahead", ahead(24*time.Hour + time.Minute), nil, KindAhead},
		{"one year ahead", ahead(365 * 24 * time.Hour), nil, KindAhead},
		{"ten years ahead", ahead(10 * 365 * 24 * time.Hour), nil, KindAhead},
		{"2199", at(time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC)), nil, KindAhead},
		{"1970-01-02", at(time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)), nil, KindTooOld},
		{"1999-12-31", at(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)), nil, KindTooOld},
		{"two years behind the meter", at(t0.Add(-2 * 366 * 24 * time.Hour)), nil, KindBehind},
	}
	st := newSQLite(t)
	metrics := NewMetrics(nil)
	cfg := Config{}
	cfg.Default()
	in := New(cfg, st, newLedger(st), Options{Metrics: metrics, Known: known, Now: clockAt(now)})
	topic := wire.ReadingTopic("demo", "M01")
	if err := in.Handle(ctx, topic, payload(t, reading("M01", 1, 0, 100))); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.raw
			if body == nil {
				var err error
				if body, err = wire.Encode(c.r); err != nil {
					t.Fatal(err)
				}
			}
			before := metrics.Rejected(c.kind)
			if err := in.Handle(ctx, topic, body); err != nil {
				t.Fatal(err)
			}
			if got := metrics.Rejected(c.kind) - before; got != 1 {
				t.Errorf("counter %s went up by %v, want 1", c.kind, got)
			}
			good := reading("M01", uint64(10+i), time.Duration(i+1)*time.Minute, 100+float64(i+1))
			if err := in.Handle(ctx, topic, payload(t, good)); err != nil {
				t.Fatal(err)
			}
			rs, err := st.Readings(ctx, "demo", "M01", time.Time{}, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != i+2 || !rs[len(rs)-1].Time.Equal(good.Time) {
				t.Errorf("store holds %d readings, the last at %v; want %d, the last the good one at %v", len(rs), rs[len(rs)-1].Time, i+2, good.Time)
			}
		})
	}
	// The edge limit: the site's first max_edges_per_site edges are admitted, the next is not.
	for e := range cfg.Limits.MaxEdgesPerSite + 1 {
		r := reading("M02", uint64(e+1), time.Duration(e)*time.Second, float64(e))
		r.Edge = fmt.Sprintf("edge-%d", e)
		if err := in.Handle(ctx, wire.ReadingTopic("demo", "M02"), payload(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	// edge-1 was admitted by the M01 readings, so 64 edges are reached at edge-63.
	if got := metrics.Rejected(KindEdgeLimit); got != 1 {
		t.Errorf("edge_limit rejections %v, want 1 (edge-64 is the 65th edge)", got)
	}
}

func TestLimitsValidate(t *testing.T) {
	var l Limits
	l.Default()
	var p config.Problems
	l.Validate(&p, "ingest.limits")
	if p.Len() != 0 {
		t.Fatalf("defaults have problems: %v", p)
	}
	l = Limits{MaxPayloadBytes: -1, MaxPoints: -1, MaxStringBytes: -1, MaxEdgesPerSite: -1, MaxMetersPerSite: -1,
		MaxAhead: -time.Hour, MaxBehind: -time.Hour, NotBefore: time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), MaxAttempts: -1,
		MaxAbsValue: -1}
	l.Validate(&p, "ingest.limits")
	if p.Len() != 10 {
		t.Errorf("%d problems, want 10: %v", p.Len(), p)
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFloodHoldsMemory floods ingest with each kind of abuse a site's credential can send,
// 20 000 messages a kind: made-up edge ids on a real meter, made-up meter ids without a site
// model, readings of 500 points, 8 KB units, payloads of 1 MB (100 000 points, or a 1 MB error text). The live heap after
// each flood must stay within 16 MB of where it started (before the limits, 20 000 edge ids took
// it from 3 MB to 366 MB).
func TestFloodHoldsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("floods take a few seconds")
	}
	ctx := context.Background()
	st := newSQLite(t)
	metrics := NewMetrics(nil)
	cfg := Config{}
	cfg.Default()
	cfg.Limits.MaxMetersPerSite = 100
	// No Known: the meter limit is what bounds made-up meters.
	in := New(cfg, st, newLedger(st), Options{Metrics: metrics, Now: clockAt(t0.Add(time.Hour))})
	const n = 20000
	huge := []byte(`{"v":1,"site":"demo","meter":"M01","points":[` + strings.Repeat(`{"name":"x","value":1},`, 1<<20/24) + `{"name":"y","value":1}]}`)
	longErr := reading("M01", 1, 0, 1)
	longErr.Points[0].Quality, longErr.Points[0].Error = collector.Bad, strings.Repeat("e", 1<<20)
	longErrBody := payload(t, longErr)
	manyPoints := payload(t, withPoints(reading("made-up-000000", 1, 0, 1), 500))
	lu := reading("made-up-000000", 1, 0, 1)
	lu.Points[0].Unit = strings.Repeat("u", 8<<10)
	longUnit := payload(t, lu)
	// The size kinds keep no state, so fewer messages show the same; decoding them is what takes time.
	floods := []struct {
		kind string
		n    int
		msg  func(i int) (string, []byte)
	}{
		{KindMeterLimit, n, func(i int) (string, []byte) {
			m := fmt.Sprintf("made-up-%06d", i)
			return wire.ReadingTopic("demo", m), payload(t, reading(m, 1, 0, 1))
		}},
		{KindEdgeLimit, n, func(i int) (string, []byte) {
			// A meter the meter flood admitted, so only the edge limit applies.
			r := reading("made-up-000000", uint64(i+1), time.Duration(i)*time.Millisecond, float64(i))
			r.Edge = fmt.Sprintf("made-up-edge-%06d", i)
			return wire.ReadingTopic("demo", r.Meter), payload(t, r)
		}},
		{KindTooMany, n / 10, func(int) (string, []byte) { return wire.ReadingTopic("demo", "made-up-000000"), manyPoints }},
		{KindLongString, n / 10, func(int) (string, []byte) { return wire.ReadingTopic("demo", "made-up-000000"), longUnit }},
		{KindTooLarge, n, func(int) (string, []byte) { return wire.ReadingTopic("demo", "M01"), huge }},
		{KindTooLarge, n, func(int) (string, []byte) { return wire.ReadingTopic("demo", "M01"), longErrBody }},
	}
	base := heapInUse()
	const bound = 16 << 20
	for _, f := range floods {
		before := metrics.Rejected(f.kind)
		batch := make([]Message, 0, maxBatch)
		for i := range f.n {
			topic, body := f.msg(i)
			batch = append(batch, Message{Topic: topic, Payload: body})
			if len(batch) == maxBatch || i == f.n-1 {
				if err := in.HandleBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		rejected := metrics.Rejected(f.kind) - before
		if rejected < float64(f.n-200) {
			t.Errorf("%s flood: %v of %d rejected", f.kind, rejected, f.n)
		}
		heap := heapInUse()
		t.Logf("%s flood: %v rejected, live heap %.1f MB (start %.1f MB)", f.kind, rejected, float64(heap)/(1<<20), float64(base)/(1<<20))
		if heap > base+bound {
			t.Errorf("%s flood: live heap %.1f MB, more than %d MB above the start %.1f MB", f.kind, float64(heap)/(1<<20), bound>>20, float64(base)/(1<<20))
		}
	}
}
