package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/collector"
)

// TestConflicts stores a reading, then a second one of the same meter and time with another seq
// and value: the API lists the second as set aside with the first as kept, and the store still
// reads the first.
func TestConflicts(t *testing.T) {
	f := start(t, false)
	ctx := context.Background()
	at := now.Add(-time.Hour).UTC()
	mk := func(seq uint64, total float64) collector.Reading {
		return collector.Reading{Site: "s1", Meter: "M1", Edge: "e1", Seq: seq, Time: at, TimeSource: collector.TimeSourceCollector,
			Points: []collector.Point{{Name: collector.PointTotal, Value: total, Unit: "m3"}}}
	}
	first, second := mk(41, 1000), mk(42, 1234.5)
	for _, batch := range [][]collector.Reading{{first}, {second}, {second, first}} {
		if err := f.st.WriteReadings(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var got struct {
		Site      string `json:"site"`
		Conflicts []struct {
			Meter    string    `json:"meter"`
			Time     time.Time `json:"time"`
			Received time.Time `json:"received"`
			Kept     *struct {
				Seq    uint64 `json:"seq"`
				Points []struct {
					Name  string   `json:"name"`
					Value *float64 `json:"value"`
				} `json:"points"`
			} `json:"kept"`
			SetAside struct {
				Seq    uint64 `json:"seq"`
				Points []struct {
					Name  string   `json:"name"`
					Value *float64 `json:"value"`
				} `json:"points"`
			} `json:"set_aside"`
		} `json:"conflicts"`
	}
	getInto(t, f.url+"/api/v1/sites/s1/conflicts?"+url.Values{"from": {"2026-03-02"}, "to": {"2026-03-03"}}.Encode(), &got)
	if len(got.Conflicts) != 1 {
		t.Fatalf("%d conflicts, want 1: %+v", len(got.Conflicts), got)
	}
	c := got.Conflicts[0]
	if c.Meter != "M1" || !c.Time.Equal(at) || c.Received.IsZero() {
		t.Errorf("conflict %s at %v received %v, want M1 at %v with a received time", c.Meter, c.Time, c.Received, at)
	}
	if c.Kept == nil || c.Kept.Seq != 41 || *c.Kept.Points[0].Value != 1000 {
		t.Errorf("kept %+v, want seq 41 with 1000", c.Kept)
	}
	if c.SetAside.Seq != 42 || *c.SetAside.Points[0].Value != 1234.5 {
		t.Errorf("set aside %+v, want seq 42 with 1234.5", c.SetAside)
	}

	// Another meter has none; an unknown meter and a bad period are the client's mistakes.
	getInto(t, f.url+"/api/v1/sites/s1/conflicts?meter=M2&from=2026-03-02&to=2026-03-03", &got)
	if len(got.Conflicts) != 0 {
		t.Errorf("M2: %d conflicts, want 0", len(got.Conflicts))
	}
	for _, q := range []string{"meter=M99", "from=2026-03-03&to=2026-03-02", "from=yesterday"} {
		code, b := do(t, http.MethodGet, f.url+"/api/v1/sites/s1/conflicts?"+q, "")
		if code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("?%s: %d %s, want 400 or 404", q, code, b)
		}
	}
}
