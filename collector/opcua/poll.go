package opcua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aqualoop/aqualoop/collector"
)

// maxPollTimeouts is how many polls in a row may time out before the session is taken for dead:
// a server that stops answering but keeps its socket open would otherwise never be reconnected.
const maxPollTimeouts = 3

// servePoll reads every node once per interval over cn until the connection is lost.
func (s *Source) servePoll(ctx context.Context, cn *conn, emit func(collector.Reading)) (healthy bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeouts := 0
	p := collector.PollFunc(func(pctx context.Context) ([]collector.Reading, error) {
		rs, answered, err := s.poll(pctx, cn)
		if answered {
			healthy = true
			now := s.now()
			s.update(func(st *ServerState) { st.LastData, st.LastResponse = now, now })
		}
		switch {
		case err == nil:
			timeouts = 0
		case connectionLost(err):
			cancel(err)
		case isTimeout(err):
			if timeouts++; timeouts >= maxPollTimeouts {
				cancel(fmt.Errorf("%d polls in a row timed out: %w", timeouts, err))
			}
		}
		return rs, err
	})
	// Read at once after connecting: Schedule's jittered first poll could come up to an interval
	// later, and a server that is back should be read within one interval of its return.
	pctx, cancelFirst := context.WithTimeout(sctx, s.cfg.Timeout)
	rs, err := p.Poll(pctx)
	cancelFirst()
	for _, r := range rs {
		emit(r)
	}
	if err != nil && sctx.Err() == nil {
		s.fail(err)
		s.log.Warn("opc ua poll incomplete, unread nodes published as bad", "err", err)
	}
	collector.Schedule(sctx, s.cfg.Interval, s.cfg.Timeout, p, emit, func(err error) {
		s.fail(err)
		s.log.Warn("opc ua poll incomplete, unread nodes published as bad", "err", err)
	})
	if ctx.Err() != nil {
		return healthy, nil
	}
	return healthy, context.Cause(sctx)
}

// poll reads every node once. Nodes that did not resolve, that the server reports bad, or whose
// request failed become Bad points; the rest publish. answered says that at least one Read came
// back; err is the first failed request.
func (s *Source) poll(ctx context.Context, cn *conn) (rs []collector.Reading, answered bool, err error) {
	b := newBatch(s)
	var idx []int
	for i := range s.points {
		if cn.ids[i] == nil {
			b.addBad(i, ua.StatusBadNodeIDUnknown, cn.idErr[i])
			continue
		}
		idx = append(idx, i)
	}
	var firstErr error
	_ = eachChunk(len(idx), &cn.maxRead, func(lo, hi int) error {
		part := idx[lo:hi]
		if firstErr != nil && (connectionLost(firstErr) || ctx.Err() != nil) {
			markBad(b, part, firstErr)
			return nil
		}
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth, NodesToRead: make([]*ua.ReadValueID, len(part))}
		for k, i := range part {
			req.NodesToRead[k] = &ua.ReadValueID{NodeID: cn.ids[i], AttributeID: ua.AttributeIDValue}
		}
		start := time.Now()
		res, err := cn.c.Read(ctx, req)
		s.m.readSeconds.Observe(time.Since(start).Seconds())
		if err == nil && len(res.Results) != len(part) {
			err = fmt.Errorf("server returned %d results for %d nodes", len(res.Results), len(part))
		}
		if errors.Is(err, ua.StatusBadTooManyOperations) && len(part) > 1 {
			return err // eachChunk retries with fewer nodes
		}
		if err != nil {
			err = fmt.Errorf("read %d nodes (%s…): %w", len(part), s.points[part[0]].text, err)
			if firstErr == nil {
				firstErr = err
			}
			markBad(b, part, err)
			return nil
		}
		answered = true
		for k, i := range part {
			b.addValue(i, res.Results[k])
		}
		return nil
	})
	return b.readings(s.now()), answered, firstErr
}

// markBad adds the points of a failed request as Bad, with the request's status code.
func markBad(b *batch, part []int, err error) {
	code := ua.StatusBadCommunicationError
	var sc ua.StatusCode
	switch {
	case errors.As(err, &sc):
		code = sc
	case isTimeout(err):
		code = ua.StatusBadTimeout
	}
	for _, i := range part {
		b.addBad(i, code, err.Error())
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ua.StatusBadTimeout)
}

// eachChunk calls do for consecutive ranges [lo, hi) of n items, each at most *limit long. When
// do fails with BadTooManyOperations the limit is halved, kept for later calls, and the same
// items are tried again in smaller requests. Any other error from do stops the walk.
func eachChunk(n int, limit *int, do func(lo, hi int) error) error {
	for lo := 0; lo < n; {
		hi := min(lo+max(*limit, 1), n)
		err := do(lo, hi)
		if errors.Is(err, ua.StatusBadTooManyOperations) && hi-lo > 1 {
			*limit = (hi - lo) / 2
			continue
		}
		if err != nil {
			return err
		}
		lo = hi
	}
	return nil
}
