package notify

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// openDB opens a state DB file the way cmd does, with a busy timeout.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatalf("open state db: %v", err)
	}
	return db
}

func tempDBPath(t testing.TB) string { return filepath.Join(t.TempDir(), "state.db") }

// hookPayload mirrors Alertmanager's webhook payload (version 4) as its documentation names the
// fields, independently of the package's own struct.
type hookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

// hookRequest is one request the recorder saw.
type hookRequest struct {
	at      time.Time
	header  http.Header
	payload hookPayload
	status  int // what the recorder answered
}

// recorder is a webhook receiver that keeps every request and answers 200, or fail's status
// while fail is set.
type recorder struct {
	t    testing.TB
	mu   sync.Mutex
	reqs []hookRequest
	fail int // 0: answer 200
	hang chan struct{}
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var p hookPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		rc.t.Errorf("webhook body does not decode strictly as the Alertmanager payload: %v\n%s", err, body)
	}
	rc.mu.Lock()
	status, hang := rc.fail, rc.hang
	if status == 0 {
		status = http.StatusOK
	}
	rc.reqs = append(rc.reqs, hookRequest{at: time.Now(), header: r.Header.Clone(), payload: p, status: status})
	rc.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
	if status != http.StatusOK {
		_, _ = w.Write([]byte("receiver is down for the test"))
	}
}

func (rc *recorder) setFail(status int) {
	rc.mu.Lock()
	rc.fail = status
	rc.mu.Unlock()
}

// delivered is the requests answered with 200.
func (rc *recorder) delivered() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hookRequest
	for _, r := range rc.reqs {
		if r.status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

func (rc *recorder) all() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.reqs...)
}

// handlerTransport serves requests with a handler in the calling goroutine, without sockets, so
// that the whole pipeline runs inside a testing/synctest bubble on its fake clock. The webhook
// code under test is the same; only the network is left out.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ht.h.ServeHTTP(rec, r)
	}()
	select {
	case <-done:
	case <-r.Context().Done():
		<-done
		return nil, r.Context().Err()
	}
	return rec.Result(), nil
}

// logBuffer collects a text log safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(b *logBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func dur(d time.Duration) *time.Duration { return &d }

// alert builds a firing alert.
func alert(name, site string, start time.Time, extra ...string) Alert {
	l := map[string]string{"alertname": name, "site": site, "severity": "warning"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return Alert{
		Status: StatusFiring, Labels: l, StartsAt: start,
		Annotations: map[string]string{"summary": name + " at " + site, "summary_zh": site + " 发生 " + name},
	}
}

func resolved(a Alert, end time.Time) Alert {
	a.Status, a.EndsAt = StatusResolved, end
	return a
}

// runDispatcher starts d.Run and returns a stop function that waits for it.
func runDispatcher(t testing.TB, d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}
