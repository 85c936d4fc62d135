package sim

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestTruthHandler(t *testing.T) {
	p := newPlant(t, testConfig(t), nil)
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()

	get := func(query string) (int, string) {
		t.Helper()
		res, err := http.Get(srv.URL + "/api/v1/sim/truth?" + query)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	from, to := "2025-01-06T00:00:00+08:00", "2025-01-07T00:00:00+08:00"
	code, body := get("from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	for _, k := range []string{"from", "to", "flows", "meters", "vi", "vu", "vr", "vd", "vl", "reuse_rate", "reuse_rate_with_vu"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("response has no %q: %s", k, body)
		}
	}
	var got Truth
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	f, _ := time.Parse(time.RFC3339, from)
	tt, _ := time.Parse(time.RFC3339, to)
	want := p.Truth(f, tt)
	if !got.From.Equal(f) || !got.To.Equal(tt) || len(got.Flows) != len(want.Flows) || len(got.Meters) != 16 {
		t.Errorf("got from %s to %s with %d flows and %d meters", got.From, got.To, len(got.Flows), len(got.Meters))
	}
	if got.VR != want.VR || got.VI != want.VI || got.Meters["M12"] != want.Meters["M12"] || got.Flows["distribution_leak"] != want.Flows["distribution_leak"] {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if math.Abs(got.VL-24) > 1e-9 {
		t.Errorf("vl %v over a day, want 24 m³", got.VL)
	}
	if r := got.VR / (got.VR + got.VI); got.ReuseRate != r || r <= 0.9 || r >= 1 {
		t.Errorf("reuse_rate %v, want vr/(vr+vi) = %v between 0.9 and 1", got.ReuseRate, r)
	}

	// An unescaped "+08:00" arrives as a space; it still means +08:00.
	if code, body := get("from=" + from + "&to=" + to); code != http.StatusOK || !strings.Contains(body, `"vl":24`) {
		t.Errorf("unescaped offsets: status %d: %.200s", code, body)
	}

	bad := []struct {
		name, query, want string
	}{
		{"missing from", "to=" + url.QueryEscape(to), "from is required"},
		{"missing to", "from=" + url.QueryEscape(from), "to is required"},
		{"not a time", "from=yesterday&to=" + url.QueryEscape(to), `from="yesterday" is not an RFC3339 time`},
		{"reversed", "from=" + url.QueryEscape(to) + "&to=" + url.QueryEscape(from), "must be after from"},
		{"empty interval", "from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(from), "must be after from"},
		{"absurd year", "from=0001-01-01T00:00:00Z&to=" + url.QueryEscape(to), "outside the years"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, body := get(b.query)
			if code != http.StatusBadRequest || !strings.Contains(body, b.want) {
				t.Errorf("status %d body %q, want 400 with %q", code, body, b.want)
			}
		})
	}

	res, err := http.Post(srv.URL+"/api/v1/sim/truth", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d, want 405", res.StatusCode)
	}
}

// TestTruthPeriod checks ?period=: the plant's current hour or day in its zone, up to the last
// whole simulated minute, the span the platform's relative periods answer for.
func TestTruthPeriod(t *testing.T) {
	wall := &wallClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := testConfig(t)
	c.TimeScale = 1
	p := newPlant(t, c, wall)
	wall.advance(2*time.Hour + 25*time.Minute + 30*time.Second) // plant time 02:25:30 +08:00
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	loc := p.Location()
	for _, tc := range []struct {
		period   string
		from, to time.Time
	}{
		{"hour", time.Date(2025, 1, 6, 2, 0, 0, 0, loc), time.Date(2025, 1, 6, 2, 25, 0, 0, loc)},
		{"day", time.Date(2025, 1, 6, 0, 0, 0, 0, loc), time.Date(2025, 1, 6, 2, 25, 0, 0, loc)},
	} {
		res, err := http.Get(srv.URL + "/api/v1/sim/truth?period=" + tc.period)
		if err != nil {
			t.Fatal(err)
		}
		var got Truth
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("period=%s: status %d, %v", tc.period, res.StatusCode, err)
		}
		want := p.Truth(tc.from, tc.to)
		if !got.From.Equal(tc.from) || !got.To.Equal(tc.to) || got.VI != want.VI {
			t.Errorf("period=%s: %s..%s vi %v, want %s..%s vi %v", tc.period, got.From, got.To, got.VI, tc.from, tc.to, want.VI)
		}
	}
	res, err := http.Get(srv.URL + "/api/v1/sim/truth?period=week")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "not one of hour, day") {
		t.Errorf("period=week: status %d %q, want 400 naming the choices", res.StatusCode, b)
	}
}
