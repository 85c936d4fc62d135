package engine_test

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
)

// slowClock is a clock that moves 40 s every time it is read, as evaluations that take that
// long on a loaded machine see it: no two sites are evaluated in the same minute.
type slowClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *slowClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(40 * time.Second)
	return c.t
}

// TestParkSnapshotAfterItsSites: the park's snapshot exists as soon as both of its sites have
// been evaluated once, although they were evaluated in different minutes, and it adds up their
// data.
func TestParkSnapshotAfterItsSites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := parseSite(t, loopSite)
		b := parseSite(t, strings.Replace(loopSite, "id: ev\n", "id: ev2\n", 1))
		start := time.Now().Truncate(time.Hour)
		clock := &slowClock{t: start}
		r := startEvaluator(t, []*analytics.Site{a, b}, engine.EvaluatorOptions{Now: clock.now, Interval: time.Hour})
		defer r.stop()
		// Data of both sites from before the start, so the first pass finds it.
		var bs []ledger.Bucket
		for i := range 3 {
			bs = append(bs, minute("ev", start.Add(-time.Duration(i+1)*time.Minute))...)
			bs = append(bs, minute("ev2", start.Add(-time.Duration(i+1)*time.Minute))...)
		}
		bs = append(bs, minute("ev2", start.Add(-90*time.Minute))...)
		r.add(t, bs)
		time.Sleep(5 * time.Second)
		synctest.Wait()

		sa, okA := r.ev.Snapshot("ev")
		sb, okB := r.ev.Snapshot("ev2")
		if !okA || !okB {
			t.Fatal("the sites have no snapshot")
		}
		if sa.At.Truncate(time.Minute).Equal(sb.At.Truncate(time.Minute)) {
			t.Fatalf("both sites evaluated at %v: the clock should have kept them apart", sa.At)
		}
		park, ok := r.ev.Snapshot("pk")
		if !ok {
			t.Fatal("no park snapshot although both sites have one")
		}
		// Day: 3 + 4 minutes of 1 m³ intake (if the 90-minute-old one is today).
		want := sa.Day.Indicators.Volumes.Vi + sb.Day.Indicators.Volumes.Vi
		if !near(park.Day.Indicators.Volumes.Vi, want) || !near(park.Year.Indicators.Volumes.Vi, 7) {
			t.Errorf("park Vi: day %v (sites %v), year %v; want the sites' sum and 7",
				park.Day.Indicators.Volumes.Vi, want, park.Year.Indicators.Volumes.Vi)
		}
	})
}

// TestSnapshotOnDemand: an evaluator that owns one site of the park answers the other site's
// and the park's snapshot from the store, with the same figures the owner computes.
func TestSnapshotOnDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := parseSite(t, loopSite)
		b := parseSite(t, strings.Replace(loopSite, "id: ev\n", "id: ev2\n", 1))
		sites := []*analytics.Site{a, b}
		r := startEvaluator(t, sites, engine.EvaluatorOptions{Now: time.Now, Owns: func(site string) bool { return site == "ev" }})
		defer r.stop()
		var bs []ledger.Bucket
		for i := range 5 {
			bs = append(bs, minute("ev", time.Now().Add(-time.Duration(i+1)*time.Minute))...)
			bs = append(bs, minute("ev2", time.Now().Add(-time.Duration(i+1)*time.Minute))...)
		}
		r.add(t, bs)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := r.sink.count(); n == 0 {
			t.Fatal("the owned site was not evaluated")
		}
		for _, s := range r.sink.snaps {
			if s.Site != "ev" {
				t.Errorf("evaluated %s, which this instance does not own", s.Site)
			}
		}
		own, _ := r.ev.Snapshot("ev")
		other, ok := r.ev.Snapshot("ev2")
		if !ok {
			t.Fatal("no snapshot on demand of the site owned elsewhere")
		}
		if !near(other.Day.Indicators.Volumes.Vi, own.Day.Indicators.Volumes.Vi) || other.Day.Indicators.ReuseRate == nil || !near(*other.Day.Indicators.ReuseRate, 0.9) {
			t.Errorf("on demand: Vi %v R %v; owner: Vi %v", other.Day.Indicators.Volumes.Vi, other.Day.Indicators.ReuseRate, own.Day.Indicators.Volumes.Vi)
		}
		park, ok := r.ev.Snapshot("pk")
		if !ok || !near(park.Day.Indicators.Volumes.Vi, 10) {
			t.Errorf("park on demand: %v, Vi %v; want 10", ok, park.Day.Indicators.Volumes.Vi)
		}
	})
}
