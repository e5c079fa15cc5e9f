//go:build !raw

package main

import (
	"io"
	"net"
)

// roundTrip sends req over a new TCP connection to addr and reads the
// answer until the server closes it (at most 64 KiB).
func roundTrip(addr string, req []byte) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(c, 64<<10))
}
