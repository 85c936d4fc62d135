package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Notifier sends one notification. Receivers' integrations (webhook, Alertmanager, e-mail,
// robots, MQTT) implement it; errors no retry can fix are wrapped with Permanent.
type Notifier interface {
	Notify(ctx context.Context, m *Message) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, m *Message) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, m *Message) error { return f(ctx, m) }

// PermanentError is a failure no retry within the flush can fix: the receiver refused the
// request (a 4xx answer, a robot's bad key or signature). The next group tick tries again, in
// case an operator fixed the receiver's side.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not retryable.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Retryable reports whether err may go away by itself: anything not marked Permanent.
func Retryable(err error) bool {
	var p *PermanentError
	return !errors.As(err, &p)
}

// integration is one configured integration of a receiver.
type integration struct {
	receiver     string
	kind         string // webhook, alertmanager, email, wecom, dingtalk, feishu, mqtt
	index        int
	notifier     Notifier
	sendResolved bool
	// everyFlush re-sends firing alerts at every group tick: Alertmanager forgets an alert that
	// is not pushed again before its endsAt.
	everyFlush bool
	failing    atomic.Bool
}

func (i *integration) key() string { return i.kind + "[" + strconv.Itoa(i.index) + "]" }

// send calls the notifier; a panic in an integration becomes a permanent error of that
// notification instead of taking the platform down.
func (i *integration) send(ctx context.Context, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("%s integration panicked: %v", i.kind, r))
		}
	}()
	return i.notifier.Notify(ctx, m)
}

// httpPoster sends JSON and classifies the answer: 2xx is done, 408, 429 and 5xx are retried,
// other 4xx are permanent; a transport error is retried.
type httpPoster struct {
	client *http.Client
	auth   func(*http.Request)
	// display names the endpoint in errors when its URL holds a secret in the path (Feishu's
	// hook token); otherwise the URL is shown without credentials and query.
	display string
}

const maxAnswer = 64 << 10

// post sends body to url and returns the answer's body.
func (p *httpPoster) post(ctx context.Context, url, contentType string, body []byte) ([]byte, error) {
	shown := p.display
	if shown == "" {
		shown = redactURL(url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(fmt.Errorf("build request to %s: %w", shown, err))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "aqualoop-notify")
	if p.auth != nil {
		p.auth(req)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// url.Error repeats the URL with its query, which holds robots' keys.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return nil, fmt.Errorf("post to %s: %w", shown, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return answer, nil
	}
	err = fmt.Errorf("post to %s: %s: %s", shown, resp.Status, truncate(string(answer), 200))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return nil, err
	default:
		return nil, Permanent(err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// authFunc builds the request decoration of an HTTPAuth.
func (a *HTTPAuth) authFunc() (func(*http.Request), error) {
	tok, err := resolveSecret(a.BearerToken, a.BearerTokenFile, a.BearerTokenEnv)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }, nil
	}
	if a.BasicAuth.Username != "" {
		pw, err := resolveSecret(a.BasicAuth.Password, a.BasicAuth.PasswordFile, a.BasicAuth.PasswordEnv)
		if err != nil {
			return nil, err
		}
		user := a.BasicAuth.Username
		return func(r *http.Request) { r.SetBasicAuth(user, pw) }, nil
	}
	return nil, nil
}
