package collector

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var polls []time.Time
		var emitted, errs int
		start := time.Now()
		p := PollFunc(func(ctx context.Context) ([]Reading, error) {
			polls = append(polls, time.Now())
			if len(polls) == 3 {
				// An overrun: this poll takes 2.5 intervals and must not queue missed ticks.
				time.Sleep(25 * time.Second)
				return nil, errors.New("slave 3 timed out")
			}
			return []Reading{{Meter: "M01"}, {Meter: "M02"}}, nil
		})
		go Schedule(ctx, 10*time.Second, 5*time.Second, p, func(Reading) { emitted++ }, func(error) { errs++ })
		time.Sleep(95 * time.Second)
		cancel()
		synctest.Wait()
		if polls[0].Sub(start) >= 10*time.Second {
			t.Errorf("first poll after %v, want a jitter below one interval", polls[0].Sub(start))
		}
		for i := 1; i < len(polls); i++ {
			if d := polls[i].Sub(polls[i-1]); d < 10*time.Second {
				t.Errorf("polls %d and %d only %v apart", i-1, i, d)
			}
		}
		// 95 s with one 25 s overrun: at most 9 polls, and at least 7.
		if len(polls) < 7 || len(polls) > 9 {
			t.Errorf("%d polls in 95 s", len(polls))
		}
		if errs != 1 || emitted != 2*(len(polls)-1) {
			t.Errorf("errors %d, emitted %d for %d polls", errs, emitted, len(polls))
		}
	})
}

func TestQuality(t *testing.T) {
	for _, q := range []Quality{Good, Uncertain, Bad} {
		got, err := ParseQuality(q.String())
		if err != nil || got != q {
			t.Errorf("ParseQuality(%q) = %v, %v", q.String(), got, err)
		}
	}
	if _, err := ParseQuality("excellent"); err == nil {
		t.Error("unknown quality accepted")
	}
}
