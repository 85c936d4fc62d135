package auth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

// BenchmarkMiddleware measures what the middleware adds to a request, in-process (no network):
// a read with a bearer token (one indexed SQLite lookup) and a write (lookup, body hash and one
// audit row).
func BenchmarkMiddleware(b *testing.B) {
	for _, bc := range []struct {
		name, method, body string
	}{
		{"read", "GET", ""},
		{"write", "PUT", `{"from": "2026-03", "to": "2026-04", "steam": 1240}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, auth.Config{})
			secret := f.token(b, auth.NewToken{Name: "bench", Role: "editor"})
			m, err := auth.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), auth.Options{Store: f.store})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(bc.method, "/api/v1/sites/a/inputs", strings.NewReader(bc.body))
				r.Header.Set("Authorization", "Bearer "+secret)
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				m.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
