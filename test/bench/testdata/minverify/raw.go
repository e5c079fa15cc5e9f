//go:build raw

package main

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

// roundTrip sends req over a new TCP connection to addr (an IPv4
// literal:port) with blocking socket syscalls and reads the answer until
// the server closes it (at most 64 KiB).
func roundTrip(addr string, req []byte) ([]byte, error) {
	host, port, ok := strings.Cut(addr, ":")
	p, err := strconv.Atoi(port)
	if !ok || err != nil || p <= 0 || p > 65535 {
		return nil, errors.New("addr is not ipv4:port")
	}
	var sa syscall.SockaddrInet4
	sa.Port = p
	parts := strings.Split(host, ".")
	if len(parts) != 4 {
		return nil, errors.New("addr is not ipv4:port")
	}
	for i, s := range parts {
		b, err := strconv.Atoi(s)
		if err != nil || b < 0 || b > 255 {
			return nil, errors.New("addr is not ipv4:port")
		}
		sa.Addr[i] = byte(b)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	// A bound on each blocking call, as a deadline would be.
	tv := syscall.Timeval{Sec: 10}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := syscall.Connect(fd, &sa); err != nil {
		return nil, err
	}
	for len(req) > 0 {
		n, err := syscall.Write(fd, req)
		if err != nil {
			return nil, err
		}
		req = req[n:]
	}
	var resp []byte
	buf := make([]byte, 4096)
	for len(resp) < 64<<10 {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		resp = append(resp, buf[:n]...)
	}
	return resp, nil
}
