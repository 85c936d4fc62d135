package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// A record is one reading on disk:
//
//	length  uint32 little-endian, bytes of payload (at least 1)
//	crc     uint32 little-endian, CRC-32C of the length field and the payload
//	payload the reading as a collector/wire v1 JSON payload
//
// The checksum covers the length too, so a torn or zero-filled tail left by a crash is told
// apart from a record, whatever the length field happens to hold.
const headerSize = 8

// maxPayload rejects absurd lengths while scanning, independent of the configured segment size,
// so a garbage length cannot make recovery allocate gigabytes.
const maxPayload = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShort is a record cut off by the end of the data: the torn tail of a crash, or a read
	// that stopped too early.
	errShort = errors.New("incomplete record")
	// errCorrupt is a record whose length or checksum is wrong.
	errCorrupt = errors.New("corrupt record")
)

// appendRecord appends payload framed as a record to dst.
func appendRecord(dst, payload []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, h[0:4])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// parseRecord reads the record at the start of b and returns its payload and its size on disk.
// For errShort, size is the full size of the record when its header could be read (0 otherwise),
// so a reader knows how much more to read.
func parseRecord(b []byte) (payload []byte, size int, err error) {
	if len(b) < headerSize {
		return nil, 0, errShort
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 || n > maxPayload {
		return nil, 0, errCorrupt
	}
	size = headerSize + int(n)
	if len(b) < size {
		return nil, size, errShort
	}
	crc := crc32.Update(0, castagnoli, b[0:4])
	crc = crc32.Update(crc, castagnoli, b[headerSize:size])
	if crc != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, errCorrupt
	}
	return b[headerSize:size], size, nil
}
