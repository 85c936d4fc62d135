// Package modbus reads water meters over Modbus TCP, Modbus RTU on a serial line and RTU over
// TCP (serial device servers). A Source is one physical bus or gateway: one connection and one
// goroutine, requests strictly one after the other with the slave id set per request, so slaves
// sharing an RS-485 line or a gateway never collide.
//
// Points are planned once, at New: per slave and register table they are sorted and merged into
// as few reads as max_registers and max_gap allow (or one read per point for devices that want
// it). A poll reads the plan in order and returns one Reading per meter. A Modbus exception marks
// only the points of that read Bad; a timeout, a broken connection or a garbled answer marks them
// Bad too and closes the connection, which is opened afresh before the next read, so a late
// answer can never be taken for the next one. An unreachable device is dialled again at every
// poll (one attempt per poll) and never ends Run.
//
// Probe reads a register range once and prints every decoding side by side, to find a device's
// type and byte order.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	gridx "github.com/grid-x/modbus"
)

var _ collector.Source = (*Source)(nil)
var _ collector.Poller = (*Source)(nil)

// Options are a Source's collaborators.
type Options struct {
	Logger  *slog.Logger     // messages about this bus; the caller adds the "bus" attribute. Default: discard.
	Now     func() time.Time // stamps readings (TimeSourceCollector); default time.Now
	Metrics *Metrics         // may be nil
}

// BusState is a bus's health, for /healthz.
type BusState struct {
	Bus          string    `json:"bus"`
	Connected    bool      `json:"connected"`
	LastPoll     time.Time `json:"last_poll"`      // end of the last poll; zero before the first
	LastGoodPoll time.Time `json:"last_good_poll"` // end of the last poll in which every read got an answer
	LastError    string    `json:"last_error,omitempty"`
	// ConsecutiveFailures counts the polls in a row in which some read got no valid answer
	// (timeout, broken or refused connection, garbled response). Modbus exceptions are answers:
	// they mark their points Bad but do not count here.
	ConsecutiveFailures int    `json:"consecutive_failures"`
	Reconnects          uint64 `json:"reconnects"`
}

// Source polls the meters of one bus. Create it with New.
type Source struct {
	cfg    Config
	site   string
	log    *slog.Logger
	now    func() time.Time
	m      *busMetrics
	plan   []request
	meters []meterShape
	points int // over all meters

	mu              sync.Mutex // held for a whole poll: the bus is one conversation
	link            *link
	reused          bool     // the open connection predates the current poll
	reopen          bool     // the next open follows a forced close or a failed attempt
	connectFailures int      // connection attempts failed in a row
	lastReqErr      []string // per request, the error last logged, to log changes only

	stateMu sync.Mutex
	state   BusState
}

type meterShape struct {
	name   string
	points []collector.Point // names and units; copied into every reading
}

// New checks cfg, plans its reads and returns a Source that has not connected yet.
func New(cfg Config, site string, opts Options) (*Source, error) {
	cfg = cloneConfig(cfg)
	var problems []string
	cfg.check("", func(path, format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("modbus bus %q config: %s", cfg.Name, strings.Join(problems, "; "))
	}
	cfg.Default()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l, err := newLink(linkConfig{
		transport: cfg.Transport, controller: cfg.Controller,
		baudRate: cfg.BaudRate, dataBits: cfg.DataBits, parity: cfg.Parity, stopBits: cfg.StopBits,
		timeout: cfg.Timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("modbus bus %q: %w", cfg.Name, err)
	}
	s := &Source{
		cfg: cfg, site: site, log: opts.Logger, now: opts.Now, m: opts.Metrics.forBus(cfg.Name), link: l,
		state: BusState{Bus: cfg.Name},
	}
	var fields []field
	for i, m := range cfg.Meters {
		shape := meterShape{name: m.Meter, points: make([]collector.Point, len(m.Points))}
		for j, p := range m.Points {
			shape.points[j] = collector.Point{Name: p.Name, Unit: p.Unit, Quality: collector.Bad, Error: "not read"}
			t, _ := parseType(p.Type)
			o, _ := parseOrder(p.ByteOrder)
			tb, _ := parseTable(p.Register)
			fields = append(fields, field{
				meter: i, point: j, slave: m.SlaveID, table: tb,
				addr:  uint16(int(p.Address) - cfg.AddressBase),
				width: uint16(t.width()), typ: t, order: o, scale: p.Scale, offset: p.Offset,
			})
		}
		s.meters = append(s.meters, shape)
		s.points += len(shape.points)
	}
	s.plan = planRequests(fields, cfg.MaxRegisters, cfg.MaxGap, cfg.OnePerField)
	s.lastReqErr = make([]string, len(s.plan))
	return s, nil
}

func cloneConfig(c Config) Config {
	c.Meters = slices.Clone(c.Meters)
	for i := range c.Meters {
		c.Meters[i].Points = slices.Clone(c.Meters[i].Points)
	}
	return c
}

// Name is the bus name from the config.
func (s *Source) Name() string { return s.cfg.Name }

// Requests is the number of reads one poll sends when every read is answered.
func (s *Source) Requests() int { return len(s.plan) }

// Plan lists the reads of one poll, in the order they are sent.
func (s *Source) Plan() []Request {
	out := make([]Request, len(s.plan))
	for i, r := range s.plan {
		out[i] = Request{SlaveID: r.slave, Register: r.table.String(), Address: r.addr, Count: r.count, Points: len(r.fields)}
	}
	return out
}

// State is the bus's health as of the last poll.
func (s *Source) State() BusState {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.state
}

// Close closes the bus connection. A later Poll opens it again; Run closes it by itself.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLink(false)
	return nil
}

// Run polls every interval until ctx ends, handing each meter's Reading to emit. It returns nil
// on cancellation and never gives up on an unreachable device.
func (s *Source) Run(ctx context.Context, emit func(collector.Reading)) error {
	defer s.Close()
	collector.Schedule(ctx, s.cfg.Interval, s.cfg.Interval, s, emit, nil)
	return nil
}

// Poll reads every meter once and returns one Reading per meter, in config order. A read that
// fails marks its points Bad and the poll goes on; the error, when not nil, summarises the
// failed reads and comes with the readings.
func (s *Source) Poll(ctx context.Context) ([]collector.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	began := time.Now()
	// One backing array holds every point of the poll: the readings share it but never overlap,
	// which keeps a poll at three allocations of ours however many meters the bus has.
	rs := make([]collector.Reading, len(s.meters))
	all := make([]collector.Point, 0, s.points)
	for i, m := range s.meters {
		start := len(all)
		all = append(all, m.points...)
		rs[i] = collector.Reading{
			Site: s.site, Meter: m.name, TimeSource: collector.TimeSourceCollector,
			Points: all[start:len(all):len(all)],
		}
	}
	var (
		abort      error     // stops the rest of the poll: cancelled, or the bus cannot be reached
		cut        []bool    // meters with points left unread because ctx ended
		silent     [256]bool // slaves that timed out: their other reads this poll are skipped
		silentErr  [256]error
		sent       int
		failed     int // reads with no valid answer
		exceptions int
		firstErr   error
	)
	fail := func(i int, req *request, kind string, err error) {
		rerr := &RequestError{
			Kind: kind, SlaveID: req.slave, Register: req.table.String(), Address: req.addr, Count: req.count,
			AddressBase: s.cfg.AddressBase, Gaps: req.gaps, Err: err,
		}
		var code uint32
		var exc *ExceptionError
		if errors.As(err, &exc) {
			code = uint32(exc.Code)
		}
		msg := rerr.Error()
		stopped := ctx.Err() != nil && err == abort
		if stopped && cut == nil {
			cut = make([]bool, len(rs))
		}
		for _, f := range req.fields {
			p := &rs[f.meter].Points[f.point]
			p.Quality, p.Code, p.Error, p.Value = collector.Bad, code, msg, 0
			if stopped {
				cut[f.meter] = true
			}
		}
		if firstErr == nil {
			firstErr = rerr
		}
		if kind == KindException {
			exceptions++
		} else {
			failed++
		}
		// Transport failures are logged per bus (record); an exception is particular to one read
		// and usually a config mistake, so it is logged when it first appears or changes.
		if kind == KindException && msg != s.lastReqErr[i] {
			s.log.Warn("modbus exception, points marked bad", "err", msg)
			s.lastReqErr[i] = msg
		}
	}
	for i := range s.plan {
		req := &s.plan[i]
		if abort == nil && ctx.Err() != nil {
			abort = fmt.Errorf("poll cut short: %w", context.Cause(ctx))
		}
		if abort != nil {
			fail(i, req, KindIO, abort)
			continue
		}
		if silent[req.slave] {
			fail(i, req, KindTimeout, fmt.Errorf("skipped: slave %d timed out earlier in this poll: %w", req.slave, silentErr[req.slave]))
			continue
		}
		if err := s.openLink(ctx); err != nil {
			abort = err
			fail(i, req, KindIO, abort)
			continue
		}
		if sent > 0 && s.cfg.PauseBetweenRequests > 0 {
			if err := sleep(ctx, s.cfg.PauseBetweenRequests); err != nil {
				abort = fmt.Errorf("poll cut short: %w", err)
				fail(i, req, KindIO, abort)
				continue
			}
		}
		data, err := s.link.read(ctx, req.slave, req.table, req.addr, req.count)
		sent++
		if err != nil && s.reused && classify(err) == KindIO {
			// The device or a NAT closed the connection while it idled between polls. Reads are
			// idempotent, so try once more on a fresh connection before calling the read failed.
			s.log.Debug("idle connection was closed by the peer, reconnecting", "err", err)
			s.closeLink(true)
			if oerr := s.openLink(ctx); oerr != nil {
				abort = oerr
				fail(i, req, KindIO, abort)
				continue
			}
			data, err = s.link.read(ctx, req.slave, req.table, req.addr, req.count)
			sent++
		}
		s.reused = false
		// A meter's reading is stamped when the last read carrying its points returned.
		done := s.now()
		for _, f := range req.fields {
			rs[f.meter].Time = done
		}
		if err == nil {
			s.fill(rs, req, data)
			if s.lastReqErr[i] != "" {
				s.log.Info("modbus exception cleared", "err", s.lastReqErr[i])
				s.lastReqErr[i] = ""
			}
			continue
		}
		kind := classify(err)
		s.m.failed(kind)
		var mbErr *gridx.Error
		if errors.As(err, &mbErr) {
			err = &ExceptionError{SlaveID: req.slave, Function: byte(req.table), Code: mbErr.ExceptionCode}
		}
		fail(i, req, kind, err)
		if kind == KindException {
			continue
		}
		// Never read on from a stream that may still carry a late or partial answer.
		s.log.Debug("read failed, closing the connection", "err", err, "kind", kind)
		s.closeLink(true)
		if kind == KindTimeout {
			silent[req.slave], silentErr[req.slave] = true, err
		}
	}
	if s.cfg.CloseAfterPoll {
		s.closeLink(false)
	}
	s.reused = s.link.open
	end := s.now()
	for i := range rs {
		if rs[i].Time.IsZero() {
			rs[i].Time = end
		}
	}
	if cut != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller is shutting down, not the device failing: a meter cut short is left out
		// rather than published as bad. (A poll that overran its deadline still reports it.)
		kept := rs[:0]
		for i, r := range rs {
			if !cut[i] {
				kept = append(kept, r)
			}
		}
		s.m.poll(time.Since(began).Seconds(), sent)
		return kept, fmt.Errorf("poll bus %s: %w", s.cfg.Name, context.Cause(ctx))
	}
	s.m.poll(time.Since(began).Seconds(), sent)
	s.record(end, failed, firstErr)
	if firstErr == nil {
		return rs, nil
	}
	return rs, fmt.Errorf("poll bus %s: %d of %d reads failed (%d exceptions), first: %w",
		s.cfg.Name, failed+exceptions, len(s.plan), exceptions, firstErr)
}

// fill decodes a read's data into its points.
func (s *Source) fill(rs []collector.Reading, req *request, data []byte) {
	for _, f := range req.fields {
		off := int(f.addr - req.addr)
		var raw uint64
		if req.table.bits() {
			raw = uint64(data[off/8]>>(off%8)) & 1
		} else {
			raw = rawBits(data[2*off:], int(f.width), f.order)
		}
		v := scaled(f.typ, raw, f.scale, f.offset)
		p := &rs[f.meter].Points[f.point]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// Some meters report NaN for "no valid measurement"; a non-finite value cannot travel.
			p.Quality, p.Error = collector.Bad, fmt.Sprintf("device value %s is not a finite number", formatBits(f.typ, raw))
			continue
		}
		p.Value, p.Quality, p.Code, p.Error = v, collector.Good, 0, ""
	}
}

// openLink connects when the link is closed, waits pause_after_connect, and counts the
// connection as a reconnect when it replaces one closed by an error. Every poll that finds the
// link closed dials once, whatever happened before: the poll interval is the pace of connection
// attempts, so a device that answers again is read at the very next poll. (An earlier version
// let an exponential backoff of up to a minute skip polls, and a gateway that had been down for
// 30 s stayed unread for many seconds after it was back.) A failed attempt ends the poll, so
// an unreachable device costs one connect timeout per poll, never one per request.
func (s *Source) openLink(ctx context.Context) error {
	if s.link.open {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := s.link.connect(cctx)
	cancel()
	if err != nil {
		s.m.failed(KindIO)
		s.connectFailures++
		s.reopen = true
		return fmt.Errorf("connect %s (attempt %d): %w", s.cfg.Controller, s.connectFailures, err)
	}
	s.connectFailures = 0
	if s.reopen {
		s.reopen = false
		s.m.reconnected()
		s.stateMu.Lock()
		s.state.Reconnects++
		s.stateMu.Unlock()
	}
	s.setConnected(true)
	if s.cfg.PauseAfterConnect > 0 {
		if err := sleep(ctx, s.cfg.PauseAfterConnect); err != nil {
			return fmt.Errorf("pause after connecting to %s: %w", s.cfg.Controller, err)
		}
	}
	return nil
}

// closeLink closes the connection; forced says an error made it necessary, so the next open is
// a reconnect.
func (s *Source) closeLink(forced bool) {
	if !s.link.open {
		return
	}
	s.link.close()
	s.reused = false
	s.reopen = s.reopen || forced
	s.setConnected(false)
}

func (s *Source) setConnected(up bool) {
	s.m.setConnected(up)
	s.stateMu.Lock()
	s.state.Connected = up
	s.stateMu.Unlock()
}

// record updates the bus state after a poll and logs when the bus starts or stops failing.
func (s *Source) record(end time.Time, failed int, firstErr error) {
	s.stateMu.Lock()
	prev := s.state.ConsecutiveFailures
	s.state.LastPoll = end
	s.state.LastError = ""
	if firstErr != nil {
		s.state.LastError = firstErr.Error()
	}
	if failed == 0 {
		s.state.LastGoodPoll = end
		s.state.ConsecutiveFailures = 0
	} else {
		s.state.ConsecutiveFailures++
	}
	s.stateMu.Unlock()
	switch {
	case failed > 0 && prev == 0:
		s.log.Warn("bus poll failed, points marked bad, reconnecting on the next read", "err", firstErr)
	case failed > 0:
		s.log.Debug("bus poll failed again", "failures", prev+1, "err", firstErr)
	case prev > 0:
		s.log.Info("bus recovered", "failed_polls", prev)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
