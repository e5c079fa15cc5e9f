package testkit

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// ParseJournal reads journald's native protocol: KEY=value lines, or KEY,
// newline, a little-endian uint64 length, the value and a newline for values
// that hold newlines.
func ParseJournal(b []byte) (map[string]string, error) {
	m := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errJournalFormat
		}
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			m[string(line[:eq])] = string(line[eq+1:])
			b = b[nl+1:]
			continue
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			return nil, errJournalFormat
		}
		n := binary.LittleEndian.Uint64(rest[:8])
		if uint64(len(rest)-8) < n+1 {
			return nil, errJournalFormat
		}
		m[string(line)] = string(rest[8 : 8+n])
		b = rest[8+n+1:]
	}
	return m, nil
}

var errJournalFormat = errors.New("malformed journal datagram")
