package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
)

// errPanic marks a message whose handling panicked: a bug, but one message's bug, so it is
// dead-lettered and ingest carries on instead of crashing, restarting and meeting the same
// unacknowledged message again forever.
var errPanic = errors.New("handling the message panicked")

// safeValidate is validate that turns a panic into a rejection.
func (in *Ingester) safeValidate(topic string, payload []byte) (r collector.Reading, kind string, err error) {
	defer func() {
		if p := recover(); p != nil {
			in.opts.Logger.Error("validating a message panicked; dead-lettered", "topic", topic, "err", p, "stack", string(debug.Stack()))
			r, kind, err = collector.Reading{}, KindPanic, fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return in.validate(topic, payload)
}

// addToLedger puts a stored reading through the ledger, at most Limits.MaxAttempts times with a
// backoff between attempts. A reading that still fails, or panics, is given up: it stays stored,
// and the ledger books its volume in the interval between its neighbours (a totalizer
// difference is exact whichever readings lie between), only its split between minutes is
// coarser. It returns an error wrapping errPanic after a panic, ctx's error when ctx ended.
func (in *Ingester) addToLedger(ctx context.Context, r collector.Reading) ([]ledger.Bucket, error) {
	backoff := 100 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		var bs []ledger.Bucket
		bs, err = in.ledgerAdd(ctx, r)
		if err == nil || errors.Is(err, errPanic) {
			return bs, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt >= in.cfg.Limits.MaxAttempts {
			return nil, fmt.Errorf("update ledger of %s/%s at %s, %d attempts: %w", r.Site, r.Meter, r.Time.Format(time.RFC3339Nano), attempt, err)
		}
		in.opts.Metrics.storeErrs.Inc()
		in.opts.Logger.Warn("update ledger failed, retrying", "site", r.Site, "meter", r.Meter, "err", err, "took", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (in *Ingester) ledgerAdd(ctx context.Context, r collector.Reading) (bs []ledger.Bucket, err error) {
	defer func() {
		if p := recover(); p != nil {
			in.opts.Logger.Error("ledger panicked on a reading; dead-lettered", "site", r.Site, "meter", r.Meter, "err", p, "stack", string(debug.Stack()))
			bs, err = nil, fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return in.ledger.Add(ctx, r)
}

// writeBuckets stores the ledger's buckets, retrying while the store is down. Buckets the store
// refuses for what they hold (a ledger bug; the ledger never makes a non-finite volume on
// purpose) are logged and counted as bucket_rejected and the rest stored: returning the error
// would stop ingest for every site.
func (in *Ingester) writeBuckets(ctx context.Context, bs []ledger.Bucket) error {
	err := in.retry(ctx, "store buckets", func() error { return in.store.WriteBuckets(ctx, bs) })
	if !errors.Is(err, store.ErrRejected) {
		return err
	}
	for _, b := range bs {
		err := in.retry(ctx, "store bucket", func() error { return in.store.WriteBuckets(ctx, []ledger.Bucket{b}) })
		switch {
		case errors.Is(err, store.ErrRejected):
			in.opts.Metrics.rejected.WithLabelValues(KindBucketRejected).Inc()
			in.opts.Logger.Error("store refused a ledger bucket; skipped", "site", b.Site, "meter", b.Meter, "err", err)
		case err != nil:
			return err
		}
	}
	return nil
}
