// Package problem writes the platform API's answers in one shape. A JSON body is encoded in
// full before the status line is written, so a value that cannot be encoded (an infinite
// figure, say) becomes a 500 with a JSON error, never a 200 with a truncated body. Errors are
//
//	{"error": {"code": "invalid_parameter", "message": "from: ...", "field": "from"}}
//
// where code is a stable snake_case word a client may branch on (the list is in docs/api.md),
// message is for people and names the field, and field is the query parameter or body path
// at fault (omitted when no single field is). Messages never carry Go error text from inside
// the platform: a 5xx says only that the server failed and the log has the details.
package problem

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Codes a client may branch on. New codes may be added; existing ones keep their meaning.
const (
	InvalidParameter     = "invalid_parameter"      // a query parameter is malformed or out of range
	InvalidBody          = "invalid_body"           // the body is not the JSON the route takes
	InvalidField         = "invalid_field"          // one field of a JSON body is wrong
	BodyTooLarge         = "body_too_large"         // the body exceeds the route's limit (413)
	UnsupportedMediaType = "unsupported_media_type" // a write without Content-Type: application/json (415)
	NotFound             = "not_found"              // no such route or object
	UnknownSite          = "unknown_site"
	UnknownPark          = "unknown_park"
	UnknownUnit          = "unknown_unit"
	NoSnapshot           = "no_snapshot" // the evaluator has not published this figure yet
	Conflict             = "conflict"    // the write contradicts stored data (e.g. overlapping inputs)
	NotImplemented       = "not_implemented"
	Unauthenticated      = "unauthenticated" // no or an invalid, expired or revoked credential (401)
	Forbidden            = "forbidden"       // the role does not allow this route (403)
	ForbiddenSite        = "forbidden_site"  // the credential is scoped to other sites (403)
	CSRF                 = "csrf_failed"     // a cookie-authenticated write without a matching X-CSRF-Token (403)
	Internal             = "internal"        // the server failed; the log says why (500)
	Unavailable          = "unavailable"     // a dependency (store, broker) is down (503)
)

// Error is the body of every error answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

type envelope struct {
	Error Error `json:"error"`
}

// JSON encodes v and only then writes status and the body. If v cannot be encoded the answer
// is a 500 carrying an Internal error; it returns false then, so the caller can log it.
func JSON(w http.ResponseWriter, status int, v any) bool {
	body, err := encode(v)
	if err != nil {
		body, _ = encode(envelope{Error{Code: Internal, Message: "the answer could not be encoded as JSON (a figure is not finite); the server log has details"}})
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
	return err == nil
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write answers an error.
func Write(w http.ResponseWriter, status int, code, field, message string) {
	JSON(w, status, envelope{Error{Code: code, Message: message, Field: field}})
}

// CodeOf is the default code of a status, for answers that have no more specific one.
func CodeOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return InvalidParameter
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusForbidden:
		return Forbidden
	case http.StatusNotFound:
		return NotFound
	case http.StatusConflict:
		return Conflict
	case http.StatusRequestEntityTooLarge:
		return BodyTooLarge
	case http.StatusUnsupportedMediaType:
		return UnsupportedMediaType
	case http.StatusNotImplemented:
		return NotImplemented
	case http.StatusServiceUnavailable:
		return Unavailable
	}
	return Internal
}
