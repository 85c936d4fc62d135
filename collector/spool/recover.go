package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/wire"
)

// recover rebuilds the in-memory state from the directory.
func (q *Queue) recover() error {
	dir := q.cfg.Dir
	st, err := readState(dir)
	if err != nil {
		return err
	}
	q.seqs = st.Seq
	ack, err := q.readAck()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list spool dir: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			// A state file being replaced when the process died; the old one is still in place.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		if id, ok := parseSegmentName(name); ok && e.Type().IsRegular() {
			firsts = append(firsts, id)
		}
	}
	slices.Sort(firsts)

	var buf []byte
	var prevEnd uint64
	for i, first := range firsts {
		path := filepath.Join(dir, segmentName(first))
		buf, err = readFileInto(buf, path)
		if err != nil {
			return fmt.Errorf("read spool segment: %w", err)
		}
		s := q.scan(buf, first, path, st.Through)
		if first < prevEnd {
			return fmt.Errorf("spool segment %s overlaps the one before it (ending at ID %d)", path, prevEnd-1)
		}
		if lost := int64(len(buf)) - s.size; lost > 0 {
			if err := os.Truncate(path, s.size); err != nil {
				return fmt.Errorf("truncate damaged spool segment: %w", err)
			}
			if i == len(firsts)-1 {
				q.log.Warn("torn write at the end of the spool truncated",
					"segment", path, "bytes", lost)
			} else {
				q.log.Error("damaged spool segment truncated, the readings after the damage are lost",
					"segment", path, "bytes", lost, "kept", s.count)
			}
		}
		if s.count == 0 && i < len(firsts)-1 {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("delete empty spool segment: %w", err)
			}
			continue
		}
		prevEnd = s.end()
		q.segs = append(q.segs, s)
	}

	// IDs never go back, even when every segment is gone or a torn tail gave back the last ID.
	next := max(st.Through+1, ack+1)
	if n := len(q.segs); n > 0 {
		next = max(next, q.segs[n-1].end())
	}
	q.nextID = next
	if n := len(q.segs); n == 0 || q.segs[n-1].end() != next {
		// The last segment would not continue at next: start a fresh one.
		if n > 0 && q.segs[n-1].count == 0 {
			if err := os.Remove(q.segs[n-1].path); err != nil {
				return fmt.Errorf("delete empty spool segment: %w", err)
			}
			q.segs = q.segs[:n-1]
		}
		f, s, err := q.createSegment(next)
		if err != nil {
			return err
		}
		_ = f.Close()
		q.segs = append(q.segs, s)
	}
	active := q.segs[len(q.segs)-1]
	q.w, err = os.OpenFile(active.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open spool segment: %w", err)
	}
	// What a killed process wrote is in the page cache; make it as durable as what is appended next.
	if q.cfg.Fsync != FsyncNever {
		if err := q.fsync(q.w); err != nil {
			return fmt.Errorf("sync spool segment: %w", err)
		}
	}
	q.synced.Store(next - 1)

	if first := q.segs[0].first; first > 0 && ack < first-1 {
		ack = first - 1
	}
	q.ack = min(ack, next-1)
	for _, s := range q.segs {
		q.bytes += s.size
		q.unacked += unackedIn(s, q.ack)
	}
	if err := q.saveStateLocked(); err != nil {
		return err
	}
	if err := q.deleteAckedLocked(); err != nil {
		return err
	}
	q.ackFile, err = os.OpenFile(filepath.Join(dir, ackName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open spool ack file: %w", err)
	}
	q.ackSaved = ^uint64(0) // unknown: written at the first save
	if err := q.saveAck(q.cfg.Fsync != FsyncNever); err != nil {
		return err
	}
	q.rd.id = q.ack + 1
	q.m.replayedN(q.unacked)
	q.m.setLevels(q.unacked, q.bytes)
	if q.unacked > 0 {
		q.log.Info("spool opened with readings to send", "readings", q.unacked, "bytes", q.bytes)
	}
	if q.m != nil {
		q.m.setOldestAge(q.OldestAge(time.Now()).Seconds())
	}
	return nil
}

// readAck returns the saved ack position, 0 when there is none or it cannot be trusted.
func (q *Queue) readAck() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(q.cfg.Dir, ackName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read spool ack position: %w", err)
	}
	if len(b) == 0 {
		return 0, nil
	}
	ack, err := decodeAck(b)
	if err != nil {
		q.log.Warn("spool ack position unreadable, every spooled reading will be sent again", "err", err)
		return 0, nil
	}
	return ack, nil
}

// scan walks the records of a segment read whole into data. It stops at the first record that is
// incomplete or fails its checksum; the segment's size says where. It decodes the first and last
// records for their times and those after through for their meters' sequence numbers.
func (q *Queue) scan(data []byte, first uint64, path string, through uint64) *segment {
	s := &segment{first: first, path: path}
	var off int
	bad := 0
	for off < len(data) {
		payload, size, err := parseRecord(data[off:])
		if err != nil {
			break
		}
		id := first + s.count
		if id > through || s.count == 0 {
			r, err := wire.Decode(payload)
			switch {
			case err != nil:
				bad++
			default:
				if s.count == 0 {
					s.firstTime = r.Time
				}
				if r.Seq > q.seqs[r.Meter] {
					q.seqs[r.Meter] = r.Seq
				}
			}
		}
		s.lastOff = int64(off)
		s.count++
		off += size
	}
	s.size = int64(off)
	if s.count > 0 {
		if r, err := decodeAt(data, s.lastOff); err == nil {
			s.lastTime = r.Time
		}
	}
	if bad > 0 {
		// The checksum held, so these were written like this; the reader will skip and count them.
		q.log.Error("spooled readings that cannot be decoded", "segment", path, "readings", bad)
	}
	return s
}

func decodeAt(data []byte, off int64) (collector.Reading, error) {
	payload, _, err := parseRecord(data[off:])
	if err != nil {
		return collector.Reading{}, err
	}
	return wire.Decode(payload)
}

// readFileInto reads a whole file reusing buf.
func readFileInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	buf = slices.Grow(buf[:0], int(fi.Size()))[:fi.Size()]
	n, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // shrank since the stat: use what is there
	}
	return buf[:n], err
}
