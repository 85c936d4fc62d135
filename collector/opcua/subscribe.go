package opcua

import (
	"context"
	"errors"
	"fmt"
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
		answered, err := s.publishLoop(ctx, cn, sub, emit)
		healthy = healthy || answered
		if ctx.Err() != nil {
			return healthy, nil
		}
		if !errors.Is(err, errSubscriptionDead) || !answered {
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
