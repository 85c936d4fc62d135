// Package ingest is the platform's entry point for readings: it subscribes to the edges' MQTT
// topics (a persistent session, shared subscriptions so several instances split the load),
// validates and de-duplicates each reading, stores it, feeds it to the ledger and hands the
// changed volume buckets on. A malformed message is counted, logged once per kind and republished
// to the dead-letter topic; it never stops ingest. A reading is acknowledged to the broker only
// after it is stored, so a platform crash loses nothing.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aqualoop/aqualoop/analytics/ledger"
	"github.com/aqualoop/aqualoop/analytics/store"
	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/config"
	"github.com/aqualoop/aqualoop/collector/publish"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// Config is the platform's MQTT side.
type Config struct {
	MQTT publish.Broker `yaml:"mqtt"`
	// Group is the shared-subscription group; instances in one group split the messages. Empty
	// (the default) means a plain subscription: Mosquitto 2.0 does not restore a persistent
	// session's shared subscriptions from its persistence file, so with a group the readings
	// published between a broker restart and the platform's reconnection are lost, and a
	// plain subscription keeps them (docs/reliability.md).
	Group string `yaml:"group"`
	// Sites this instance ingests ("+" for all), the unit of sharding.
	Sites []string `yaml:"sites"`
	// Partition splits the modelled sites between instances by a stable hash (partition.go);
	// when set it replaces Sites and Group: each instance subscribes, without a shared group, to
	// the sites it owns, under a client id that ends in its index.
	Partition Partition `yaml:"partition"`
	// Limits bound what a message may carry; see Limits.
	Limits Limits `yaml:"limits"`
}

// Default fills in defaults.
func (c *Config) Default() {
	c.MQTT.Default()
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "aqualoop-platform"
	}
	if len(c.Sites) == 0 {
		c.Sites = []string{"+"}
	}
	c.Partition.Default()
	if c.Partition.Partitioned() && !strings.HasSuffix(c.MQTT.ClientID, fmt.Sprintf("-%d", c.Partition.Index)) {
		c.MQTT.ClientID = fmt.Sprintf("%s-%d", c.MQTT.ClientID, c.Partition.Index)
	}
	c.Limits.Default()
}

// Validate reports every problem under path.
func (c *Config) Validate(p *config.Problems, path string) {
	c.MQTT.Validate(p, path+".mqtt")
	if c.Group != "" && !wire.ValidID(c.Group) {
		p.Addf(path+".group", "%q is not a valid group name", c.Group)
	}
	for i, s := range c.Sites {
		if s != "+" && !wire.ValidID(s) {
			p.Addf(fmt.Sprintf("%s.sites[%d]", path, i), "%q is neither a site id nor +", s)
		}
	}
	c.Partition.Validate(p, path+".partition")
	c.Limits.Validate(p, path+".limits")
}

// Store is what ingest writes to.
type Store interface {
	WriteReadings(ctx context.Context, rs []collector.Reading) error
	WriteBuckets(ctx context.Context, bs []ledger.Bucket) error
}

// Ledger turns a stored reading into changed buckets.
type Ledger interface {
	Add(ctx context.Context, r collector.Reading) ([]ledger.Bucket, error)
}

// Rejection kinds, the label of the rejected-messages counter.
const (
	KindDecode       = "decode"
	KindTopic        = "topic"
	KindMismatch     = "topic_mismatch"
	KindUnknownMeter = "unknown_meter"
	KindRejected     = "store_rejected"
)

// Metrics are ingest's Prometheus series.
type Metrics struct {
	received   prometheus.Counter
	stored     prometheus.Counter
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	storeErrs  prometheus.Counter
	lag        prometheus.Histogram
}

// NewMetrics registers ingest's metrics with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "aqualoop_ingest_messages_total", Help: "MQTT messages received."}),
		stored:   prometheus.NewCounter(prometheus.CounterOpts{Name: "aqualoop_ingest_readings_stored_total", Help: "Readings written to the store."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_ingest_duplicates_total", Help: "Readings received again (same meter, sequence and time) and skipped.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aqualoop_ingest_rejected_total", Help: "Messages dead-lettered, by kind.",
		}, []string{"kind"}),
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aqualoop_ingest_store_errors_total", Help: "Failed store writes (retried; the message is not acknowledged until stored).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "aqualoop_ingest_lag_seconds", Help: "Wall time from a reading's timestamp to its storage.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.stored, m.duplicates, m.rejected, m.storeErrs, m.lag)
	}
	return m
}

// Rejected returns how many messages of a kind were dead-lettered (for tests and /healthz).
func (m *Metrics) Rejected(kind string) float64 { return value(m.rejected.WithLabelValues(kind)) }

// Options are what the caller injects.
type Options struct {
	Logger  *slog.Logger
	Metrics *Metrics
	// Known reports whether a meter belongs to a site this platform models. Nil accepts all.
	Known func(site, meter string) bool
	// OnBuckets receives every set of changed buckets after they are stored (the engine's input).
	OnBuckets func([]ledger.Bucket)
	// Now is the wall clock, for lag metrics.
	Now func() time.Time
	// OnReadings receives every set of readings after they are stored (meter liveness for
	// alerting; the platform clock at the call is when they were heard).
	OnReadings func([]collector.Reading)
	// OnStatus receives the edges' retained online/offline status; setting it subscribes to the
	// status topics.
	OnStatus func(site, edge string, online bool, at time.Time)
	// Sites are the modelled site ids; with a partition, ingest subscribes to those it owns.
	Sites []string
}

// Ingester consumes readings.
type Ingester struct {
	cfg    Config
	store  Store
	ledger Ledger
	opts   Options
	client mqtt.Client

	mu     sync.Mutex
	seen   map[string]*recent // meter key → recently stored sequence numbers
	logged map[string]bool    // rejection kinds already logged
	adm    *admission
	seed   maphash.Seed

	state connState // broker connection and unacknowledged messages (state.go)
}

// New prepares an ingester; Run connects it.
func New(cfg Config, st Store, l Ledger, opts Options) *Ingester {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// A config built in code may skip Default: the limits then take their defaults here.
	cfg.Limits.Default()
	return &Ingester{cfg: cfg, store: st, ledger: l, opts: opts, seen: map[string]*recent{}, logged: map[string]bool{},
		adm: newAdmission(), seed: maphash.MakeSeed()}
}

// Message is one MQTT message as ingest sees it. Ack, when set, acknowledges it to the broker.
type Message struct {
	Topic   string
	Payload []byte
	Ack     func()
}

// Batching bounds: a batch closes at maxBatch messages or batchWait after its first message,
// whichever comes first, so a quiet site still sees its readings within milliseconds.
const (
	maxBatch  = 1000
	batchWait = 20 * time.Millisecond
)

// Run subscribes and ingests until ctx ends.
func (in *Ingester) Run(ctx context.Context) error {
	o, err := in.cfg.MQTT.ClientOptions()
	if err != nil {
		return err
	}
	// Messages arrive in order through one handler, which only queues them: the ledger relies on
	// per-meter order, and a full queue holds up the broker's delivery instead of memory.
	o.SetOrderMatters(true)
	o.SetAutoAckDisabled(true)
	filters, drop := in.filters()
	queue := make(chan Message, 2*maxBatch)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		in.state.received(in.opts.Now())
		if !in.owns(m.Topic()) {
			// Another instance owns this site and has its own subscription.
			m.Ack()
			return
		}
		select {
		case queue <- Message{Topic: m.Topic(), Payload: m.Payload(), Ack: m.Ack}:
		case <-ctx.Done():
			// Not acknowledged: the broker delivers it again to the next session.
		}
	}
	// A resumed persistent session delivers its queued messages right after CONNACK, before
	// the subscriptions below are (re)made: without a default handler paho has no route for
	// them, they are never acknowledged and fill the broker's in-flight window, and nothing
	// more arrives. The default handler takes them like any other.
	o.SetDefaultPublishHandler(handler)
	o.SetOnConnectHandler(func(c mqtt.Client) {
		if len(drop) > 0 {
			// The persistent session may still hold subscriptions of an earlier partition.
			if t := c.Unsubscribe(drop...); t.WaitTimeout(in.cfg.MQTT.Timeout) && t.Error() != nil {
				in.opts.Logger.Warn("unsubscribing from other partitions' sites failed; their readings are dropped here", "err", t.Error())
			}
		}
		in.opts.Logger.Info("mqtt connected, subscribing", "topic", fmt.Sprint(filters))
		t := c.SubscribeMultiple(filters, handler)
		if t.WaitTimeout(in.cfg.MQTT.Timeout) && t.Error() != nil {
			in.opts.Logger.Error("subscribe failed", "err", t.Error())
		}
		in.subscribeStatus(c)
	})
	o.SetConnectionNotificationHandler(in.state.notify(in.opts.Logger, in.opts.Now))
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		in.opts.Logger.Warn("mqtt connection lost, reconnecting; the broker keeps the session", "err", err)
	})
	in.client = mqtt.NewClient(o)
	in.client.Connect()
	in.consume(ctx, queue)
	in.client.Disconnect(250)
	return nil
}

// consume handles the queue in batches until ctx ends, acknowledging each message after its
// batch is stored.
func (in *Ingester) consume(ctx context.Context, queue <-chan Message) {
	batch := make([]Message, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-queue:
			batch = append(batch, m)
		}
		timer := time.NewTimer(batchWait)
	fill:
		for len(batch) < maxBatch {
			select {
			case m := <-queue:
				batch = append(batch, m)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if err := in.HandleBatch(ctx, batch); err != nil {
			return
		}
		for _, m := range batch {
			if m.Ack != nil {
				m.Ack()
			}
		}
		in.state.acked(len(batch))
	}
}

// Handle runs one message through ingest; see HandleBatch.
func (in *Ingester) Handle(ctx context.Context, topic string, payload []byte) error {
	return in.HandleBatch(ctx, []Message{{Topic: topic, Payload: payload}})
}

// HandleBatch validates, de-duplicates, stores and books a batch of messages, in order. It
// returns an error only when ctx ended before everything was stored; every other problem is
// dead-lettered (malformed messages, readings the store refuses) or retried inside (a store that
// is down), so the caller may acknowledge the whole batch when it returns nil.
func (in *Ingester) HandleBatch(ctx context.Context, msgs []Message) error {
	m := in.opts.Metrics
	type accepted struct {
		r   collector.Reading
		msg Message
	}
	valid := make([]accepted, 0, len(msgs))
	inBatch := map[string]map[seqTime]bool{}
	for _, msg := range msgs {
		m.received.Inc()
		r, kind, err := in.safeValidate(msg.Topic, msg.Payload)
		if err != nil {
			site, _, _ := wire.ParseReadingTopic(msg.Topic)
			if site == "" {
				site = "_"
			}
			in.reject(kind, site, msg.Topic, msg.Payload, err)
			continue
		}
		k := key(r)
		if in.duplicate(r) || inBatch[k][in.idOf(r)] {
			m.duplicates.Inc()
			continue
		}
		if inBatch[k] == nil {
			inBatch[k] = map[seqTime]bool{}
		}
		inBatch[k][in.idOf(r)] = true
		valid = append(valid, accepted{r, msg})
	}
	if len(valid) == 0 {
		return nil
	}
	rs := make([]collector.Reading, len(valid))
	for i, a := range valid {
		rs[i] = a.r
	}
	err := in.retry(ctx, "store readings", func() error { return in.store.WriteReadings(ctx, rs) })
	if errors.Is(err, store.ErrRejected) {
		// One bad reading spoils the batch: store them one by one and dead-letter only the
		// ones the store refuses.
		kept := valid[:0]
		for _, a := range valid {
			err := in.retry(ctx, "store reading", func() error { return in.store.WriteReadings(ctx, []collector.Reading{a.r}) })
			switch {
			case errors.Is(err, store.ErrRejected):
				in.reject(KindRejected, a.r.Site, a.msg.Topic, a.msg.Payload, err)
			case err != nil:
				return err
			default:
				kept = append(kept, a)
			}
		}
		valid = kept
	} else if err != nil {
		return err
	}
	if in.opts.OnReadings != nil {
		stored := make([]collector.Reading, len(valid))
		for i, a := range valid {
			stored[i] = a.r
		}
		in.opts.OnReadings(stored)
	}
	now := in.opts.Now()
	changed := map[bucketKey]int{}
	var buckets []ledger.Bucket
	for _, a := range valid {
		m.stored.Inc()
		m.lag.Observe(now.Sub(a.r.Time).Seconds())
		in.remember(a.r)
		bs, err := in.addToLedger(ctx, a.r)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			kind := KindLedgerError
			if errors.Is(err, errPanic) {
				kind = KindPanic
			}
			in.reject(kind, a.r.Site, a.msg.Topic, a.msg.Payload, err)
			continue
		}
		// Each returned bucket is the bucket's full current value: a later one replaces an
		// earlier one of the same minute.
		for _, b := range bs {
			k := bucketKey{b.Site, b.Meter, b.Start.UnixNano()}
			if i, ok := changed[k]; ok {
				buckets[i] = b
				continue
			}
			changed[k] = len(buckets)
			buckets = append(buckets, b)
		}
	}
	if len(buckets) == 0 {
		return nil
	}
	if err := in.writeBuckets(ctx, buckets); err != nil {
		return err
	}
	if in.opts.OnBuckets != nil {
		in.opts.OnBuckets(buckets)
	}
	return nil
}

type bucketKey struct {
	site, meter string
	start       int64
}

// validate decodes one message and checks it against its topic and the site models.
func (in *Ingester) validate(topic string, payload []byte) (collector.Reading, string, error) {
	site, meter, err := wire.ParseReadingTopic(topic)
	if err != nil {
		return collector.Reading{}, KindTopic, err
	}
	if len(payload) > in.cfg.Limits.MaxPayloadBytes {
		return collector.Reading{}, KindTooLarge, fmt.Errorf("payload is %d bytes, more than max_payload_bytes %d", len(payload), in.cfg.Limits.MaxPayloadBytes)
	}
	r, err := wire.Decode(payload)
	if err != nil {
		return collector.Reading{}, KindDecode, err
	}
	if r.Site != site || r.Meter != meter {
		return collector.Reading{}, KindMismatch, fmt.Errorf("payload is for %s/%s", r.Site, r.Meter)
	}
	if in.opts.Known != nil && !in.opts.Known(site, meter) {
		return collector.Reading{}, KindUnknownMeter, fmt.Errorf("meter %s is not in the model of site %s", meter, site)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if kind, err := in.check(r); err != nil {
		return collector.Reading{}, kind, err
	}
	in.admit(r)
	return r, "", nil
}

// retry repeats op with backoff until it succeeds or ctx ends: a store that is down delays
// ingest (the broker holds the messages) but never loses a reading.
func (in *Ingester) retry(ctx context.Context, what string, op func() error) error {
	backoff := 200 * time.Millisecond
	for {
		err := op()
		if err == nil || errors.Is(err, store.ErrRejected) {
			// Data the store refuses for what it is will be refused again: no retry.
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.opts.Metrics.storeErrs.Inc()
		in.opts.Logger.Warn(what+" failed, retrying; message not acknowledged yet", "err", err, "took", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

type deadLetter struct {
	Kind     string    `json:"kind"`
	Error    string    `json:"error"`
	Topic    string    `json:"topic"`
	Payload  string    `json:"payload"`
	Received time.Time `json:"received"`
}

func (in *Ingester) reject(kind, site, topic string, payload []byte, err error) {
	in.opts.Metrics.rejected.WithLabelValues(kind).Inc()
	in.mu.Lock()
	first := !in.logged[kind]
	in.logged[kind] = true
	in.mu.Unlock()
	if first {
		in.opts.Logger.Warn("message rejected and dead-lettered; further ones of this kind are only counted",
			"kind", kind, "topic", topic, "err", err)
	}
	if in.client == nil || !in.client.IsConnectionOpen() {
		return
	}
	// The copy is cut at the payload limit, so a flood of huge messages cannot fill the broker.
	if len(payload) > in.cfg.Limits.MaxPayloadBytes {
		payload = payload[:in.cfg.Limits.MaxPayloadBytes]
	}
	body, _ := json.Marshal(deadLetter{Kind: kind, Error: err.Error(), Topic: topic, Payload: string(payload), Received: in.opts.Now().UTC()})
	// Not waited for: the dead-letter copy must never hold up the readings behind it.
	in.client.Publish(wire.DeadLetterTopic(site), 1, false, body)
}

// recent remembers the last readings stored for one meter by (sequence, time): the pair, not the
// sequence alone, so an edge whose counter restarted is never mistaken for a replay.
type recent struct {
	keys [256]seqTime
	next int
	set  map[seqTime]struct{}
}

type seqTime struct {
	seq  uint64
	nano int64
	edge uint64 // hash of the edge id
}

func (in *Ingester) idOf(r collector.Reading) seqTime {
	return seqTime{r.Seq, r.Time.UnixNano(), in.edgeHash(r.Edge)}
}

// key is a meter's key in the duplicate memory: one entry a meter, however many edges send.
func key(r collector.Reading) string { return r.Site + "/" + r.Meter }

func (in *Ingester) duplicate(r collector.Reading) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	rc := in.seen[key(r)]
	if rc == nil {
		return false
	}
	_, ok := rc.set[in.idOf(r)]
	return ok
}

func (in *Ingester) remember(r collector.Reading) {
	in.mu.Lock()
	defer in.mu.Unlock()
	rc := in.seen[key(r)]
	if rc == nil {
		rc = &recent{set: make(map[seqTime]struct{}, 256)}
		in.seen[key(r)] = rc
	}
	if len(rc.set) >= len(rc.keys) {
		delete(rc.set, rc.keys[rc.next])
	}
	rc.keys[rc.next] = in.idOf(r)
	rc.set[in.idOf(r)] = struct{}{}
	rc.next = (rc.next + 1) % len(rc.keys)
}

func value(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}
