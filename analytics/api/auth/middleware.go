package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aqualoop/aqualoop/analytics/api/problem"
)

// Cookie and header names of the browser session contract (the console uses exactly these).
const (
	SessionCookie = "aqualoop_session" // HttpOnly, SameSite=Strict: the session id
	CSRFCookie    = "aqualoop_csrf"    // readable by the page's script: echo it in CSRFHeader
	CSRFHeader    = "X-CSRF-Token"
)

// MaxBody bounds the body of any write the Middleware lets through (it reads the body to hash it
// for the audit log); routes may set lower limits of their own.
const MaxBody = 8 << 20

// Metrics count refused requests by reason.
type Metrics struct {
	denied *prometheus.CounterVec
}

// NewMetrics registers the middleware's metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{denied: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aqualoop_http_denied_total", Help: "HTTP requests refused by authentication, authorisation, CSRF or content-type checks, by reason.",
	}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(m.denied)
	}
	return m
}

// Options are the Middleware's dependencies.
type Options struct {
	Config Config
	Store  *Store
	// ParkSites returns the sites of a park, to resolve a park-scoped token; nil knows no parks.
	ParkSites func(park string) []string
	// Rules is the policy; nil means Policy().
	Rules   []Rule
	Logger  *slog.Logger
	Metrics *Metrics
	Now     func() time.Time
}

// Middleware guards an http.Handler; see the package comment.
type Middleware struct {
	o       Options
	next    http.Handler
	trusted []netip.Prefix

	// Writes without a valid credential are recorded at most anonRate a second (bursts of
	// anonBurst), so nobody can fill the disk through the audit log; the rest are counted.
	anonMu     sync.Mutex
	anonTokens float64
	anonLast   time.Time
}

const (
	anonRate  = 5
	anonBurst = 100
)

// recordAnonymous reports whether an unauthenticated write may be recorded now.
func (m *Middleware) recordAnonymous() bool {
	m.anonMu.Lock()
	defer m.anonMu.Unlock()
	now := m.o.Now()
	if m.anonLast.IsZero() {
		m.anonTokens = anonBurst
	} else if d := now.Sub(m.anonLast).Seconds(); d > 0 {
		m.anonTokens = min(anonBurst, m.anonTokens+d*anonRate)
	}
	m.anonLast = now
	if m.anonTokens < 1 {
		return false
	}
	m.anonTokens--
	return true
}

// New wraps next.
func New(next http.Handler, o Options) (*Middleware, error) {
	if o.Rules == nil {
		o.Rules = Policy()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Config.Default()
	if o.Store == nil && o.Config.Auth != ModeOpen {
		return nil, errors.New("auth: a token store is required unless http.auth is open")
	}
	m := &Middleware{o: o, next: next}
	for _, s := range o.Config.Proxy.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("auth: trusted proxy %q: %w", s, err)
		}
		m.trusted = append(m.trusted, p.Masked())
	}
	return m, nil
}

// statusWriter remembers the status a handler answered, for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func (m *Middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.secureHeaders(w, r)
	// The policy and the scope read the path as it will be routed: a path that routing would
	// read differently (dot segments, doubled slashes, an encoded slash inside a segment) is
	// refused rather than interpreted twice.
	if !cleanPath(r) {
		m.deny(w, http.StatusBadRequest, problem.InvalidParameter, "path", "the path has dot segments, empty segments or an encoded slash; send it in canonical form", "path")
		return
	}
	if !isWrite(r.Method) {
		m.serve(w, r, nil)
		return
	}
	// Every write is recorded, refused ones too, with the caller as far as it is known.
	sw := &statusWriter{ResponseWriter: w}
	var who Principal
	var digest string
	defer func() {
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		e := AuditEntry{Time: m.o.Now().UTC(), Who: who.Name, Role: who.Role.String(), Via: who.Via, Method: r.Method,
			Path: truncate(r.URL.RequestURI(), 2048), Status: sw.status, Remote: m.remote(r), BodySHA256: digest}
		if who.Role == Public {
			e.Role = ""
		}
		if who.Role == Public && !m.recordAnonymous() {
			m.o.Metrics.denied.WithLabelValues("audit_skipped").Inc()
			return
		}
		if m.o.Store == nil {
			m.o.Logger.Info("write", "who", e.Who, "method", e.Method, "path", e.Path, "status", e.Status, "remote", e.Remote)
			return
		}
		if err := m.o.Store.Record(r.Context(), e); err != nil {
			m.o.Logger.Error("audit log not written; the write itself went through", "err", err, "path", e.Path)
		}
	}()
	body, err := io.ReadAll(http.MaxBytesReader(sw, r.Body, MaxBody))
	if err != nil {
		m.deny(sw, http.StatusRequestEntityTooLarge, problem.BodyTooLarge, "", fmt.Sprintf("body is larger than %d bytes", MaxBody), "body_size")
		return
	}
	if r.URL.Path != "/api/v1/session" { // a login body is a token: not even its hash is kept
		sum := sha256.Sum256(body)
		digest = hex.EncodeToString(sum[:])
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	m.serve(sw, r, func(p Principal) { who = p })
}

// serve authenticates and authorises r, then hands it on; seen learns the caller.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, seen func(Principal)) {
	if r.URL.Path == "/api/v1/session" {
		m.session(w, r, seen)
		return
	}
	need := Required(m.o.Rules, r.Method, r.URL.Path)
	p, err := m.authenticate(r)
	if err != nil && need > Public {
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, errNoCredential) {
			m.o.Logger.Error("credential check failed; answered 503", "err", err)
			problem.Write(w, http.StatusServiceUnavailable, problem.Unavailable, "", "credentials cannot be checked right now")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="aqualoop"`)
		msg := "this route needs a credential: Authorization: Bearer <token>, or a session from POST /api/v1/session"
		if errors.Is(err, ErrInvalid) {
			msg = "the credential is invalid, expired or revoked"
		}
		m.deny(w, http.StatusUnauthorized, problem.Unauthenticated, "Authorization", msg, "unauthenticated")
		return
	}
	if err != nil {
		p = Principal{Via: "anonymous"}
	}
	if seen != nil {
		seen(p)
	}
	// JSON only: a form or text/plain POST, which a page on any origin can send without a CORS
	// preflight, never reaches a handler. A DELETE without a body needs no type.
	if !m.jsonOnly(w, r) {
		return
	}
	if p.Via == "session" && isWrite(r.Method) {
		if !csrfEqual(r.Header.Get(CSRFHeader), p.csrf) {
			m.deny(w, http.StatusForbidden, problem.CSRF, CSRFHeader, "a write with a session cookie must carry the aqualoop_csrf cookie's value in the X-CSRF-Token header", "csrf")
			return
		}
	}
	if p.Role < need {
		m.deny(w, http.StatusForbidden, problem.Forbidden, "", fmt.Sprintf("%s %s needs the %s role; this credential has %s", r.Method, r.URL.Path, need, p.Role), "role")
		return
	}
	if need > Public {
		sites, park := scopeOf(r.URL.Path, r.URL.Query())
		for _, s := range sites {
			if !p.Allows(s) {
				m.deny(w, http.StatusForbidden, problem.ForbiddenSite, "site", fmt.Sprintf("this credential is not scoped to site %q", truncate(s, 64)), "scope")
				return
			}
		}
		if park != "" && p.Scoped() && p.Park != park {
			m.deny(w, http.StatusForbidden, problem.ForbiddenSite, "park", fmt.Sprintf("this credential is not scoped to park %q", truncate(park, 64)), "scope")
			return
		}
	}
	r = r.WithContext(WithPrincipal(r.Context(), p.public()))
	switch {
	case r.URL.Path == "/api/v1/tokens" || strings.HasPrefix(r.URL.Path, "/api/v1/tokens/"):
		m.tokens(w, r)
	case r.URL.Path == "/api/v1/audit":
		m.audit(w, r)
	default:
		m.next.ServeHTTP(w, r)
	}
}

func cleanPath(r *http.Request) bool {
	p := r.URL.Path
	if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.Contains(strings.ToLower(r.URL.EscapedPath()), "%2f") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// jsonOnly refuses a write that is not Content-Type: application/json with 415. A DELETE
// without a body needs no type.
func (m *Middleware) jsonOnly(w http.ResponseWriter, r *http.Request) bool {
	if !isWrite(r.Method) || (r.Method == http.MethodDelete && r.ContentLength == 0) {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		m.deny(w, http.StatusUnsupportedMediaType, problem.UnsupportedMediaType, "Content-Type", "writes take Content-Type: application/json", "content_type")
		return false
	}
	return true
}

func (m *Middleware) deny(w http.ResponseWriter, status int, code, field, msg, reason string) {
	m.o.Metrics.denied.WithLabelValues(reason).Inc()
	problem.Write(w, status, code, field, msg)
}

var errNoCredential = errors.New("no credential")

// authenticate finds the caller: a bearer token, a session cookie, a trusted proxy's header, or
// everyone in open mode.
func (m *Middleware) authenticate(r *http.Request) (Principal, error) {
	ctx := r.Context()
	var p Principal
	var err error
	switch {
	case r.Header.Get("Authorization") != "":
		scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || m.o.Store == nil {
			return Principal{}, ErrInvalid
		}
		p, err = m.o.Store.Authenticate(ctx, strings.TrimSpace(secret))
	case m.cookie(r, SessionCookie) != "" && m.o.Store != nil:
		var csrf string
		p, csrf, err = m.o.Store.Session(ctx, m.cookie(r, SessionCookie))
		p.csrf = csrf
	case m.o.Config.Auth == ModeProxy && r.Header.Get(m.o.Config.Proxy.UserHeader) != "" && m.fromTrustedProxy(r):
		p, err = m.proxyPrincipal(r)
	case m.o.Config.Auth == ModeOpen:
		p = Principal{Name: "open", Role: Admin, Via: "open"}
	default:
		return Principal{}, errNoCredential
	}
	if err != nil {
		return Principal{}, err
	}
	p.resolve(m.o.ParkSites)
	return p, nil
}

func (m *Middleware) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func (m *Middleware) proxyPrincipal(r *http.Request) (Principal, error) {
	pc := m.o.Config.Proxy
	role := pc.DefaultRole
	if v := strings.TrimSpace(r.Header.Get(pc.RoleHeader)); v != "" {
		role = v
	}
	rl, err := ParseRole(role)
	if err != nil {
		return Principal{}, ErrInvalid
	}
	p := Principal{Name: truncate(r.Header.Get(pc.UserHeader), 200), Role: rl, Via: "proxy"}
	if pc.SitesHeader != "" {
		for _, s := range strings.Split(r.Header.Get(pc.SitesHeader), ",") {
			if s = strings.TrimSpace(s); s != "" {
				p.Sites = append(p.Sites, s)
			}
		}
	}
	return p, nil
}

func (m *Middleware) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range m.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remote is the caller's address, with the client a trusted proxy names.
func (m *Middleware) remote(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" && m.fromTrustedProxy(r) {
		return truncate(r.RemoteAddr+" for "+f, 200)
	}
	return r.RemoteAddr
}

// secureHeaders are the headers every answer carries.
func (m *Middleware) secureHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// session answers POST /api/v1/session {"token": "..."} (log in) and DELETE (log out).
func (m *Middleware) session(w http.ResponseWriter, r *http.Request, seen func(Principal)) {
	secure := r.TLS != nil
	if !m.jsonOnly(w, r) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		if m.o.Store == nil {
			problem.Write(w, http.StatusNotImplemented, problem.NotImplemented, "", "sessions need http.auth tokens or proxy")
			return
		}
		var in struct {
			Token string `json:"token"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil || in.Token == "" {
			problem.Write(w, http.StatusBadRequest, problem.InvalidBody, "token", `body must be {"token": "<API token>"}`)
			return
		}
		p, id, csrf, exp, err := m.o.Store.StartSession(r.Context(), in.Token, m.o.Config.SessionTTL)
		if err != nil {
			if errors.Is(err, ErrInvalid) {
				m.deny(w, http.StatusUnauthorized, problem.Unauthenticated, "token", "the token is invalid, expired or revoked", "unauthenticated")
				return
			}
			m.o.Logger.Error("session not started; answered 500", "err", err)
			problem.Write(w, http.StatusInternalServerError, problem.Internal, "", "the session could not be stored; the server log has details")
			return
		}
		if seen != nil {
			seen(p)
		}
		maxAge := int(exp.Sub(m.o.Now()).Seconds())
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", MaxAge: maxAge, Secure: secure, SameSite: http.SameSiteStrictMode})
		problem.JSON(w, http.StatusOK, map[string]any{"name": p.Name, "role": p.Role.String(), "sites": p.Sites, "park": p.Park, "expires": exp.UTC(), "csrf_token": csrf})
	case http.MethodDelete:
		if id := m.cookie(r, SessionCookie); id != "" && m.o.Store != nil {
			if p, _, err := m.o.Store.Session(r.Context(), id); err == nil && seen != nil {
				seen(p)
			}
			if err := m.o.Store.EndSession(r.Context(), id); err != nil {
				m.o.Logger.Error("session not deleted", "err", err)
			}
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: "", Path: "/", MaxAge: -1, Secure: secure, SameSite: http.SameSiteStrictMode})
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		// Who am I: the console asks this to show the user and role.
		p, err := m.authenticate(r)
		if err != nil {
			m.deny(w, http.StatusUnauthorized, problem.Unauthenticated, "", "not logged in", "unauthenticated")
			return
		}
		problem.JSON(w, http.StatusOK, map[string]any{"name": p.Name, "role": p.Role.String(), "sites": p.Sites, "park": p.Park, "via": p.Via})
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		problem.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "", "use POST to log in, DELETE to log out")
	}
}

// tokens answers the admin's token routes: GET and POST /api/v1/tokens, DELETE /api/v1/tokens/{id}.
func (m *Middleware) tokens(w http.ResponseWriter, r *http.Request) {
	if m.o.Store == nil {
		problem.Write(w, http.StatusNotImplemented, problem.NotImplemented, "", "tokens need http.auth tokens or proxy")
		return
	}
	id := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/v1/tokens"), "/")
	switch {
	case id == "" && r.Method == http.MethodGet:
		ts, err := m.o.Store.List(r.Context())
		if err != nil {
			m.internal(w, "list tokens", err)
			return
		}
		problem.JSON(w, http.StatusOK, ts)
	case id == "" && r.Method == http.MethodPost:
		var in struct {
			NewToken
			ExpiresIn string `json:"expires_in"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			problem.Write(w, http.StatusBadRequest, problem.InvalidBody, "", `body must be {"name": "...", "role": "viewer|auditor|editor|admin", "sites": [...], "park": "...", "expires_in": "90d"}`)
			return
		}
		if in.ExpiresIn != "" {
			d, err := ParseExpiry(in.ExpiresIn)
			if err != nil {
				problem.Write(w, http.StatusBadRequest, problem.InvalidField, "expires_in", err.Error())
				return
			}
			in.Expires = m.o.Now().Add(d)
		}
		if err := in.NewToken.Check(); err != nil {
			problem.Write(w, http.StatusBadRequest, problem.InvalidField, "", err.Error())
			return
		}
		tok, secret, err := m.o.Store.Create(r.Context(), in.NewToken)
		if err != nil {
			m.internal(w, "create token", err)
			return
		}
		problem.JSON(w, http.StatusCreated, map[string]any{"token": tok, "secret": secret})
	case id != "" && !strings.Contains(id, "/") && r.Method == http.MethodDelete:
		err := m.o.Store.Revoke(r.Context(), id)
		switch {
		case errors.Is(err, ErrNotFound):
			problem.Write(w, http.StatusNotFound, problem.NotFound, "id", "no token "+strconv.Quote(truncate(id, 64)))
		case err != nil:
			m.internal(w, "revoke token", err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		problem.Write(w, http.StatusNotFound, problem.NotFound, "", "no route "+r.Method+" "+r.URL.Path)
	}
}

// audit answers GET /api/v1/audit?limit=100&before=ID.
func (m *Middleware) audit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		problem.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "", "the audit log is read-only")
		return
	}
	if m.o.Store == nil {
		problem.Write(w, http.StatusNotImplemented, problem.NotImplemented, "", "the audit log needs the state database")
		return
	}
	limit, before := 100, int64(0)
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			problem.Write(w, http.StatusBadRequest, problem.InvalidParameter, "limit", "limit must be a whole number from 1 to 10000")
			return
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			problem.Write(w, http.StatusBadRequest, problem.InvalidParameter, "before", "before must be an audit entry id")
			return
		}
		before = n
	}
	es, err := m.o.Store.Audit(r.Context(), limit, before)
	if err != nil {
		m.internal(w, "read audit log", err)
		return
	}
	problem.JSON(w, http.StatusOK, es)
}

func (m *Middleware) internal(w http.ResponseWriter, what string, err error) {
	m.o.Logger.Error(what+" failed; answered 500", "err", err)
	problem.Write(w, http.StatusInternalServerError, problem.Internal, "", what+" failed on the server; its log has details")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ParseExpiry reads a lifetime: a Go duration ("720h") or days ("90d").
func ParseExpiry(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 36500 {
			return 0, fmt.Errorf("%q is not a number of days like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("%q is not a lifetime like 90d or 720h", s)
	}
	return d, nil
}
