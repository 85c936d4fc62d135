package ledger_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

var _ ledger.History = store.Store(nil)

// TestScenariosOnStores runs every scenario against both real store back ends, as ingest does
// (store the reading, add it, store the buckets), with a restart halfway: the buckets read back
// are the expected ones, identical on SQLite and on InfluxDB 1.8.10. Each scenario gets its own
// site id on the shared InfluxDB, so they cannot see each other's data.
func TestScenariosOnStores(t *testing.T) {
	ctx := context.Background()
	influx := testenv.InfluxDB(t)
	influx.CreateDatabase(t, "ledger")
	icfg := store.InfluxConfig{URLs: []string{influx.URL()}, Bucket: "ledger/autogen"}
	icfg.Default()
	backends := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store {
			st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"influxdb", func(t *testing.T) store.Store {
			st, err := store.OpenInflux(ctx, icfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	}
	n := 0
	for file, sc := range loadScenarios(t) {
		n++
		for _, b := range backends {
			t.Run(b.name+"/"+file, func(t *testing.T) {
				st := b.open(t)
				defer st.Close()
				spec := sc.spec()
				spec.Site = fmt.Sprintf("%s-%d", site, n)
				rs := sc.readings(t)
				for i := range rs {
					rs[i].Site = spec.Site
				}
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
				got, err := st.Buckets(ctx, spec.Site, t0.Add(-time.Hour), t0.Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				checkBuckets(t, b.name, got, sc.Want.Buckets)
			})
		}
	}
}
