package ingest

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestStateTracksConnectionAndPending(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var logs strings.Builder
	in := New(Config{}, nil, nil, Options{Now: clock})
	notify := in.state.notify(slog.New(slog.NewTextHandler(&logs, nil)), clock)
	broker, _ := url.Parse("tcp://127.0.0.1:1")

	notify(nil, mqtt.ConnectionNotificationBrokerFailed{Broker: broker, Reason: errors.New("connection refused")})
	now = now.Add(time.Second)
	notify(nil, mqtt.ConnectionNotificationBrokerFailed{Broker: broker, Reason: errors.New("connection refused")})
	if st := in.State(); st.Connected || st.LastError != "connection refused" {
		t.Errorf("state after failures: %+v", st)
	}
	if n := strings.Count(logs.String(), "mqtt broker unreachable"); n != 1 {
		t.Errorf("%d log lines for two failures a second apart, want 1 (then one per %v)", n, unreachableLogEvery)
	}
	now = now.Add(unreachableLogEvery)
	notify(nil, mqtt.ConnectionNotificationBrokerFailed{Broker: broker, Reason: errors.New("connection refused")})
	if n := strings.Count(logs.String(), "mqtt broker unreachable"); n != 2 {
		t.Errorf("%d log lines after %v, want 2", n, unreachableLogEvery)
	}
	notify(nil, mqtt.ConnectionNotificationConnected{})
	if !in.Connected() || !strings.Contains(logs.String(), "reachable again") {
		t.Errorf("not connected after the Connected notification: %+v", in.State())
	}

	t0 := now
	in.state.received(t0)
	in.state.received(t0.Add(time.Second))
	in.state.received(t0.Add(2 * time.Second))
	if st := in.State(); st.Pending != 3 || !st.OldestPending.Equal(t0) {
		t.Errorf("pending %+v, want 3 from %v", st, t0)
	}
	in.state.acked(2)
	if st := in.State(); st.Pending != 1 || !st.OldestPending.Equal(t0.Add(2*time.Second)) || !st.LastMessage.Equal(t0.Add(2*time.Second)) {
		t.Errorf("after acking two: %+v", st)
	}
	in.state.acked(5)
	if st := in.State(); st.Pending != 0 || !st.OldestPending.IsZero() {
		t.Errorf("after acking all: %+v", st)
	}
}
