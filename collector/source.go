package collector

import (
	"context"
	"math/rand/v2"
	"time"
)

// Source is one physical bus or server connection: a Modbus TCP gateway, a serial line, an OPC UA
// endpoint. Run reads its meters until ctx ends and hands every Reading to emit; it returns nil on
// cancellation and an error only when it cannot go on at all (never for one bad meter or register).
// Readings leave a Source without Site-level sequence numbers; the edge stamps those.
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(Reading)) error
}

// Poller is a Source that is read on a schedule: one Poll reads every meter on the bus once.
type Poller interface {
	Poll(ctx context.Context) ([]Reading, error)
}

// PollFunc adapts a function to Poller.
type PollFunc func(ctx context.Context) ([]Reading, error)

// Poll calls f.
func (f PollFunc) Poll(ctx context.Context) ([]Reading, error) { return f(ctx) }

// Schedule drives p the way Prometheus drives a scrape loop: a jittered first poll so that many
// buses do not fire together, then one poll per interval, each bounded by timeout. A poll that
// overruns its interval restarts the ticker when it ends, so the missed ticks are skipped and
// the device gets a full interval of rest before the next poll. Errors go to onErr
// (which may be nil); the loop only ends with ctx.
func Schedule(ctx context.Context, interval, timeout time.Duration, p Poller, emit func(Reading), onErr func(error)) {
	if timeout <= 0 || timeout > interval {
		timeout = interval
	}
	if interval > 0 {
		jitter := time.Duration(rand.Int64N(int64(interval)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter):
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		began := time.Now()
		pctx, cancel := context.WithTimeout(ctx, timeout)
		rs, err := p.Poll(pctx)
		cancel()
		if time.Since(began) >= interval {
			select {
			case <-t.C:
			default:
			}
			t.Reset(interval)
		}
		for _, r := range rs {
			emit(r)
		}
		if err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
