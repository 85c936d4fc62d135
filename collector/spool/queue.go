// Package spool is the edge's store-and-forward queue: a bounded, disk-backed FIFO between the
// pollers and the MQTT publisher. Every reading is stamped with its meter's next sequence number
// and written to disk before Append returns, so a broker outage or a restart of the edge (kill -9
// included) loses nothing; the publisher peeks the oldest readings, sends them and acknowledges
// them, at least once and in append order, hence in order per meter.
//
// # On disk
//
// A spool directory holds segment files named by the ID of their first record
// (0000000000000001.seg, ...), each a run of records framed by length and CRC-32C around the
// collector/wire payload, so the bytes on disk are the documented JSON payload. Beside them:
//
//	ack         the last acknowledged ID, rewritten in place every fsync interval and on Close
//	state.json  every meter's last sequence number, replaced atomically whenever a segment is sealed
//	lock        flock'd while a Queue has the directory open
//
// Appends go to the last segment; when it reaches segment_bytes a new one is started. A segment is
// deleted once everything in it is acknowledged, or, when max_bytes would be exceeded, even before
// that: the oldest readings are then dropped, counted in aqualoop_spool_dropped_total{reason="full"}
// and logged at error level with the time range lost.
//
// After a crash Open truncates a torn record at the end of a segment, takes the sequence numbers
// from state.json and the records written after it, and resumes at the saved ack position, which
// may lag by one fsync interval: some delivered readings are then sent again, and the platform
// drops them as duplicates by (meter, seq).
package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/wire"
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("spool closed")
	// ErrTooLarge is returned by Append for a reading that does not fit in one segment.
	ErrTooLarge = errors.New("reading larger than a spool segment")
)

// Entry is a spooled reading and its position in the spool. The queue keeps the entries it
// returned until they are acknowledged: treat their Points as read-only.
type Entry struct {
	// ID increases by one with every Append, across restarts; pass the last one delivered to Ack.
	ID      uint64
	Reading collector.Reading
}

// Raw is a spooled reading as stored: its v1 wire payload, unchanged since Append encoded it, and
// the header read from it.
type Raw struct {
	ID      uint64
	Header  wire.Header
	Payload []byte
}

// segment is one segment file. Its fields change under Queue.mu.
type segment struct {
	first     uint64 // ID of its first record, also its name
	count     uint64 // records in it
	size      int64  // bytes of whole records; a reader never reads beyond
	lastOff   int64  // offset of its last record
	firstTime time.Time
	lastTime  time.Time
	path      string
	deleted   bool
}

// end is the ID after its last record.
func (s *segment) end() uint64 { return s.first + s.count }

// Queue is a spool directory opened by one process. Append is safe for any number of goroutines;
// Peek and Ack are for one consumer.
type Queue struct {
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	fsync func(*os.File) error

	lock    *os.File
	ackFile *os.File

	// mu guards the segments and the write side. It is never held while waiting for the
	// consumer, so pollers are never held up by the publisher.
	mu       sync.Mutex
	segs     []*segment // oldest first; the last one is written to
	w        *os.File   // the last segment, opened for appending
	rotate   bool       // a write failed: start a new segment before the next one
	nextID   uint64
	ack      uint64 // every ID up to here is delivered or dropped
	unacked  int
	bytes    int64
	seqs     map[string]uint64
	covered  uint64 // state.json holds every sequence number through this ID
	closed   bool
	wbuf     []byte
	ackSaved uint64 // guarded by ackMu, not mu

	synced atomic.Uint64 // every record through this ID has been fsynced
	syncMu sync.Mutex    // one data fsync at a time; the waiting appenders share the next one
	ackMu  sync.Mutex

	// rmu guards rd; it is taken before mu, never after.
	rmu sync.Mutex
	rd  reader

	wake        chan struct{}
	done        chan struct{}
	flusherDone chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// Open opens or creates the spool in cfg.Dir, recovering whatever a crash left. Fields of cfg left
// at zero get their defaults. A nil logger discards; a nil m records nothing.
func Open(cfg Config, logger *slog.Logger, m *Metrics) (*Queue, error) {
	cfg.Default()
	if ps := cfg.problems(); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.key + ": " + p.msg
		}
		return nil, fmt.Errorf("spool config: %s", strings.Join(msgs, "; "))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(cfg.Dir, lockName))
	if err != nil {
		return nil, err
	}
	q := &Queue{
		cfg: cfg, log: logger, m: m, fsync: timedSync(m), lock: lock,
		wake: make(chan struct{}, 1), done: make(chan struct{}), flusherDone: make(chan struct{}),
	}
	if err := q.recover(); err != nil {
		q.release()
		return nil, err
	}
	go q.flusher()
	return q, nil
}

// release closes the files of a Queue that failed to open.
func (q *Queue) release() {
	if q.w != nil {
		_ = q.w.Close()
	}
	if q.ackFile != nil {
		_ = q.ackFile.Close()
	}
	_ = q.lock.Close()
}

// unackedIn is the number of records of s after ack.
func unackedIn(s *segment, ack uint64) int {
	if s.end() <= ack+1 {
		return 0
	}
	return int(s.end() - max(s.first, ack+1))
}

// createSegment creates the segment file for first, empty.
func (q *Queue) createSegment(first uint64) (*os.File, *segment, error) {
	path := filepath.Join(q.cfg.Dir, segmentName(first))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("create spool segment: %w", err)
	}
	if q.cfg.Fsync != FsyncNever {
		if err := syncDir(q.cfg.Dir, q.fsync); err != nil {
			_ = f.Close()
			return nil, nil, err
		}
	}
	return f, &segment{first: first, path: path}, nil
}

// LastSeq returns the last sequence number stamped for meter (0 if none): what a delivery check
// compares the received numbers with.
func (q *Queue) LastSeq(meter string) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seqs[meter]
}

// Append stamps r.Seq with the meter's next sequence number and stores r. It returns once the
// reading is in the kernel (with fsync always: on disk), never waiting for the consumer. When the
// spool is full the oldest segment is dropped to make room. On an error the reading is not stored
// and its sequence number is not used, except for an fsync error with fsync always: the reading is
// then stored, but its durability is unknown.
func (q *Queue) Append(r collector.Reading) (collector.Reading, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return r, ErrClosed
	}
	r.Seq = q.seqs[r.Meter] + 1
	payload, err := wire.Encode(r)
	if err != nil {
		q.mu.Unlock()
		return r, fmt.Errorf("encode reading of %s: %w", r.Meter, err)
	}
	id, err := q.writeLocked(payload, r.Time)
	if err != nil {
		q.mu.Unlock()
		return r, err
	}
	q.seqs[r.Meter] = r.Seq
	q.mu.Unlock()
	q.m.appendedOne()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if q.cfg.Fsync == FsyncAlways {
		if err := q.syncThrough(id); err != nil {
			return r, err
		}
	}
	return r, nil
}

// writeLocked frames payload as the next record, makes room for it and writes it.
func (q *Queue) writeLocked(payload []byte, t time.Time) (uint64, error) {
	n := int64(headerSize + len(payload))
	if n > q.cfg.SegmentBytes {
		return 0, fmt.Errorf("spool %d bytes: %w (%d)", n, ErrTooLarge, q.cfg.SegmentBytes)
	}
	active := q.segs[len(q.segs)-1]
	if q.rotate || (active.count > 0 && active.size+n > q.cfg.SegmentBytes) {
		if err := q.rotateLocked(); err != nil {
			return 0, err
		}
		active = q.segs[len(q.segs)-1]
	}
	if q.bytes+n > q.cfg.MaxBytes {
		if err := q.dropLocked(n); err != nil {
			return 0, err
		}
	}
	q.wbuf = appendRecord(q.wbuf[:0], payload)
	if _, err := q.w.Write(q.wbuf); err != nil {
		// A partial write would sit between this record and the next; cut it off, and if even
		// that fails, leave it behind a new segment, where Open will find and drop it.
		if terr := q.w.Truncate(active.size); terr != nil {
			q.rotate = true
		}
		return 0, fmt.Errorf("write spool segment %s: %w", active.path, err)
	}
	id := q.nextID
	q.nextID++
	if active.count == 0 {
		active.firstTime = t
	}
	active.lastTime = t
	active.lastOff = active.size
	active.size += n
	active.count++
	q.bytes += n
	q.unacked++
	q.m.setLevels(q.unacked, q.bytes)
	return id, nil
}

// rotateLocked seals the last segment and starts a new one.
func (q *Queue) rotateLocked() error {
	old := q.segs[len(q.segs)-1]
	f, s, err := q.createSegment(q.nextID)
	if err != nil {
		return err
	}
	if q.cfg.Fsync != FsyncNever {
		if err := q.fsync(q.w); err != nil {
			q.log.Error("cannot sync spool segment", "segment", old.path, "err", err)
		} else {
			q.advanceSynced(old.end() - 1)
		}
	}
	_ = q.w.Close()
	q.w = f
	q.rotate = false
	q.segs = append(q.segs, s)
	if err := q.saveStateLocked(); err != nil {
		// Not fatal for this reading; segments are kept until the state can be saved.
		q.log.Error("cannot save spool state, acknowledged segments are kept until it can", "err", err)
	}
	return nil
}

// dropLocked deletes the oldest segments until a record of n bytes fits, and reports what was
// lost. The last segment is never dropped: max_bytes holds at least two.
func (q *Queue) dropLocked(n int64) error {
	dropped, segs := 0, 0
	var from, to time.Time
	for q.bytes+n > q.cfg.MaxBytes && len(q.segs) > 1 {
		s := q.segs[0]
		lost := unackedIn(s, q.ack)
		if lost > 0 {
			if dropped == 0 {
				from = s.firstTime
				if q.ack >= s.first {
					from = q.timeOf(s, q.ack+1)
				}
			}
			to = s.lastTime
		}
		if err := q.removeFrontLocked(); err != nil {
			return err
		}
		dropped += lost
		segs++
		q.unacked -= lost
		q.ack = max(q.ack, s.end()-1)
	}
	if dropped > 0 {
		q.m.droppedN(ReasonFull, dropped)
		q.log.Error("spool full, oldest readings dropped",
			"dropped", dropped, "from", from, "to", to, "segments", segs, "max_bytes", q.cfg.MaxBytes)
	}
	q.m.setLevels(q.unacked, q.bytes)
	return nil
}

// timeOf is the time of the reading with the given ID in s, read from disk; it is only needed
// when a partly delivered segment is dropped. On failure it falls back to the segment's first.
func (q *Queue) timeOf(s *segment, id uint64) time.Time {
	data, err := readFileInto(nil, s.path)
	if err != nil {
		return s.firstTime
	}
	off, cur := 0, s.first
	for off < len(data) {
		payload, size, err := parseRecord(data[off:])
		if err != nil {
			break
		}
		if cur == id {
			if r, err := wire.Decode(payload); err == nil {
				return r.Time
			}
			break
		}
		off += size
		cur++
	}
	return s.firstTime
}

// removeFrontLocked deletes the oldest segment, first making sure state.json accounts for the
// sequence numbers in it.
func (q *Queue) removeFrontLocked() error {
	s := q.segs[0]
	if s.end() > q.covered+1 {
		if err := q.saveStateLocked(); err != nil {
			return err
		}
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete spool segment: %w", err)
	}
	s.deleted = true
	q.segs[0] = nil
	q.segs = q.segs[1:]
	q.bytes -= s.size
	return nil
}

// deleteAckedLocked deletes the sealed segments that are wholly acknowledged.
func (q *Queue) deleteAckedLocked() error {
	for len(q.segs) > 1 && q.segs[0].end() <= q.ack+1 {
		if err := q.removeFrontLocked(); err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) saveStateLocked() error {
	through := q.nextID - 1
	if err := writeState(q.cfg.Dir, state{Version: stateVersion, Through: through, Seq: q.seqs}, q.fsync); err != nil {
		return err
	}
	q.covered = through
	return nil
}

func (q *Queue) advanceSynced(id uint64) {
	for {
		cur := q.synced.Load()
		if cur >= id || q.synced.CompareAndSwap(cur, id) {
			return
		}
	}
}

// syncThrough returns once every record through id is on disk. Callers that arrive while an
// fsync runs share the next one (group commit), so concurrent pollers do not queue up one fsync
// each.
func (q *Queue) syncThrough(id uint64) error {
	if q.synced.Load() >= id {
		return nil
	}
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	if q.synced.Load() >= id {
		return nil
	}
	q.mu.Lock()
	f, target := q.w, q.nextID-1
	q.mu.Unlock()
	if err := q.fsync(f); err != nil {
		// A rotation or Close in between has synced and closed f.
		if errors.Is(err, os.ErrClosed) && q.synced.Load() >= id {
			return nil
		}
		return fmt.Errorf("sync spool segment: %w", err)
	}
	q.advanceSynced(target)
	return nil
}

// saveAck writes the ack position if it moved.
func (q *Queue) saveAck(sync bool) error {
	q.ackMu.Lock()
	defer q.ackMu.Unlock()
	q.mu.Lock()
	ack := q.ack
	q.mu.Unlock()
	if ack == q.ackSaved {
		return nil
	}
	if _, err := q.ackFile.WriteAt(encodeAck(ack), 0); err != nil {
		return fmt.Errorf("save spool ack position: %w", err)
	}
	if sync {
		if err := q.fsync(q.ackFile); err != nil {
			return fmt.Errorf("sync spool ack position: %w", err)
		}
	}
	q.ackSaved = ack
	return nil
}

// flusher runs every fsync interval: it syncs the data (policy interval), saves the ack position
// and refreshes the oldest-age gauge.
func (q *Queue) flusher() {
	defer close(q.flusherDone)
	t := time.NewTicker(q.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-t.C:
		}
		if q.cfg.Fsync == FsyncInterval {
			q.mu.Lock()
			target := q.nextID - 1
			q.mu.Unlock()
			if err := q.syncThrough(target); err != nil && !errors.Is(err, os.ErrClosed) {
				q.log.Error("cannot sync spool to disk", "err", err)
			}
		}
		if err := q.saveAck(q.cfg.Fsync != FsyncNever); err != nil {
			q.log.Error("cannot save spool ack position", "err", err)
		}
		if q.m != nil {
			q.m.setOldestAge(q.OldestAge(time.Now()).Seconds())
		}
	}
}

// Ack marks everything up to and including id as delivered and deletes the segments that are
// then wholly delivered. The position reaches the disk within one fsync interval (and on Close);
// after a crash the readings delivered since are sent again.
func (q *Queue) Ack(id uint64) error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if id >= q.nextID {
		next := q.nextID
		q.mu.Unlock()
		return fmt.Errorf("ack %d: nothing was appended beyond %d", id, next-1)
	}
	var err error
	if id > q.ack {
		for _, s := range q.segs {
			if s.first > id {
				break
			}
			q.unacked -= unackedIn(s, q.ack) - unackedIn(s, id)
		}
		q.ack = id
		err = q.deleteAckedLocked()
		q.m.setLevels(q.unacked, q.bytes)
	}
	q.mu.Unlock()
	q.rd.trim(id + 1)
	return err
}

// Len is the number of readings not yet acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unacked
}

// Bytes is the disk space used by the segment files.
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Close syncs everything to disk, saves the ack position and the sequence numbers, and releases
// the directory. Appends, Peeks and Acks after it return ErrClosed; a waiting Peek returns.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { q.closeErr = q.close() })
	return q.closeErr
}

func (q *Queue) close() error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	close(q.done)
	<-q.flusherDone

	q.rmu.Lock()
	if q.rd.f != nil {
		_ = q.rd.f.Close()
		q.rd.f = nil
	}
	q.rd.pending = nil
	q.rmu.Unlock()

	var errs []error
	q.mu.Lock()
	if err := q.fsync(q.w); err != nil {
		errs = append(errs, fmt.Errorf("sync spool segment: %w", err))
	} else {
		q.advanceSynced(q.nextID - 1)
	}
	if err := q.saveStateLocked(); err != nil {
		errs = append(errs, err)
	}
	if err := q.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close spool segment: %w", err))
	}
	q.mu.Unlock()
	if err := q.saveAck(true); err != nil {
		errs = append(errs, err)
	}
	if err := q.ackFile.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close spool ack file: %w", err))
	}
	if err := q.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release spool lock: %w", err))
	}
	return errors.Join(errs...)
}
