package testkit

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Hung is a listener on loopback that accepts every connection and never
// reads from it or answers: a Vault that hangs before even the TLS handshake.
type Hung struct {
	// Addr is host:port; prefix it with the scheme the test needs.
	Addr     string
	accepted atomic.Int32
}

// StartHung starts a Hung listener; the test's cleanup closes it and every
// connection it holds.
func StartHung(t testing.TB) *Hung {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Must(t, err)
	h := &Hung{Addr: l.Addr().String()}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			h.accepted.Add(1)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return h
}

// Accepted reports how many connections were accepted so far.
func (h *Hung) Accepted() int32 { return h.accepted.Load() }
