package opcua

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aqualoop/aqualoop/collector"
)

// subscription is the one subscription of a session.
type subscription struct {
	id uint32
	// deadAfter is how long the publish loop waits for any answer, data or keep-alive, before
	// it takes the subscription for dead.
	deadAfter time.Duration
}

// serveSubscribe subscribes to every node and runs the publish loop until the connection is
// lost. A subscription that goes silent or that the server drops is recreated in the same
// session; when it dies before it ever answered, the session itself is suspect and serve
// returns so that Run reconnects.
func (s *Source) serveSubscribe(ctx context.Context, cn *conn, emit func(collector.Reading)) (healthy bool, err error) {
	rp := newRepublisher(len(s.meters), s.cfg.RepublishInterval, s.now)
	emit = rp.wrap(emit)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rp.run(rctx, emit) }()
	defer func() { stop(); <-done }()
	readOK := false
	for created := 0; ; created++ {
		sub, err := s.subscribe(ctx, cn, emit)
		if err != nil {
			return healthy, err
		}
		if created > 0 {
			s.m.recreations.Inc()
			s.log.Info("opc ua subscription recreated", "subscription", sub.id)
		}
		s.update(func(st *ServerState) { st.SubscriptionID = sub.id })
		if created == 0 {
			// The subscription's first values come only after a publishing interval; one Read
			// now publishes the values at once, so a server that is back is read within one
			// interval. The subscription's first notification of the same values is then a
			// duplicate, which the republisher drops.
			rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			rs, answered, _ := s.poll(rctx, cn)
			cancel()
			if answered {
				// The session answers: a first subscription that dies before its first
				// publish response is the subscription's trouble, recreated in this session.
				healthy, readOK = true, true
				for _, r := range rs {
					emit(r)
				}
			}
		}
		answered, err := s.publishLoop(ctx, cn, sub, emit)
		healthy = healthy || answered
		if ctx.Err() != nil {
			return healthy, nil
		}
		// A subscription that died without ever answering makes the session suspect, unless
		// the read right after the first one proved the session good.
		if !errors.Is(err, errSubscriptionDead) || !(answered || created == 0 && readOK) {
			return healthy, err
		}
		s.fail(err)
		s.log.Warn("opc ua subscription went silent or was dropped, recreating it", "err", err)
		s.deleteSubscription(cn, sub.id)
	}
}

// subscribe creates the subscription and one monitored item per resolved node, reporting the
// nodes that could not be monitored as Bad points right away (they would otherwise never show).
func (s *Source) subscribe(ctx context.Context, cn *conn, emit func(collector.Reading)) (*subscription, error) {
	k := s.keepAliveCount()
	req := &ua.CreateSubscriptionRequest{
		RequestedPublishingInterval: float64(s.cfg.Interval) / float64(time.Millisecond),
		// The spec wants at least three keep-alive periods; more leaves room for a slow network
		// before the server drops the subscription.
		RequestedLifetimeCount:     10 * k,
		RequestedMaxKeepAliveCount: k,
		PublishingEnabled:          true,
	}
	var res *ua.CreateSubscriptionResponse
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := cn.c.Send(rctx, req, func(v ua.Response) error { return assign(v, &res) })
	cancel()
	if err != nil {
		return nil, fmt.Errorf("create subscription: %w", err)
	}
	interval := time.Duration(res.RevisedPublishingInterval * float64(time.Millisecond))
	if interval <= 0 {
		interval = s.cfg.Interval
	}
	rk := res.RevisedMaxKeepAliveCount
	if rk == 0 {
		rk = k
	}
	sub := &subscription{id: res.SubscriptionID, deadAfter: publishWait(rk, interval, s.cfg.Timeout)}
	if limit := s.requestTimeout() - s.cfg.Timeout; sub.deadAfter > limit {
		s.log.Warn("opc ua server revised the subscription far beyond the request; a silent subscription is detected sooner than its keep-alives",
			"interval", interval, "keepalive_count", rk)
		sub.deadAfter = limit
	}

	b := newBatch(s)
	var idx []int
	for i := range s.points {
		if cn.ids[i] == nil {
			b.addBad(i, ua.StatusBadNodeIDUnknown, cn.idErr[i])
			continue
		}
		idx = append(idx, i)
	}
	var noFilter []int
	filter := s.cfg.Deadband > 0
	err = eachChunk(len(idx), &cn.maxItems, func(lo, hi int) error {
		return s.monitor(ctx, cn, sub.id, idx[lo:hi], filter, b, &noFilter)
	})
	if err == nil && len(noFilter) > 0 {
		s.log.Warn("opc ua server refused the deadband on some nodes, monitoring them without it", "nodes", len(noFilter))
		err = eachChunk(len(noFilter), &cn.maxItems, func(lo, hi int) error {
			return s.monitor(ctx, cn, sub.id, noFilter[lo:hi], false, b, nil)
		})
	}
	if err != nil {
		s.deleteSubscription(cn, sub.id)
		return nil, err
	}
	for _, r := range b.readings(s.now()) {
		emit(r)
	}
	return sub, nil
}

// monitor creates the monitored items of s.points[part...]. Items refused for their deadband
// filter go to *noFilter (when not nil) to be tried without one; other refused items become Bad
// points in b.
func (s *Source) monitor(ctx context.Context, cn *conn, subID uint32, part []int, filter bool, b *batch, noFilter *[]int) error {
	sampling := float64(-1) // the publishing interval
	if s.cfg.SamplingInterval > 0 {
		sampling = float64(s.cfg.SamplingInterval) / float64(time.Millisecond)
	}
	items := make([]*ua.MonitoredItemCreateRequest, len(part))
	for k, i := range part {
		params := &ua.MonitoringParameters{
			ClientHandle:     uint32(i),
			SamplingInterval: sampling,
			QueueSize:        s.cfg.QueueSize,
			DiscardOldest:    true,
		}
		if filter {
			params.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
				Trigger:       ua.DataChangeTriggerStatusValue,
				DeadbandType:  uint32(ua.DeadbandTypeAbsolute),
				DeadbandValue: s.cfg.Deadband,
			})
		}
		items[k] = &ua.MonitoredItemCreateRequest{
			ItemToMonitor:       &ua.ReadValueID{NodeID: cn.ids[i], AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}},
			MonitoringMode:      ua.MonitoringModeReporting,
			RequestedParameters: params,
		}
	}
	req := &ua.CreateMonitoredItemsRequest{SubscriptionID: subID, TimestampsToReturn: ua.TimestampsToReturnBoth, ItemsToCreate: items}
	var res *ua.CreateMonitoredItemsResponse
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := cn.c.Send(rctx, req, func(v ua.Response) error { return assign(v, &res) })
	cancel()
	if err != nil {
		return fmt.Errorf("create %d monitored items: %w", len(part), err)
	}
	if len(res.Results) != len(part) {
		return fmt.Errorf("create %d monitored items: server returned %d results", len(part), len(res.Results))
	}
	for k, r := range res.Results {
		if quality(r.StatusCode) != collector.Bad {
			continue
		}
		switch r.StatusCode {
		case ua.StatusBadMonitoredItemFilterUnsupported, ua.StatusBadFilterNotAllowed,
			ua.StatusBadMonitoredItemFilterInvalid, ua.StatusBadDeadbandFilterInvalid:
			if noFilter != nil {
				*noFilter = append(*noFilter, part[k])
				continue
			}
		}
		b.addBad(part[k], r.StatusCode, "")
	}
	return nil
}

// publishLoop keeps one Publish request outstanding and turns every notification message into
// Readings. Each request must be answered, with data or a keep-alive, within sub.deadAfter;
// otherwise the subscription is dead. answered says that at least one answer came.
func (s *Source) publishLoop(ctx context.Context, cn *conn, sub *subscription, emit func(collector.Reading)) (answered bool, err error) {
	acks := []*ua.SubscriptionAcknowledgement{}
	for {
		var res *ua.PublishResponse
		pctx, cancel := context.WithTimeout(ctx, sub.deadAfter)
		err := cn.c.Send(pctx, &ua.PublishRequest{SubscriptionAcknowledgements: acks},
			func(v ua.Response) error { return assign(v, &res) })
		cancel()
		switch {
		case ctx.Err() != nil:
			return answered, nil
		case err == nil:
		case isTimeout(err):
			return answered, fmt.Errorf("%w: no data and no keep-alive for %v", errSubscriptionDead, sub.deadAfter)
		case errors.Is(err, ua.StatusBadNoSubscription), errors.Is(err, ua.StatusBadSubscriptionIDInvalid):
			return answered, fmt.Errorf("%w: publish: %w", errSubscriptionDead, err)
		default:
			return answered, fmt.Errorf("publish: %w", err)
		}
		acks = []*ua.SubscriptionAcknowledgement{}
		if res.SubscriptionID != sub.id {
			continue // an answer meant for a subscription this session has dropped
		}
		answered = true
		now := s.now()
		s.update(func(st *ServerState) { st.LastResponse = now })
		msg := res.NotificationMessage
		if msg == nil || len(msg.NotificationData) == 0 {
			continue // keep-alive
		}
		acks = append(acks, &ua.SubscriptionAcknowledgement{SubscriptionID: sub.id, SequenceNumber: msg.SequenceNumber})
		b := newBatch(s)
		var dead error
		for _, eo := range msg.NotificationData {
			if eo == nil {
				continue
			}
			switch v := eo.Value.(type) {
			case *ua.DataChangeNotification:
				for _, item := range v.MonitoredItems {
					if item == nil || int(item.ClientHandle) >= len(s.points) {
						continue
					}
					s.m.notifications.Inc()
					b.addValue(int(item.ClientHandle), item.Value)
				}
			case *ua.StatusChangeNotification:
				if quality(v.Status) == collector.Bad {
					dead = fmt.Errorf("%w: server reports %s", errSubscriptionDead, statusName(v.Status))
				}
			}
		}
		rs := b.readings(s.now())
		if len(rs) > 0 {
			s.update(func(st *ServerState) { st.LastData = now })
		}
		for _, r := range rs {
			emit(r)
		}
		if dead != nil {
			return answered, dead
		}
	}
}

// deleteSubscription removes a subscription the session no longer uses, best effort: the
// server drops it anyway when its lifetime runs out or the session closes.
func (s *Source) deleteSubscription(cn *conn, id uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	var res *ua.DeleteSubscriptionsResponse
	err := cn.c.Send(ctx, &ua.DeleteSubscriptionsRequest{SubscriptionIDs: []uint32{id}},
		func(v ua.Response) error { return assign(v, &res) })
	if err != nil {
		s.log.Debug("opc ua delete subscription failed", "subscription", id, "err", err)
	}
}

// assign stores v in *out when it has the expected response type.
func assign[T ua.Response](v ua.Response, out *T) error {
	r, ok := v.(T)
	if !ok {
		return fmt.Errorf("unexpected response %T", v)
	}
	*out = r
	return nil
}

// republisher publishes each meter's last known points again when the subscription has sent
// nothing for the meter for a whole republish interval. A server reports a value only when it
// changes: without this, a constant totalizer would look the same on the platform as a dead edge.
type republisher struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last []collector.Reading // per meter, the points last emitted, merged (nil Points: none yet), and the newest time
	sent []time.Time         // per meter, when a reading was last emitted
}

func newRepublisher(meters int, every time.Duration, now func() time.Time) *republisher {
	return &republisher{every: every, now: now, last: make([]collector.Reading, meters), sent: make([]time.Time, meters)}
}

// wrap records what emit sends, by meter index, before sending it.
func (rp *republisher) wrap(emit func(collector.Reading)) func(collector.Reading) {
	index := map[string]int{}
	var emitMu sync.Mutex // the publish loop and run both emit: one at a time, as before
	return func(r collector.Reading) {
		emitMu.Lock()
		defer emitMu.Unlock()
		rp.mu.Lock()
		i, ok := index[r.Meter]
		if !ok {
			i = len(index)
			if i < len(rp.last) {
				index[r.Meter] = i
			}
		}
		if i < len(rp.last) && r.TimeSource != collector.TimeSourceCollector && repeats(rp.last[i], r) {
			rp.mu.Unlock()
			return // the same values with the same or an older time: a duplicate
		}
		if i < len(rp.last) {
			prev := rp.last[i].Points
			merged := slices.Clone(prev)
			for _, p := range r.Points {
				if k := slices.IndexFunc(merged, func(q collector.Point) bool { return q.Name == p.Name }); k >= 0 {
					merged[k] = p
				} else {
					merged = append(merged, p)
				}
			}
			newest := rp.last[i].Time
			if r.TimeSource != collector.TimeSourceCollector && r.Time.After(newest) {
				newest = r.Time
			}
			rp.last[i] = collector.Reading{Site: r.Site, Meter: r.Meter, Points: merged, Time: newest}
			rp.sent[i] = rp.now()
		}
		rp.mu.Unlock()
		emit(r)
	}
}

// run checks every quarter interval for meters that are due and republishes them, stamped now
// by the collector's clock: the value is the server's last word on the point as of now.
func (rp *republisher) run(ctx context.Context, emit func(collector.Reading)) {
	if rp.every <= 0 {
		return
	}
	t := time.NewTicker(max(rp.every/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := rp.now()
		var due []collector.Reading
		rp.mu.Lock()
		for i, r := range rp.last {
			if r.Points != nil && now.Sub(rp.sent[i]) >= rp.every {
				r.Points = slices.Clone(r.Points)
				r.Time, r.TimeSource = now, collector.TimeSourceCollector
				due = append(due, r)
			}
		}
		rp.mu.Unlock()
		for _, r := range due {
			emit(r) // through wrap: marks the meter sent
		}
	}
}

// repeats says whether r carries only points last already holds, with equal values and
// statuses, and is not newer than what was sent.
func repeats(last, r collector.Reading) bool {
	if last.Points == nil || r.Time.After(last.Time) {
		return false
	}
	for _, p := range r.Points {
		k := slices.IndexFunc(last.Points, func(q collector.Point) bool { return q.Name == p.Name })
		if k < 0 {
			return false
		}
		q := last.Points[k]
		if q.Value != p.Value || q.Quality != p.Quality || q.Code != p.Code {
			return false
		}
	}
	return true
}
