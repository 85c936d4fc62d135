package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/internal/testenv"
)

// seriesStore is what a series server needs of a store.
type seriesStore interface {
	engine.Store
	api.Inputs
	api.Readings
	WriteBuckets(ctx context.Context, bs []ledger.Bucket) error
}

// TestSeriesSameOnBothStores writes the same uneven ledger to a real InfluxDB 1.8 and to SQLite
// and asks both for the trends by hour and by day: the answers must agree step by step.
func TestSeriesSameOnBothStores(t *testing.T) {
	in := testenv.InfluxDB(t)
	in.CreateDatabase(t, "aqualoop")
	influx, err := store.OpenInflux(context.Background(), store.InfluxConfig{URLs: []string{in.URL()}, Bucket: "aqualoop/autogen"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { influx.Close() })
	lite, err := store.OpenSQLite(filepath.Join(t.TempDir(), "aqualoop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })

	var s analytics.Site
	if err := config.Parse("site.yaml", []byte(siteYAML), &s); err != nil {
		t.Fatal(err)
	}
	// Two days with a gap and uneven volumes, so that coverage and every step differ.
	var bs []ledger.Bucket
	from := now.Add(-34 * time.Hour)
	for i, m := 0, from; m.Before(now); i, m = i+1, m.Add(time.Minute) {
		if i%97 < 5 {
			continue
		}
		v := 1 + float64(i%13)/10
		bs = append(bs,
			ledger.Bucket{Site: "s1", Meter: "M1", Start: m.UTC(), Volume: v, Coverage: 1},
			ledger.Bucket{Site: "s1", Meter: "M2", Start: m.UTC(), Volume: 9 * v, Coverage: 1},
			ledger.Bucket{Site: "s1", Meter: "M3", Start: m.UTC(), Volume: 0.7 * v, Coverage: 0.5})
	}
	answers := map[string]map[string]seriesJSON{}
	for name, st := range map[string]seriesStore{"influxdb": influx, "sqlite": lite} {
		if err := st.WriteBuckets(context.Background(), bs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		srv := httptest.NewServer(api.Handler(api.Options{Sites: []*analytics.Site{&s}, Engine: engine.New([]*analytics.Site{&s}, st),
			Inputs: st, Readings: st, Now: func() time.Time { return now }}))
		answers[name] = map[string]seriesJSON{}
		for _, q := range []string{"?step=hour&from=" + from.Format("2006-01-02T15:04"), "?step=day"} {
			var a seriesJSON
			getInto(t, srv.URL+"/api/v1/sites/s1/series"+q, &a)
			answers[name][q] = a
		}
		srv.Close()
	}
	for q, a := range answers["sqlite"] {
		b := answers["influxdb"][q]
		if len(a.Steps) != len(b.Steps) || len(a.Steps) < 2 {
			t.Fatalf("%s: %d steps on SQLite, %d on InfluxDB", q, len(a.Steps), len(b.Steps))
		}
		for i := range a.Steps {
			x, y := a.Steps[i], b.Steps[i]
			if !x.From.Equal(y.From) || !near(x.Vi, y.Vi) || !near(x.Vr, y.Vr) || !near(x.Coverage, y.Coverage) ||
				(x.ReuseRate == nil) != (y.ReuseRate == nil) || x.ReuseRate != nil && !near(*x.ReuseRate, *y.ReuseRate) ||
				!near(x.Meters["M3"].Flow, y.Meters["M3"].Flow) || !near(x.Meters["M3"].Coverage, y.Meters["M3"].Coverage) {
				t.Errorf("%s step %d: SQLite %+v, InfluxDB %+v", q, i, x, y)
			}
		}
		if a.Steps[1].Vi == 0 || a.Steps[1].Meters["M3"].Coverage >= 1 {
			t.Errorf("%s: the fixture should give volumes and partial coverage: %+v", q, a.Steps[1])
		}
	}
}
