package notify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// Dedup is the first intake stage: it drops alerts that cannot be routed (no labels), fills in
// missing fingerprints and statuses, copies the maps so the caller may reuse its own, and
// collapses a batch to one alert per fingerprint, the last one winning.
type Dedup struct{}

// Exec returns the cleaned batch.
func (Dedup) Exec(alerts []Alert) []Alert {
	out := make([]Alert, 0, len(alerts))
	at := make(map[string]int, len(alerts))
	for _, a := range alerts {
		if len(a.Labels) == 0 {
			continue
		}
		a.Labels = maps.Clone(a.Labels)
		a.Annotations = maps.Clone(a.Annotations)
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		if a.Fingerprint == "" {
			a.Fingerprint = LabelsFingerprint(a.Labels)
		}
		if a.Status != StatusResolved {
			a.Status = StatusFiring
		}
		if i, ok := at[a.Fingerprint]; ok {
			out[i] = a
			continue
		}
		at[a.Fingerprint] = len(out)
		out = append(out, a)
	}
	return out
}

// Grouper is the intake stage that files an alert into its route's aggregation group, creating
// the group on first use.
type Grouper struct{ d *Dispatcher }

// Add files a into the group of route r; the caller holds d.mu.
func (gr Grouper) Add(r *route, a Alert, now time.Time) {
	d := gr.d
	labels := r.groupLabels(a.Labels)
	key := r.key + ":" + labelString(labels)
	g, ok := d.groups[key]
	if (!ok || g.alerts[a.Fingerprint] == nil) && d.held >= maxHeldAlerts {
		d.metrics.dropped.Inc()
		if !d.droppedWarned {
			d.droppedWarned = true
			d.logger.Error("notification dispatcher full, new alerts are dropped until resolved ones drain",
				"limit", maxHeldAlerts)
		}
		return
	}
	if !ok {
		g = &aggrGroup{key: key, route: r, labels: labels, alerts: map[string]*heldAlert{}}
		// An alert older than group_wait (a restart, late data) goes out at once, as in
		// Alertmanager: the reader has waited long enough.
		g.firstWait = r.groupWait
		if !a.StartsAt.IsZero() && a.StartsAt.Add(r.groupWait).Before(now) {
			g.firstWait = 0
		}
		d.groups[key] = g
		d.metrics.groups.Set(float64(len(d.groups)))
		d.startGroup(g)
	}
	h, ok := g.alerts[a.Fingerprint]
	if !ok {
		h = &heldAlert{}
		g.alerts[a.Fingerprint] = h
		d.held++
	}
	h.alert, h.seen = a, now
	h.version++
}

// Batch is what flows through the flush stages: one group's alerts on their way to one
// integration, and what the stages learned about it.
type Batch struct {
	integ          *integration
	GroupKey       string
	GroupLabels    map[string]string
	Alerts         []Alert
	RepeatInterval time.Duration
	At             time.Time

	Firing, Resolved []string // sorted fingerprints
	Hash             string
	Attempts         int
	Err              error
	Took             time.Duration
	Skipped          bool // all resolved and the integration does not send resolved
}

// Stage is one step of the flush pipeline.
type Stage interface {
	Exec(ctx context.Context, b *Batch) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, b *Batch) error

// Exec calls f.
func (f StageFunc) Exec(ctx context.Context, b *Batch) error { return f(ctx, b) }

// MultiStage runs stages in order and stops at the first error.
type MultiStage []Stage

// Exec runs every stage.
func (ms MultiStage) Exec(ctx context.Context, b *Batch) error {
	for _, s := range ms {
		if err := s.Exec(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// errNothingNew stops a flush that has nothing new for an integration; it is not a failure.
var errNothingNew = errors.New("nothing new to notify")

// NotifyDedup is the flush stage that asks the notification log whether the alert set is news
// for this integration, Alertmanager's rule: a new firing alert, a newly resolved one (when the
// integration sends resolved), the end of every firing alert, or repeat_interval since the last
// delivery.
type NotifyDedup struct {
	log    *nflog
	logger *slog.Logger
}

// Exec returns errNothingNew when nothing needs sending.
func (s NotifyDedup) Exec(ctx context.Context, b *Batch) error {
	b.Firing, b.Resolved = b.Firing[:0], b.Resolved[:0]
	h := sha256.New()
	for i := range b.Alerts {
		a := &b.Alerts[i]
		if a.Resolved() {
			b.Resolved = append(b.Resolved, a.Fingerprint)
		} else {
			b.Firing = append(b.Firing, a.Fingerprint)
		}
	}
	slices.Sort(b.Firing)
	slices.Sort(b.Resolved)
	for _, fp := range b.Firing {
		fmt.Fprintf(h, "f:%s\n", fp)
	}
	for _, fp := range b.Resolved {
		fmt.Fprintf(h, "r:%s\n", fp)
	}
	b.Hash = hex.EncodeToString(h.Sum(nil))[:16]

	st, err := s.log.state(ctx, b.integ.receiver, b.integ.key(), b.GroupKey)
	if err != nil {
		// Better a duplicate than a lost notification.
		s.logger.Warn("notification log unreadable, sending without de-duplication", "err", err)
		st = nil
	}
	if !s.needsUpdate(st, b) {
		return errNothingNew
	}
	if len(b.Firing) == 0 && !b.integ.sendResolved {
		b.Skipped = true
	}
	return nil
}

func (s NotifyDedup) needsUpdate(st *sentState, b *Batch) bool {
	if b.integ.everyFlush && len(b.Firing) > 0 {
		return true
	}
	switch {
	case st == nil:
		return len(b.Firing) > 0
	case !subset(b.Firing, st.firing):
		return true
	case len(b.Firing) == 0:
		return len(st.firing) > 0
	case b.integ.sendResolved && !subset(b.Resolved, st.resolved):
		return true
	}
	return !b.At.Before(st.at.Add(b.RepeatInterval))
}

// Send is the flush stage that sends, retrying retryable errors with exponential backoff and
// jitter, at most attempts times and never past the flush's deadline. It leaves the outcome in
// the batch for Record.
type Send struct {
	initial, max time.Duration
	attempts     int
	now          func() time.Time
	metrics      *Metrics
	ext          string
}

// Exec sends b to its integration.
func (s Send) Exec(ctx context.Context, b *Batch) error {
	if b.Skipped {
		return nil
	}
	msg := &Message{
		Receiver:    b.integ.receiver,
		GroupKey:    b.GroupKey,
		GroupLabels: b.GroupLabels,
		ExternalURL: s.ext,
	}
	for _, a := range b.Alerts {
		if a.Resolved() && !b.integ.sendResolved {
			continue
		}
		msg.Alerts = append(msg.Alerts, a)
	}
	start := s.now()
	defer func() { b.Took = s.now().Sub(start) }()
	for {
		b.Attempts++
		t0 := s.now()
		err := b.integ.send(ctx, msg)
		s.metrics.latency.WithLabelValues(b.integ.receiver, b.integ.kind).Observe(s.now().Sub(t0).Seconds())
		if err == nil {
			s.metrics.notifications.WithLabelValues(b.integ.receiver, b.integ.kind, "success").Inc()
			b.Err = nil
			return nil
		}
		s.metrics.notifications.WithLabelValues(b.integ.receiver, b.integ.kind, "failure").Inc()
		b.Err = err
		if !Retryable(err) || b.Attempts >= s.attempts || ctx.Err() != nil {
			return nil
		}
		wait := backoff(s.initial, s.max, b.Attempts)
		// The deadline is on the runtime's clock, not the injected one.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil // the next tick of the group tries again
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is initial·2^(attempt-1), capped at max, with jitter over its upper half so that many
// groups failing at once do not retry in step.
func backoff(initial, max time.Duration, attempt int) time.Duration {
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Record is the last flush stage: it writes the outcome to the notification log and logs a
// failing integration once per episode (when it starts failing and when it recovers), not once
// per retry.
type Record struct {
	log    *nflog
	logger *slog.Logger
}

// Exec records b and returns its send error.
func (s Record) Exec(ctx context.Context, b *Batch) error {
	e := &LogEntry{
		At:          b.At,
		Receiver:    b.integ.receiver,
		Integration: b.integ.key(),
		GroupKey:    b.GroupKey,
		Hash:        b.Hash,
		Status:      StatusFiring,
		Firing:      b.Firing,
		Resolved:    b.Resolved,
		Result:      ResultSent,
		Attempts:    b.Attempts,
		Took:        b.Took,
	}
	if len(b.Firing) == 0 {
		e.Status = StatusResolved
	}
	switch {
	case b.Skipped:
		e.Result = ResultSkipped
	case b.Err != nil:
		e.Result, e.Error = ResultFailed, b.Err.Error()
	}
	// The log write must survive the flush's deadline, or a delivered notification would go
	// unrecorded and be sent again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.log.record(wctx, e); err != nil {
		s.logger.Warn("notification not recorded, it may be sent again", "receiver", e.Receiver,
			"integration", e.Integration, "err", err)
	}
	if b.Err != nil {
		if errors.Is(b.Err, context.Canceled) {
			// Shutdown, not the receiver's fault; the next start sends it.
			return b.Err
		}
		if !b.integ.failing.Swap(true) {
			s.logger.Warn("receiver failing, retrying at every group interval until it answers",
				"receiver", e.Receiver, "integration", e.Integration, "attempts", b.Attempts, "err", b.Err)
		}
		return b.Err
	}
	if !b.Skipped && b.integ.failing.Swap(false) {
		s.logger.Info("receiver answering again", "receiver", e.Receiver, "integration", e.Integration)
	}
	return nil
}

// sortAlerts puts firing alerts first, each part by start time then fingerprint.
func sortAlerts(as []Alert) {
	slices.SortFunc(as, func(a, b Alert) int {
		if a.Resolved() != b.Resolved() {
			if a.Resolved() {
				return 1
			}
			return -1
		}
		return cmp.Or(a.StartsAt.Compare(b.StartsAt), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
}
