package ledger_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
)

var _ ledger.History = store.Store(nil)

// TestScenariosOnSQLite runs every scenario against the real SQLite store, as ingest does
// (store the reading, add it, store the buckets), with a restart halfway: the buckets read
// back from the store are the expected ones.
func TestScenariosOnSQLite(t *testing.T) {
	ctx := context.Background()
	for file, sc := range loadScenarios(t) {
		t.Run(file, func(t *testing.T) {
			st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			spec := sc.spec()
			rs := sc.readings(t)
			l := ledger.New([]ledger.MeterSpec{spec}, st, nil)
			for i, r := range rs {
				if i == len(rs)/2 {
					l = ledger.New([]ledger.MeterSpec{spec}, st, nil)
				}
				if err := st.WriteReadings(ctx, rs[i:i+1]); err != nil {
					t.Fatal(err)
				}
				bs, err := l.Add(ctx, r)
				if err != nil {
					t.Fatalf("add reading %d: %v", i, err)
				}
				if err := st.WriteBuckets(ctx, bs); err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.Buckets(ctx, site, t0.Add(-time.Hour), t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			checkBuckets(t, "sqlite", got, sc.Want.Buckets)
		})
	}
}
