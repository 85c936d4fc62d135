package api_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aqualoop/aqualoop/analytics/api/problem"
)

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// TestBadInputIsA4xxNamingTheField sends what an unlucky or hostile client sends and expects a
// 4xx with a stable code, the field at fault, and no Go internals in the message.
func TestBadInputIsA4xxNamingTheField(t *testing.T) {
	f := start(t, false)
	tests := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"input dated 9998", "PUT", "/api/v1/sites/s1/inputs", `{"from": "9998-01-01", "to": "9998-02-01", "steam": 1}`, 400, "invalid_field", "from"},
		{"input to far future", "PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-01-01", "to": "9999-12-31T23:59:59Z", "steam": 1}`, 400, "invalid_field", "to"},
		{"huge figure", "PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-02", "steam": 1.79e308}`, 400, "invalid_field", "steam"},
		{"huge figure in a list", "PUT", "/api/v1/sites/s1/inputs", `[{"from": "2026-03-01", "to": "2026-03-02", "steam": 1}, {"from": "2026-03-02", "to": "2026-03-03", "output_value": 1.79e308}]`, 400, "invalid_field", "[1].output_value"},
		{"negative figure", "PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-02", "product": -1, "product_unit": "t"}`, 400, "invalid_field", "product"},
		{"string for a number", "PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-02", "steam": "lots"}`, 400, "invalid_field", "steam"},
		{"unknown field", "PUT", "/api/v1/sites/s1/inputs", `{"from": "2026-03-01", "to": "2026-03-02", "steem": 1}`, 400, "invalid_field", "steem"},
		{"not json", "PUT", "/api/v1/sites/s1/inputs", `{"from": `, 400, "invalid_body", ""},
		{"number body", "PUT", "/api/v1/sites/s1/inputs", `42`, 400, "invalid_body", ""},
		{"query from 9998", "GET", "/api/v1/sites/s1/indicators?from=9998-01-01&to=9999-01-01", "", 400, "invalid_parameter", "from"},
		{"query at 9998", "GET", "/api/v1/sites/s1/indicators?period=year&at=9998-01-01", "", 400, "invalid_parameter", "at"},
		{"plans at 1600", "GET", "/api/v1/sites/s1/plans?at=1600-01-01", "", 400, "invalid_parameter", "at"},
		{"park from 9998", "GET", "/api/v1/parks/p/indicators?from=9998-01-01", "", 400, "invalid_parameter", "from"},
		{"unknown period", "GET", "/api/v1/sites/s1/balance?period=fortnight", "", 400, "invalid_parameter", "period"},
		{"unknown site", "GET", "/api/v1/sites/nope/meters", "", 404, "unknown_site", "site"},
		{"unknown route", "GET", "/api/v1/nothing/here", "", 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := do(t, tt.method, f.url+tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("%d %s, want %d", code, b, tt.status)
			}
			var e apiError
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body is not the error JSON: %v: %s", err, b)
			}
			if e.Error.Code != tt.code || e.Error.Field != tt.field {
				t.Errorf("code %q field %q, want %q %q: %s", e.Error.Code, e.Error.Field, tt.code, tt.field, b)
			}
			if tt.field != "" && !strings.Contains(e.Error.Message, tt.field) {
				t.Errorf("message %q does not name the field %q", e.Error.Message, tt.field)
			}
			for _, internal := range []string{"json:", "Go value", "float64", "inputJSON", "engine.", "strconv", "sql"} {
				if strings.Contains(e.Error.Message, internal) {
					t.Errorf("message %q shows Go internals (%q)", e.Error.Message, internal)
				}
			}
		})
	}
}

// TestHugeInputsNeverBreakIndicators stores the largest inputs the API accepts, twice over, and
// reads every figure that divides by them: each answer is 200 with a complete JSON body.
func TestHugeInputsNeverBreakIndicators(t *testing.T) {
	f := start(t, false)
	for _, body := range []string{
		`{"from": "2026-03-01", "to": "2026-03-02", "product": 1e12, "product_unit": "t", "output_value": 1e12, "steam": 1e12}`,
		`{"from": "2026-03-02", "to": "2026-03-03", "product": 1e12, "product_unit": "t", "output_value": 1e12, "steam": 1e12}`,
	} {
		if code, b := do(t, http.MethodPut, f.url+"/api/v1/sites/s1/inputs", body); code != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", body, code, b)
		}
	}
	for _, p := range []string{"/api/v1/sites/s1/indicators?from=2026-03-01&to=2026-03-03", "/api/v1/parks/p/indicators?from=2026-03-01&to=2026-03-03", "/api/v1/sites/s1/inputs?period=month"} {
		code, b := do(t, http.MethodGet, f.url+p, "")
		if code != http.StatusOK || !json.Valid(b) || len(b) < 10 {
			t.Errorf("GET %s: %d, valid JSON %v: %.200s", p, code, json.Valid(b), b)
		}
	}
}

// TestEncodeFailureIsA500WithJSON: a value that cannot be encoded never becomes a 200 with a
// broken body.
func TestEncodeFailureIsA500WithJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	if problem.JSON(rec, http.StatusOK, map[string]float64{"r": math.Inf(1)}) {
		t.Error("JSON reported success for +Inf")
	}
	var e apiError
	if rec.Code != http.StatusInternalServerError || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code != problem.Internal {
		t.Errorf("answer %d %s, want 500 with code internal", rec.Code, rec.Body.String())
	}
}
