package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/aqualoop/aqualoop/collector/wire"
)

// reader is the consumer's cursor. It reads ahead of the acknowledged position and keeps what it
// decoded in pending until it is acknowledged, so a Peek repeated without an Ack costs nothing.
type reader struct {
	seg     *segment
	f       *os.File
	off     int64  // offset of the record with ID id
	id      uint64 // next ID to read
	buf     []byte // file bytes from bufOff
	bufOff  int64
	pending []Raw
}

// readChunk is how much the reader reads at once; a record larger than that is read whole.
const readChunk = 64 << 10

// Peek waits until at least one unacknowledged reading exists, or ctx ends, and returns up to max
// of the oldest, in append order, without removing them: a second Peek without an Ack returns the
// same ones. Readings dropped to make room since the last Peek are not returned; those a Peek
// returned just before their segment was dropped are counted as dropped and may still be
// delivered.
func (q *Queue) Peek(ctx context.Context, max int) ([]Entry, error) {
	raw, err := q.PeekRaw(ctx, max)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(raw))
	for _, e := range raw {
		r, err := wire.Decode(e.Payload)
		if err != nil {
			// Only a payload Encode did not write gets here: its checksum held and its header
			// read, its points do not.
			q.log.Error("unreadable spooled reading skipped", "id", e.ID, "err", err)
			continue
		}
		out = append(out, Entry{ID: e.ID, Reading: r})
	}
	return out, nil
}

// PeekRaw is Peek without decoding: each entry carries the payload exactly as Append encoded it,
// with the header a publisher needs, so a forwarder can send the spooled bytes as they are.
func (q *Queue) PeekRaw(ctx context.Context, max int) ([]Raw, error) {
	want := 1
	if max > 1 {
		want = max
	}
	for {
		q.rmu.Lock()
		err := q.fillLocked(want)
		if err == nil && len(q.rd.pending) > 0 {
			out := slices.Clone(q.rd.pending[:min(want, len(q.rd.pending))])
			q.rmu.Unlock()
			return out, nil
		}
		q.rmu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.done:
			return nil, ErrClosed
		case <-q.wake:
		}
	}
}

// fillLocked reads records into pending until it holds want or the reader caught up with the
// writer. rmu is held.
func (q *Queue) fillLocked(want int) error {
	rd := &q.rd
	for len(rd.pending) < want {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		head := q.ack + 1
		rd.trim(head)
		if rd.seg == nil || rd.seg.deleted || rd.id < head && rd.seg.end() <= head {
			q.moveReader(q.segmentFor(head))
		}
		for rd.id >= rd.seg.end() && rd.seg != q.segs[len(q.segs)-1] {
			q.moveReader(q.segmentFor(rd.seg.end()))
		}
		seg, limit, end := rd.seg, rd.seg.size, rd.seg.end()
		q.mu.Unlock()
		if rd.id >= end {
			return nil
		}
		from := rd.id
		if err := q.readRecords(seg, want, head, limit, end); err != nil {
			return err
		}
		if rd.id == from {
			return nil // no progress: do not spin
		}
	}
	return nil
}

// segmentFor is the first segment holding id or anything after it; the last one if none does.
func (q *Queue) segmentFor(id uint64) *segment {
	for _, s := range q.segs {
		if s.end() > id {
			return s
		}
	}
	return q.segs[len(q.segs)-1]
}

// moveReader points the reader at the start of s.
func (q *Queue) moveReader(s *segment) {
	rd := &q.rd
	if rd.seg == s && !s.deleted && rd.id <= s.first {
		return
	}
	if rd.f != nil {
		_ = rd.f.Close()
		rd.f = nil
	}
	rd.seg, rd.off, rd.id = s, 0, s.first
	rd.buf, rd.bufOff = rd.buf[:0], 0
}

// trim forgets the pending entries before head.
func (rd *reader) trim(head uint64) {
	i := 0
	for i < len(rd.pending) && rd.pending[i].ID < head {
		i++
	}
	if i > 0 {
		n := copy(rd.pending, rd.pending[i:])
		clear(rd.pending[n:])
		rd.pending = rd.pending[:n]
	}
}

// readRecords decodes the records of seg from the reader's offset up to limit (the bytes written
// whole when mu was last held), skipping those before head, until pending holds want.
func (q *Queue) readRecords(seg *segment, want int, head uint64, limit int64, end uint64) error {
	rd := &q.rd
	if rd.f == nil {
		f, err := os.Open(seg.path)
		if err != nil {
			return fmt.Errorf("open spool segment: %w", err)
		}
		rd.f = f
	}
	for len(rd.pending) < want && rd.off < limit {
		data, err := rd.window(headerSize, limit)
		if err != nil {
			return err
		}
		payload, size, perr := parseRecord(data)
		if errors.Is(perr, errShort) && size > 0 && rd.off+int64(size) <= limit {
			if data, err = rd.window(size, limit); err != nil {
				return err
			}
			payload, size, perr = parseRecord(data)
		}
		if perr != nil {
			// These bytes were checked by Open or written whole by this process: the disk
			// changed under us. Give up the rest of the segment rather than guess at framing.
			lost := int(end - max(rd.id, head))
			q.m.droppedN(ReasonCorrupt, lost)
			q.log.Error("corrupt spool record, rest of the segment skipped",
				"segment", seg.path, "offset", rd.off, "dropped", lost, "err", perr)
			rd.off, rd.id = limit, end
			rd.buf = rd.buf[:0]
			return nil
		}
		if rd.id >= head {
			h, err := wire.DecodeHeader(payload)
			if err != nil {
				q.m.droppedN(ReasonCorrupt, 1)
				q.log.Error("unreadable spooled reading skipped", "segment", seg.path, "id", rd.id, "err", err)
			} else {
				// The read buffer is reused: the payload gets its own copy, which is then
				// published as it is.
				rd.pending = append(rd.pending, Raw{ID: rd.id, Header: h, Payload: bytes.Clone(payload)})
			}
		}
		rd.off += int64(size)
		rd.id++
	}
	return nil
}

// window returns the bytes from the reader's offset that are buffered, at least need of them
// unless limit comes first, reading from the file when the buffer has fewer.
func (rd *reader) window(need int, limit int64) ([]byte, error) {
	start := rd.off - rd.bufOff
	if start >= 0 && start+int64(need) <= int64(len(rd.buf)) {
		return rd.buf[start:], nil
	}
	n := min(int64(max(need, readChunk)), limit-rd.off)
	rd.buf = slices.Grow(rd.buf[:0], int(n))[:n]
	if _, err := rd.f.ReadAt(rd.buf, rd.off); err != nil {
		rd.buf = rd.buf[:0]
		return nil, fmt.Errorf("read spool segment: %w", err)
	}
	rd.bufOff = rd.off
	return rd.buf, nil
}

// OldestAge is how old, by its timestamp, the oldest unacknowledged reading is at now; 0 when
// there is none or its time is after now.
func (q *Queue) OldestAge(now time.Time) time.Duration {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if err := q.fillLocked(1); err != nil || len(q.rd.pending) == 0 {
		return 0
	}
	return max(now.Sub(q.rd.pending[0].Header.Time), 0)
}
