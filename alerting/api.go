package alerting

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"crypto/rand"
	"encoding/hex"
)

// Errors the actions return; the API maps them to status codes.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	ErrInvalid   = errors.New("invalid request")
)

// View is one alert as the API shows it.
type View struct {
	ID             string            `json:"id"`
	Rule           string            `json:"rule"`
	Name           string            `json:"name"`
	Kind           string            `json:"kind"`
	Site           string            `json:"site"`
	Severity       string            `json:"severity"`
	State          string            `json:"state"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Summary        string            `json:"summary"`
	SummaryZH      string            `json:"summary_zh"`
	Value          float64           `json:"value"`
	ActiveAt       time.Time         `json:"active_at"`
	StartsAt       *time.Time        `json:"starts_at"`
	EndsAt         *time.Time        `json:"ends_at"`
	AcknowledgedBy string            `json:"acknowledged_by"`
	AckComment     string            `json:"ack_comment"`
	AcknowledgedAt *time.Time        `json:"acknowledged_at"`
	Assignee       string            `json:"assignee"`
	ClosedBy       string            `json:"closed_by"`
	CloseNote      string            `json:"close_note"`
	ClosedAt       *time.Time        `json:"closed_at"`
	Silenced       bool              `json:"silenced"`
	SilencedBy     []string          `json:"silenced_by"`
	Inhibited      bool              `json:"inhibited"`
	Runbook        Runbook           `json:"runbook"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// view renders a record; m.mu is held.
func (m *Manager) view(a *record, now time.Time, in inhibitors) View {
	v := View{ID: strconv.FormatInt(a.ID, 10), Rule: a.Rule, Name: a.Labels["alertname"], Kind: a.Kind, Site: a.Site,
		Severity: a.Severity, State: a.shownState(), Labels: a.Labels, Annotations: a.Annotations,
		Summary: a.Annotations["summary"], SummaryZH: a.Annotations["summary_zh"], Value: a.Value, ActiveAt: a.ActiveAt,
		StartsAt: tp(a.StartsAt), EndsAt: tp(a.EndsAt), AcknowledgedBy: a.AckedBy, AckComment: a.AckComment,
		AcknowledgedAt: tp(a.AckedAt), Assignee: a.Assignee, ClosedBy: a.ClosedBy, CloseNote: a.CloseNote,
		ClosedAt: tp(a.ClosedAt), Runbook: a.Runbook, SilencedBy: []string{}}
	if a.State != StateResolved {
		sil, inh := m.muted(a, now, in)
		if sil != nil {
			v.SilencedBy = sil
		}
		v.Silenced, v.Inhibited = len(sil) > 0, inh
	}
	if v.Runbook.Isolate == nil {
		v.Runbook.Isolate = []Isolate{}
	}
	return v
}

// Filter selects alerts. State "" means every alert not resolved; "resolved" and "closed" read
// the history (newest first, at most Limit).
type Filter struct {
	Site, State, Severity string
	Limit                 int
}

// Alerts lists alerts.
func (m *Manager) Alerts(ctx context.Context, f Filter) ([]View, error) {
	now := m.o.Now()
	if f.Limit <= 0 {
		f.Limit = 500
	}
	var recs []*record
	m.mu.Lock()
	defer m.mu.Unlock()
	switch f.State {
	case "", StatePending, StateFiring, StateAcknowledged:
		for _, a := range m.active {
			recs = append(recs, a)
		}
	case StateResolved, "closed", "all":
		where := "state = 'resolved'"
		switch f.State {
		case "closed":
			where = "closed_at != 0"
		case "all":
			where = "1 = 1"
		}
		var err error
		if recs, err = m.db.query(ctx, where+" ORDER BY id DESC LIMIT ?", f.Limit); err != nil {
			return nil, err
		}
		if f.State == "closed" || f.State == "all" {
			// Active records live in memory; the stored copy may lag behind by a value update.
			for i, r := range recs {
				if a := m.active[r.Fingerprint]; a != nil && a.ID == r.ID {
					recs[i] = a
				}
			}
		}
	default:
		return nil, fmt.Errorf("%w: state %q is not one of pending, firing, acknowledged, resolved, closed, all", ErrInvalid, f.State)
	}
	if f.Severity != "" && !validSeverity(f.Severity) {
		return nil, fmt.Errorf("%w: severity %q is not one of info, warning, critical", ErrInvalid, f.Severity)
	}
	out := []View{}
	in := m.inhibitors()
	for _, a := range recs {
		if f.Site != "" && a.Site != f.Site || f.Severity != "" && a.Severity != f.Severity {
			continue
		}
		v := m.view(a, now, in)
		if (f.State == StatePending || f.State == StateFiring || f.State == StateAcknowledged) && v.State != f.State {
			continue
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y View) int {
		a, _ := strconv.ParseInt(x.ID, 10, 64)
		b, _ := strconv.ParseInt(y.ID, 10, 64)
		return int(b - a)
	})
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// find returns a record by id, from memory when active; m.mu is held.
func (m *Manager) find(ctx context.Context, id int64) (*record, error) {
	for _, a := range m.active {
		if a.ID == id {
			return a, nil
		}
	}
	recs, err := m.db.query(ctx, "id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: alert %d", ErrNotFound, id)
	}
	return recs[0], nil
}

// Action is an operator's act on an alert: ack, assign or close.
type Action struct {
	ID      int64
	Who     string
	Text    string // comment, assignee or close-out note
	allowed func(site string) bool
}

// Act applies one action and returns the alert after it.
func (m *Manager) Act(ctx context.Context, kind string, a Action) (View, error) {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.find(ctx, a.ID)
	if err != nil {
		return View{}, err
	}
	if a.allowed != nil && !a.allowed(r.Site) {
		// Not found rather than forbidden: an alert of a site one may not see does not exist for one.
		return View{}, fmt.Errorf("%w: alert %d", ErrNotFound, a.ID)
	}
	switch kind {
	case "ack":
		if r.State != StateFiring {
			return View{}, fmt.Errorf("%w: alert %d is %s; only a firing alert can be acknowledged", ErrConflict, a.ID, r.State)
		}
		r.AckedBy, r.AckComment, r.AckedAt = a.Who, a.Text, now
	case "assign":
		if strings.TrimSpace(a.Text) == "" {
			return View{}, fmt.Errorf("%w: assignee is required", ErrInvalid)
		}
		if !r.ClosedAt.IsZero() {
			return View{}, fmt.Errorf("%w: alert %d is closed", ErrConflict, a.ID)
		}
		r.Assignee, r.AssignedAt = a.Text, now
	case "close":
		if strings.TrimSpace(a.Text) == "" {
			return View{}, fmt.Errorf("%w: a close-out note (what was found and done) is required", ErrInvalid)
		}
		if r.State == StatePending {
			return View{}, fmt.Errorf("%w: alert %d is still pending", ErrConflict, a.ID)
		}
		if !r.ClosedAt.IsZero() {
			return View{}, fmt.Errorf("%w: alert %d was closed by %s", ErrConflict, a.ID, r.ClosedBy)
		}
		r.ClosedBy, r.CloseNote, r.ClosedAt = a.Who, a.Text, now
	default:
		return View{}, fmt.Errorf("%w: action %q", ErrInvalid, kind)
	}
	if err := m.db.save(ctx, r); err != nil {
		return View{}, err
	}
	if err := m.db.event(ctx, r.ID, now, kind, a.Who, a.Text); err != nil {
		return View{}, err
	}
	m.updateGauges()
	return m.view(r, now, m.inhibitors()), nil
}

// AddSilence validates and stores a silence; it returns it with its id.
func (m *Manager) AddSilence(ctx context.Context, s Silence) (Silence, error) {
	now := m.o.Now()
	if len(s.Matchers) == 0 {
		return s, fmt.Errorf("%w: a silence needs at least one matcher", ErrInvalid)
	}
	for i, mt := range s.Matchers {
		c, err := NewMatcher(mt.Name, mt.Op, mt.Value)
		if err != nil {
			return s, fmt.Errorf("%w: matchers[%d]: %v", ErrInvalid, i, err)
		}
		s.Matchers[i] = c
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	if !s.EndsAt.After(s.StartsAt) || !s.EndsAt.After(now) {
		return s, fmt.Errorf("%w: ends_at must be after starts_at and in the future", ErrInvalid)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.ID, s.CreatedAt, s.File = hex.EncodeToString(b[:]), now, ""
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.db.saveSilence(ctx, &s); err != nil {
		return s, err
	}
	m.silences = append(m.silences, &s)
	return s, nil
}

// Silences lists the silences not yet expired, and those expired within the last day.
func (m *Manager) Silences() []Silence {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Silence{}
	for _, s := range m.silences {
		if s.EndsAt.After(now.Add(-24 * time.Hour)) {
			out = append(out, *s)
		}
	}
	return out
}

// ExpireSilence ends a silence now (its record stays).
func (m *Manager) ExpireSilence(ctx context.Context, id string, allowed func(*Silence) bool) error {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.silences {
		if s.ID != id {
			continue
		}
		if allowed != nil && !allowed(s) {
			return fmt.Errorf("%w: silence %s", ErrNotFound, id)
		}
		if s.File != "" {
			return fmt.Errorf("%w: silence %s is written in a rules file; edit the file", ErrConflict, id)
		}
		if !s.EndsAt.After(now) {
			return fmt.Errorf("%w: silence %s already ended", ErrConflict, id)
		}
		s.EndsAt = now
		if s.StartsAt.After(now) {
			s.StartsAt = now
		}
		return m.db.saveSilence(ctx, s)
	}
	return fmt.Errorf("%w: silence %s", ErrNotFound, id)
}

// silenceSite is the site a silence is scoped to: its site="x" matcher, or "" for all sites.
func silenceSite(s *Silence) string {
	for _, mt := range s.Matchers {
		if mt.Name == "site" && mt.Op == OpEqual {
			return mt.Value
		}
	}
	return ""
}

// Handler serves the alerting API:
//
//	GET    /api/v1/alerts?site=&state=&severity=
//	POST   /api/v1/alerts/{id}/ack      {"comment"}
//	POST   /api/v1/alerts/{id}/assign   {"assignee"}
//	POST   /api/v1/alerts/{id}/close    {"note"}
//	GET    /api/v1/alerts/closeouts.csv
//	GET    /api/v1/silences
//	POST   /api/v1/silences             {"matchers":[{"name","op","value"}],"starts_at","ends_at","comment"}
//	DELETE /api/v1/silences/{id}
//	GET    /api/v1/rules?site=
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/alerts", m.serveAlerts)
	mux.HandleFunc("GET /api/v1/alerts/closeouts.csv", m.serveCloseouts)
	mux.HandleFunc("POST /api/v1/alerts/{id}/{action}", m.serveAction)
	mux.HandleFunc("GET /api/v1/silences", m.serveSilences)
	mux.HandleFunc("POST /api/v1/silences", m.servePostSilence)
	mux.HandleFunc("DELETE /api/v1/silences/{id}", m.serveDeleteSilence)
	mux.HandleFunc("GET /api/v1/rules", m.serveRules)
	return mux
}

func (m *Manager) who(r *http.Request) string {
	if m.o.Who != nil {
		if w := m.o.Who(r); w != "" {
			return w
		}
	}
	return "anonymous"
}

func (m *Manager) allowed(r *http.Request, site string) bool {
	return m.o.Allowed == nil || m.o.Allowed(r, site)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": errCode, "message": msg}})
}

// fail maps an action's error to a status.
func (m *Manager) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
	default:
		m.o.Logger.Error("alerting api", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the alert state could not be read or written")
	}
}

// decode reads a JSON body of at most 64 KiB with no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", "read the JSON body: "+err.Error())
		return false
	}
	return true
}

func (m *Manager) serveAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Site: q.Get("site"), State: q.Get("state"), Severity: q.Get("severity")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "invalid", "limit must be a positive integer")
			return
		}
		f.Limit = n
	}
	if f.Site != "" && !m.allowed(r, f.Site) {
		writeError(w, http.StatusForbidden, "forbidden", "no access to site "+f.Site)
		return
	}
	vs, err := m.Alerts(r.Context(), f)
	if err != nil {
		m.fail(w, err)
		return
	}
	out := vs[:0]
	for _, v := range vs {
		if m.allowed(r, v.Site) {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}

func (m *Manager) serveAction(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no alert "+r.PathValue("id"))
		return
	}
	action := r.PathValue("action")
	var body struct {
		Comment  string `json:"comment"`
		Assignee string `json:"assignee"`
		Note     string `json:"note"`
	}
	switch action {
	case "ack", "assign", "close":
	default:
		writeError(w, http.StatusNotFound, "not_found", "no action "+action+" (ack, assign, close)")
		return
	}
	if !decode(w, r, &body) {
		return
	}
	text := map[string]string{"ack": body.Comment, "assign": body.Assignee, "close": body.Note}[action]
	v, err := m.Act(r.Context(), action, Action{ID: id, Who: m.who(r), Text: text,
		allowed: func(site string) bool { return m.allowed(r, site) }})
	if err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// CloseoutColumns are the columns of the close-out export.
var CloseoutColumns = []string{"id", "site", "alertname", "severity", "labels", "summary", "starts_at", "ends_at",
	"acknowledged_by", "ack_comment", "assignee", "closed_by", "closed_at", "close_note"}

func (m *Manager) serveCloseouts(w http.ResponseWriter, r *http.Request) {
	vs, err := m.Alerts(r.Context(), Filter{State: "closed", Limit: 100000, Site: r.URL.Query().Get("site")})
	if err != nil {
		m.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="alert-closeouts.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(CloseoutColumns)
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		if !m.allowed(r, v.Site) {
			continue
		}
		var ls []string
		for _, k := range sortedKeys(v.Labels) {
			if k != "alertname" && k != "site" && k != "severity" {
				ls = append(ls, k+"="+v.Labels[k])
			}
		}
		_ = cw.Write([]string{v.ID, v.Site, v.Name, v.Severity, strings.Join(ls, ";"), v.Summary, ts(v.StartsAt), ts(v.EndsAt),
			v.AcknowledgedBy, v.AckComment, v.Assignee, v.ClosedBy, ts(v.ClosedAt), v.CloseNote})
	}
	cw.Flush()
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (m *Manager) serveSilences(w http.ResponseWriter, r *http.Request) {
	out := []Silence{}
	for _, s := range m.Silences() {
		if m.allowed(r, silenceSite(&s)) {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": out})
}

func (m *Manager) servePostSilence(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Matchers []Matcher `json:"matchers"`
		StartsAt time.Time `json:"starts_at"`
		EndsAt   time.Time `json:"ends_at"`
		Comment  string    `json:"comment"`
	}
	if !decode(w, r, &body) {
		return
	}
	s := Silence{Matchers: body.Matchers, StartsAt: body.StartsAt, EndsAt: body.EndsAt, Comment: body.Comment, Author: m.who(r)}
	if site := silenceSite(&s); !m.allowed(r, site) {
		msg := "a silence without a site=\"...\" matcher covers every site; add one for a site you may act on"
		if site != "" {
			msg = "no access to site " + site
		}
		writeError(w, http.StatusForbidden, "forbidden", msg)
		return
	}
	s, err := m.AddSilence(r.Context(), s)
	if err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (m *Manager) serveDeleteSilence(w http.ResponseWriter, r *http.Request) {
	err := m.ExpireSilence(r.Context(), r.PathValue("id"), func(s *Silence) bool { return m.allowed(r, silenceSite(s)) })
	if err != nil {
		m.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RuleView is one rule of one site with the count of its alerts by state.
type RuleView struct {
	Site     string         `json:"site"`
	Name     string         `json:"name"`
	Kind     string         `json:"kind"`
	Family   string         `json:"family"`
	Severity string         `json:"severity"`
	For      string         `json:"for"`
	Period   string         `json:"period,omitempty"`
	State    string         `json:"state"` // the worst: firing, pending or ok
	Alerts   map[string]int `json:"alerts"`
	Runbook  Runbook        `json:"runbook"`
}

func (m *Manager) serveRules(w http.ResponseWriter, r *http.Request) {
	site := r.URL.Query().Get("site")
	m.mu.Lock()
	out := []RuleView{}
	for _, s := range m.order {
		if site != "" && s.ID != site || !m.allowed(r, s.ID) {
			continue
		}
		for _, rl := range m.rules[s.ID] {
			v := RuleView{Site: s.ID, Name: rl.Name, Kind: rl.Kind, Family: kinds[rl.Kind].family, Severity: rl.Severity,
				For: rl.For.String(), Period: rl.Period, State: "ok", Alerts: map[string]int{}, Runbook: rl.Runbook}
			for _, a := range m.active {
				if a.Site == s.ID && a.Rule == rl.Name {
					v.Alerts[a.shownState()]++
				}
			}
			switch {
			case v.Alerts[StateFiring]+v.Alerts[StateAcknowledged] > 0:
				v.State = StateFiring
			case v.Alerts[StatePending] > 0:
				v.State = StatePending
			}
			out = append(out, v)
		}
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"rules": out})
}
