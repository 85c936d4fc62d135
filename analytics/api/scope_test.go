package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aqualoop/aqualoop/analytics/api"
	"github.com/aqualoop/aqualoop/analytics/api/auth"
)

// TestListsFollowTheCallersScope: the site and park lists show only what the caller may see.
func TestListsFollowTheCallersScope(t *testing.T) {
	f := start(t, false)
	tests := []struct {
		name         string
		p            auth.Principal
		sites, parks int
	}{
		{"unscoped viewer", auth.Principal{Name: "v", Role: auth.Viewer}, 1, 1},
		{"scoped to the site", auth.Principal{Name: "v", Role: auth.Viewer, Sites: []string{"s1"}}, 1, 1},
		{"scoped elsewhere", auth.Principal{Name: "v", Role: auth.Viewer, Sites: []string{"other"}}, 0, 0},
		{"admin ignores scope", auth.Principal{Name: "a", Role: auth.Admin, Sites: []string{"other"}}, 1, 1},
		{"anonymous", auth.Principal{}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := api.Handler(f.opts)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), tt.p)))
			}))
			defer srv.Close()
			var sites, parks []json.RawMessage
			getInto(t, srv.URL+"/api/v1/sites", &sites)
			getInto(t, srv.URL+"/api/v1/parks", &parks)
			if len(sites) != tt.sites || len(parks) != tt.parks {
				t.Errorf("%d sites and %d parks, want %d and %d", len(sites), len(parks), tt.sites, tt.parks)
			}
		})
	}
}
