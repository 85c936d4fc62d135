package store_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/engine"
	"github.com/aqualoop/aqualoop/analytics/store"
)

// The fixture (park_year_bench_test.go, package store) says what is stored; this file, outside
// the package because the API imports the store, asks through the API handler.

// BenchmarkParkYear answers, through the API handler (httptest, no network), the park's
// indicators and each of its five sites' balance for one local month (March 2026) and for the
// local year 2026: six requests, ten MeterTotals of 100 meters each. It also runs the
// Evaluator's first pass after a restart on 31 December 2026 at 22:30 local: eleven closed
// months, thirty days and twenty-two hours per site, then the park.
func BenchmarkParkYear(b *testing.B) {
	for _, kind := range []string{"sqlite", "influx"} {
		b.Run(kind, func(b *testing.B) {
			st, sites := store.ParkYearFixture(b, kind)
			e := engine.New(sites, st)
			h := api.Handler(api.Options{Sites: sites, Engine: e, Inputs: st, Now: func() time.Time { return time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC) }})
			// The two stores hold the same year.
			y0, y1 := store.ParkYear, store.ParkYear.AddDate(1, 0, 0)
			got, err := st.MeterTotals(context.Background(), "site3", y0, y1)
			if err != nil || len(got) != store.MetersPerSite {
				b.Fatalf("year totals: %d meters, %v", len(got), err)
			}
			mi := slices.IndexFunc(sites[3].Meters, func(m analytics.Meter) bool { return m.ID == got[0].Meter })
			want := 0.0
			first := int(y0.Sub(store.YearFirstHour) / time.Hour)
			for i := first; i < first+365*24; i++ {
				want += store.HourVolume(store.PerMinute(got[0].Meter), i, 3*store.MetersPerSite+mi)
			}
			if mi < 0 || math.Abs(got[0].Volume-want) > 1e-6*want || got[0].Buckets != 365*24*60 {
				b.Fatalf("year of %s: volume %v buckets %d, want %v and %d", got[0].Meter, got[0].Volume, got[0].Buckets, want, 365*24*60)
			}
			for _, p := range []struct {
				name     string
				from, to time.Time
			}{
				{"month", time.Date(2026, 3, 1, 0, 0, 0, 0, store.ParkYear.Location()), time.Date(2026, 4, 1, 0, 0, 0, 0, store.ParkYear.Location())},
				{"year", y0, y1},
			} {
				q := "?" + url.Values{"from": {p.from.Format(time.RFC3339)}, "to": {p.to.Format(time.RFC3339)}}.Encode()
				paths := []string{"/api/v1/parks/bench-park/indicators" + q}
				for _, s := range sites {
					paths = append(paths, "/api/v1/sites/"+s.ID+"/balance"+q)
				}
				b.Run(p.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						for _, path := range paths {
							rec := httptest.NewRecorder()
							h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
							if rec.Code != http.StatusOK {
								b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
							}
						}
					}
				})
			}
			b.Run("first-pass", func(b *testing.B) {
				now := time.Date(2026, 12, 31, 22, 30, 0, 0, store.ParkYear.Location())
				for b.Loop() {
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan engine.Snapshot, 1)
					v := engine.NewEvaluator(e, engine.EvaluatorOptions{
						Now: func() time.Time { return now },
						Sink: func(_ context.Context, s engine.Snapshot) {
							if s.Boundary == engine.BoundaryPark {
								select {
								case done <- s:
								default:
								}
							}
						},
					})
					errc := make(chan error, 1)
					go func() { errc <- v.Run(ctx) }()
					snap := <-done
					cancel()
					if err := <-errc; err != nil {
						b.Fatal(err)
					}
					if snap.Year.Indicators.ReuseRate == nil {
						b.Fatal("the park's year has no reuse rate")
					}
				}
			})
		})
	}
}
