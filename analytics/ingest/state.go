package ingest

import (
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// State is ingest's health as /readyz and the metrics report it.
type State struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`       // when the connection last came up or went down
	LastError string    `json:"last_error,omitempty"` // why the broker was last unreachable or lost
	// Pending counts messages received and not yet acknowledged (queued, or in a batch that is
	// being stored); OldestPending is when the oldest of them arrived.
	Pending       int       `json:"pending"`
	OldestPending time.Time `json:"oldest_pending,omitzero"`
	LastMessage   time.Time `json:"last_message,omitzero"`
}

// connState tracks the broker connection and the messages not yet acknowledged.
type connState struct {
	mu        sync.Mutex
	connected bool
	since     time.Time
	lastErr   string
	lastLog   time.Time
	arrivals  []time.Time // receive times of unacknowledged messages, oldest first
	lastMsg   time.Time
}

// State returns ingest's current health.
func (in *Ingester) State() State {
	s := &in.state
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Connected: s.connected, Since: s.since, LastError: s.lastErr, Pending: len(s.arrivals), LastMessage: s.lastMsg}
	if len(s.arrivals) > 0 {
		st.OldestPending = s.arrivals[0]
	}
	return st
}

// Connected reports whether ingest holds a connection to the broker.
func (in *Ingester) Connected() bool { return in.State().Connected }

func (s *connState) received(t time.Time) {
	s.mu.Lock()
	s.arrivals = append(s.arrivals, t)
	s.lastMsg = t
	s.mu.Unlock()
}

func (s *connState) acked(n int) {
	s.mu.Lock()
	n = min(n, len(s.arrivals))
	s.arrivals = append(s.arrivals[:0], s.arrivals[n:]...)
	s.mu.Unlock()
}

// unreachableLogEvery spaces the warnings about a broker that cannot be reached: the first
// failed attempt is logged at once, then one line per period while it lasts.
const unreachableLogEvery = 30 * time.Second

// notify is paho's connection notification handler: it keeps the state and says in the log when
// the broker cannot be reached, which paho's retry loop otherwise does silently.
func (s *connState) notify(logger *slog.Logger, now func() time.Time) mqtt.ConnectionNotificationHandler {
	return func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := now()
		switch n := n.(type) {
		case mqtt.ConnectionNotificationConnected:
			if !s.connected && !s.lastLog.IsZero() {
				logger.Info("mqtt broker reachable again", "took", t.Sub(s.since).Round(time.Second))
			}
			s.connected, s.since, s.lastErr, s.lastLog = true, t, "", time.Time{}
		case mqtt.ConnectionNotificationLost:
			s.connected, s.since = false, t
			if n.Reason != nil {
				s.lastErr = n.Reason.Error()
			}
		case mqtt.ConnectionNotificationBrokerFailed:
			if s.connected {
				s.connected, s.since = false, t
			}
			if s.since.IsZero() {
				s.since = t
			}
			if n.Reason != nil {
				s.lastErr = n.Reason.Error()
			}
			if s.lastLog.IsZero() || t.Sub(s.lastLog) >= unreachableLogEvery {
				s.lastLog = t
				logger.Error("mqtt broker unreachable; retrying, readings wait on the broker and the edges", "broker", n.Broker.Redacted(), "err", n.Reason)
			}
		case mqtt.ConnectionNotificationFailed:
			if n.Reason != nil {
				s.lastErr = n.Reason.Error()
			}
		}
	}
}
