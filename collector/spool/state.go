package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files of a spool directory besides the segments.
const (
	lockName  = "lock"       // held with flock while a Queue has the directory open
	ackName   = "ack"        // the acknowledged position, rewritten in place
	stateName = "state.json" // per-meter sequence numbers, replaced atomically
	segSuffix = ".seg"
	tmpSuffix = ".tmp"
)

// segmentName is the file name of the segment whose first record has the given ID. Fixed-width
// hex keeps the names in ID order when sorted.
func segmentName(first uint64) string { return fmt.Sprintf("%016x%s", first, segSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

// The ack file is 16 bytes: the acknowledged ID, the CRC-32C of those 8 bytes, and a magic
// number. It is rewritten in place with one small write; a torn write fails the checksum and
// Open then falls back to resending everything still on disk, which at-least-once allows.
const (
	ackSize  = 16
	ackMagic = 0x41514b31 // "AQK1"
)

func encodeAck(id uint64) []byte {
	b := make([]byte, ackSize)
	binary.LittleEndian.PutUint64(b[0:8], id)
	binary.LittleEndian.PutUint32(b[8:12], crc32.Checksum(b[0:8], castagnoli))
	binary.LittleEndian.PutUint32(b[12:16], ackMagic)
	return b
}

func decodeAck(b []byte) (uint64, error) {
	if len(b) != ackSize || binary.LittleEndian.Uint32(b[12:16]) != ackMagic ||
		crc32.Checksum(b[0:8], castagnoli) != binary.LittleEndian.Uint32(b[8:12]) {
		return 0, fmt.Errorf("%w: ack position of %d bytes does not check", errCorrupt, len(b))
	}
	return binary.LittleEndian.Uint64(b[0:8]), nil
}

// state is what the segments cannot tell once they are deleted: the last sequence number of every
// meter. It is written whenever a segment is sealed, before any segment may be deleted, so the
// numbering of a meter survives even when all of its readings have been delivered or dropped.
type state struct {
	Version int `json:"version"`
	// Through is the last record ID the sequence numbers account for; Open decodes only the
	// records after it.
	Through uint64            `json:"through"`
	Seq     map[string]uint64 `json:"seq"`
}

const stateVersion = 1

func readState(dir string) (state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return state{Version: stateVersion, Seq: map[string]uint64{}}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("read spool state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("decode spool state %s (delete it only if sequence numbers may restart): %w",
			filepath.Join(dir, stateName), err)
	}
	if s.Version != stateVersion {
		return state{}, fmt.Errorf("spool state %s has version %d, want %d", filepath.Join(dir, stateName), s.Version, stateVersion)
	}
	if s.Seq == nil {
		s.Seq = map[string]uint64{}
	}
	return s, nil
}

// writeState replaces the state file atomically and durably: a temporary file is synced, renamed
// over the old one and the directory synced, whatever the fsync policy, because deleting a segment
// relies on it. It happens once per segment, so the cost does not matter.
func writeState(dir string, s state, fsync func(*os.File) error) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode spool state: %w", err)
	}
	path := filepath.Join(dir, stateName)
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create spool state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write spool state: %w", err)
	}
	return syncDir(dir, fsync)
}

// syncDir makes created, renamed and removed names in dir durable.
func syncDir(dir string, fsync func(*os.File) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool dir: %w", err)
	}
	err = fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync spool dir: %w", err)
	}
	return nil
}

// timed wraps f.Sync to observe its duration.
func timedSync(m *Metrics) func(*os.File) error {
	return func(f *os.File) error {
		start := time.Now()
		err := f.Sync()
		m.fsynced(time.Since(start).Seconds())
		return err
	}
}
