package register

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

// Options are the register API's dependencies.
type Options struct {
	Sites    []*analytics.Site
	Register *Register
	// Who names the person or token behind a request; cmd fills it from the auth middleware.
	// An empty name is refused for writes.
	Who func(*http.Request) string
	// Now is the clock of the statuses (nil: time.Now).
	Now func() time.Time
	// OnReplacement is called after a replacement is stored, so the ledger recomputes the
	// swap's interval; its error is logged and reported, the entry stays stored.
	OnReplacement func(ctx context.Context, x Replacement) error
	Logger        *slog.Logger
}

// Handler serves the register:
//
//	GET  /api/v1/sites/{site}/register                  each meter's verification status
//	GET  /api/v1/sites/{site}/register/certificates     every certificate entry (?meter=)
//	POST /api/v1/sites/{site}/register/certificates     add one (JSON)
//	GET  /api/v1/sites/{site}/register/replacements     every replacement entry (?meter=)
//	POST /api/v1/sites/{site}/register/replacements     add one (JSON)
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Who == nil {
		o.Who = func(*http.Request) string { return "" }
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sites/{site}/register", h.site(h.status))
	mux.HandleFunc("GET /api/v1/sites/{site}/register/certificates", h.site(h.listCerts))
	mux.HandleFunc("POST /api/v1/sites/{site}/register/certificates", h.site(h.addCert))
	mux.HandleFunc("GET /api/v1/sites/{site}/register/replacements", h.site(h.listSwaps))
	mux.HandleFunc("POST /api/v1/sites/{site}/register/replacements", h.site(h.addSwap))
	return mux
}

type handler struct{ o Options }

func (h *handler) site(fn func(http.ResponseWriter, *http.Request, *analytics.Site)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		i := slices.IndexFunc(h.o.Sites, func(s *analytics.Site) bool { return s.ID == r.PathValue("site") })
		if i < 0 {
			writeError(w, http.StatusNotFound, "unknown site "+r.PathValue("site"))
			return
		}
		fn(w, r, h.o.Sites[i])
	}
}

func (h *handler) status(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	certs, err := h.o.Register.Certificates(r.Context(), s.ID, "")
	if err != nil {
		h.fail(w, err)
		return
	}
	certs = EffectiveCertificates(certs)
	out := make([]Status, 0, len(s.Meters))
	for _, m := range s.Meters {
		out = append(out, MeterStatus(s, m, certs, h.o.Now(), time.Time{}, time.Time{}))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) listCerts(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	cs, err := h.o.Register.Certificates(r.Context(), s.ID, r.URL.Query().Get("meter"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

func (h *handler) listSwaps(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	xs, err := h.o.Register.Replacements(r.Context(), s.ID, r.URL.Query().Get("meter"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, xs)
}

// decode reads a JSON body into v; it answers and returns false on a client's mistake.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "the register takes JSON: send Content-Type: application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "read body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func (h *handler) who(w http.ResponseWriter, r *http.Request) (string, bool) {
	who := h.o.Who(r)
	if who == "" {
		writeError(w, http.StatusUnauthorized, "the register records who enters each entry: no identity on this request")
		return "", false
	}
	return who, true
}

func checkMeter(w http.ResponseWriter, s *analytics.Site, meter string) bool {
	if _, ok := s.Meter(meter); !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("meter %q is not in the register of site %s", meter, s.ID))
		return false
	}
	return true
}

func (h *handler) addCert(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	var c Certificate
	if !decode(w, r, &c) {
		return
	}
	who, ok := h.who(w, r)
	if !ok || !checkMeter(w, s, c.Meter) {
		return
	}
	c.Site, c.ID = s.ID, 0
	c, err := h.o.Register.AddCertificate(r.Context(), c, who)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.o.Logger.Info("certificate entered", "site", s.ID, "meter", c.Meter, "number", c.Number, "by", who)
	writeJSON(w, http.StatusCreated, c)
}

// replacementJSON takes the time as RFC 3339 or a local time in the site's zone.
type replacementJSON struct {
	Meter      string  `json:"meter"`
	Time       string  `json:"time"`
	OldFinal   float64 `json:"old_final"`
	NewInitial float64 `json:"new_initial"`
	OldSerial  string  `json:"old_serial"`
	NewSerial  string  `json:"new_serial"`
	Note       string  `json:"note"`
	Supersedes int64   `json:"supersedes"`
}

// ParseTime reads an RFC 3339 instant or a local "2006-01-02T15:04[:05]" in loc.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: time %q is not a time: write 2026-03-01T08:30:00+08:00 or 2026-03-01T08:30", ErrInvalid, s)
}

func (h *handler) addSwap(w http.ResponseWriter, r *http.Request, s *analytics.Site) {
	var in replacementJSON
	if !decode(w, r, &in) {
		return
	}
	who, ok := h.who(w, r)
	if !ok || !checkMeter(w, s, in.Meter) {
		return
	}
	t, err := ParseTime(in.Time, s.Location())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	x, err := h.o.Register.AddReplacement(r.Context(), Replacement{Site: s.ID, Meter: in.Meter, Time: t, OldFinal: in.OldFinal, NewInitial: in.NewInitial,
		OldSerial: in.OldSerial, NewSerial: in.NewSerial, Note: in.Note, Supersedes: in.Supersedes}, who)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.o.Logger.Info("replacement entered", "site", s.ID, "meter", x.Meter, "time", x.Time, "by", who)
	if h.o.OnReplacement != nil {
		if err := h.o.OnReplacement(r.Context(), x); err != nil {
			h.o.Logger.Error("replacement stored but the ledger was not recomputed; restart to recompute", "site", s.ID, "meter", x.Meter, "err", err)
			writeJSON(w, http.StatusAccepted, map[string]any{"replacement": x, "warning": "stored, but the ledger was not recomputed: " + err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusCreated, x)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrInvalid) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.o.Logger.Error("meter register failed; answered 500", "err", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
