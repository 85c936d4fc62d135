package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ingest"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/collector"
)

type fakeIngestState struct{ s ingest.State }

func (f *fakeIngestState) State() ingest.State { return f.s }

type failingStore struct{ err error }

func (f *failingStore) WriteReadings(context.Context, []collector.Reading) error { return f.err }
func (f *failingStore) WriteBuckets(context.Context, []ledger.Bucket) error      { return f.err }

// TestReadinessFollowsEachComponent moves one component at a time out of bounds on an injected
// clock and expects /readyz's verdict and the failing component to follow.
func TestReadinessFollowsEachComponent(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := newHealth(func() time.Time { return now })
	in := &fakeIngestState{ingest.State{Connected: true}}
	h.in = in
	st := &failingStore{}
	store := healthStore{st, h}
	notify := h.onBuckets(func([]ledger.Bucket) {})
	sink := h.sink(nil)

	status := func() (bool, map[string]string) {
		state, ok := h.ready()
		out := map[string]string{}
		for k, v := range state {
			out[k] = v.(map[string]any)["status"].(string)
		}
		return ok, out
	}
	if ok, s := status(); !ok {
		t.Fatalf("fresh platform not ready: %v", s)
	}
	// The store fails, then recovers.
	st.err = errors.New("influxdb: connection refused")
	store.WriteReadings(context.Background(), nil)
	if ok, s := status(); ok || s["store"] != "fail" {
		t.Errorf("store failing: ready %v %v", ok, s)
	}
	st.err = nil
	store.WriteBuckets(context.Background(), nil)
	if ok, s := status(); !ok {
		t.Errorf("store recovered: %v", s)
	}
	// The broker goes away.
	in.s.Connected = false
	if ok, s := status(); ok || s["broker"] != "fail" {
		t.Errorf("broker down: ready %v %v", ok, s)
	}
	in.s.Connected = true
	// A message waits unacknowledged for longer than the limit.
	in.s.Pending, in.s.OldestPending = 3, now.Add(-maxIngestLag-time.Second)
	if ok, s := status(); ok || s["ingest"] != "fail" {
		t.Errorf("ingest lag: ready %v %v", ok, s)
	}
	in.s.Pending, in.s.OldestPending = 0, time.Time{}
	// Buckets wait for the evaluator beyond its limit; a snapshot clears it.
	notify([]ledger.Bucket{{Site: "demo"}})
	now = now.Add(maxEvaluatorLag + time.Second)
	if ok, s := status(); ok || s["evaluator"] != "fail" {
		t.Errorf("evaluator lag: ready %v %v", ok, s)
	}
	sink(context.Background(), engine.Snapshot{})
	if ok, s := status(); !ok {
		t.Errorf("after the evaluator caught up: %v", s)
	}
}
