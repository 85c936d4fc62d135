package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
	"github.com/aqualoop/aqualoop/analytics/engine"
)

// maxFigure bounds a production figure (t of product, 10⁴ CNY, t of steam per period): far
// above any plant, far below the point where summing a few of them overflows a float64.
const maxFigure = 1e12

// readInputs decodes and checks the body of PUT inputs: one input object or a list of them.
// A problem names its field as a path such as "[2].steam" ("" for the body as a whole), with
// the status to answer.
func readInputs(w http.ResponseWriter, r *http.Request, s *analytics.Site) ([]engine.Input, *fieldError, int) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &fieldError{"", fmt.Sprintf("body is larger than %d bytes", maxBody)}, http.StatusRequestEntityTooLarge
		}
		return nil, &fieldError{"", "body could not be read"}, http.StatusBadRequest
	}
	body = bytes.TrimSpace(body)
	var raw []inputJSON
	prefix := func(i int) string { return fmt.Sprintf("[%d].", i) }
	switch {
	case len(body) == 0:
		return nil, &fieldError{"", "body is empty: send an input object or a list of them"}, http.StatusBadRequest
	case body[0] == '[':
		if fe := decodeStrict(body, &raw, ""); fe != nil {
			return nil, fe, http.StatusBadRequest
		}
	case body[0] == '{':
		var one inputJSON
		if fe := decodeStrict(body, &one, ""); fe != nil {
			return nil, fe, http.StatusBadRequest
		}
		raw = []inputJSON{one}
		prefix = func(int) string { return "" }
	default:
		return nil, &fieldError{"", "body is not JSON: send an input object or a list of them"}, http.StatusBadRequest
	}
	if len(raw) == 0 {
		return nil, &fieldError{"", "no input given"}, http.StatusBadRequest
	}
	ins := make([]engine.Input, 0, len(raw))
	for i, in := range raw {
		p := prefix(i)
		e := engine.Input{Site: s.ID, Product: in.Product, ProductUnit: in.ProductUnit, OutputValue: in.OutputValue, Steam: in.Steam}
		var fe *fieldError
		if e.From, fe = parseTime(p+"from", in.From, s.Location()); fe != nil {
			return nil, fe, http.StatusBadRequest
		}
		if e.To, fe = parseTime(p+"to", in.To, s.Location()); fe != nil {
			return nil, fe, http.StatusBadRequest
		}
		if !e.To.After(e.From) {
			return nil, &fieldError{p + "to", "to must be after from"}, http.StatusBadRequest
		}
		figures := 0
		for _, f := range []struct {
			name string
			v    *float64
		}{{"product", in.Product}, {"output_value", in.OutputValue}, {"steam", in.Steam}} {
			if f.v == nil {
				continue
			}
			figures++
			if v := *f.v; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxFigure {
				return nil, &fieldError{p + f.name, fmt.Sprintf("%g is outside 0..%g", v, float64(maxFigure))}, http.StatusBadRequest
			}
		}
		if figures == 0 {
			return nil, &fieldError{p + "steam", "at least one of product, output_value and steam is required"}, http.StatusBadRequest
		}
		if in.Product != nil && strings.TrimSpace(in.ProductUnit) == "" {
			return nil, &fieldError{p + "product_unit", "product_unit is required with product (t, pieces, ...)"}, http.StatusBadRequest
		}
		if len(in.ProductUnit) > 32 {
			return nil, &fieldError{p + "product_unit", "is longer than 32 bytes"}, http.StatusBadRequest
		}
		if err := e.Check(); err != nil {
			return nil, &fieldError{strings.TrimSuffix(p, "."), err.Error()}, http.StatusBadRequest
		}
		for _, prev := range ins[:i] {
			if prev.From.Before(e.To) && e.From.Before(prev.To) {
				return nil, &fieldError{p + "from", fmt.Sprintf("input %d overlaps input from %s of the same request", i, prev.From.Format(time.RFC3339))}, http.StatusBadRequest
			}
		}
		ins = append(ins, e)
	}
	return ins, nil, 0
}

// decodeStrict decodes JSON into v refusing unknown fields, and turns the decoder's errors
// into messages that name the field and say what it should be, without Go type names.
func decodeStrict(body []byte, v any, field string) *fieldError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return &fieldError{field, "body holds more than one JSON value"}
	}
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &fieldError{field, fmt.Sprintf("body is not valid JSON (at byte %d)", syn.Offset)}
	case errors.As(err, &typ):
		f := typ.Field
		if f == "" {
			return &fieldError{field, "body must be an input object or a list of them, not a JSON " + typ.Value}
		}
		return &fieldError{f, fmt.Sprintf("must be %s, not a JSON %s", kindOf(typ.Type.Kind().String()), typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &fieldError{field, "body ends in the middle of a JSON value"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &fieldError{strings.Trim(name, `"`), "unknown field; the fields are from, to, product, product_unit, output_value, steam"}
	}
	return &fieldError{field, "body is not the JSON this route takes"}
}

func kindOf(k string) string {
	switch k {
	case "float64", "ptr":
		return "a number"
	case "string":
		return "a string"
	}
	return "a " + k
}
