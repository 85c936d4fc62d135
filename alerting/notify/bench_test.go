package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkNotifyToRequest measures the time from Notify to the webhook request arriving at a
// local HTTP server, with group_wait 0: intake, grouping, the notification-log check, the
// request, and (before the next iteration starts) the log write. Each iteration is a new group,
// as a new alert is.
func BenchmarkNotifyToRequest(b *testing.B) {
	arrived := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- time.Now()
	}))
	defer srv.Close()
	db := openDB(b, tempDBPath(b))
	defer db.Close()
	cfg := Config{
		Route:     Route{Receiver: "hook", GroupWait: dur(0)},
		Receivers: []Receiver{{Name: "hook", WebhookConfigs: []WebhookConfig{{URL: srv.URL}}}},
	}
	d, err := New(cfg, db, Options{HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	stop := runDispatcher(b, d)
	defer stop()
	t0 := time.Now()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		d.Notify(context.Background(), []Alert{alert(fmt.Sprintf("bench_%d", i), "s1", t0)})
		got := <-arrived
		lat = append(lat, got.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
