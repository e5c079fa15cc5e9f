package vaulttest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ProxyMode is what a TCPProxy does with a new connection.
type ProxyMode int32

const (
	// Pass forwards the connection to the target.
	Pass ProxyMode = iota
	// BlackHole accepts the connection and reads it, never answering nor
	// forwarding: a hung server or a silent network drop.
	BlackHole
	// Reset closes the connection at once (RST).
	Reset
)

// TCPProxy stands between a client and a Vault address at the TCP level,
// to make Vault slow, hung or unreachable without touching it. Mode and
// Delay apply to connections accepted afterwards; Cut also ends those open,
// Stall silences them.
type TCPProxy struct {
	// Addr is the proxy's http:// address, to use as the Vault address.
	Addr string

	target string
	mode   atomic.Int32
	delay  atomic.Int64
	l      net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
	// stalled connections forward nothing more (see Stall).
	stalled map[net.Conn]bool
}

// NewTCPProxy starts a TCPProxy in front of hostport ("127.0.0.1:8200"),
// passing connections through; it stops when the test ends.
func NewTCPProxy(tb testing.TB, hostport string) *TCPProxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &TCPProxy{Addr: "http://" + l.Addr().String(), target: hostport, l: l, conns: map[net.Conn]bool{}, stalled: map[net.Conn]bool{}}
	go p.serve()
	tb.Cleanup(func() {
		l.Close()
		p.Cut()
	})
	return p
}

// SetMode sets what new connections meet.
func (p *TCPProxy) SetMode(m ProxyMode) { p.mode.Store(int32(m)) }

// SetDelay delays every chunk forwarded in either direction by d.
func (p *TCPProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Cut closes every open connection (keep-alive ones included), so that the
// next request meets the current mode.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
		delete(p.stalled, c)
	}
}

// Stall makes every open connection go silent in both directions, without
// closing it: what a client's pooled connection meets when the node it
// reached died behind a load balancer that black-holes its flows (an AWS
// NLB's default), or the network drops them. Connections accepted
// afterwards meet the mode, as they would reach a live node.
func (p *TCPProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.stalled[c] = true
	}
}

func (p *TCPProxy) isStalled(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled[a] || p.stalled[b]
}

func (p *TCPProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = true
	p.mu.Unlock()
}

func (p *TCPProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		switch ProxyMode(p.mode.Load()) {
		case Reset:
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		case BlackHole:
			go io.Copy(io.Discard, c)
		default:
			go p.pass(c)
		}
	}
}

func (p *TCPProxy) pass(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(up)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.isStalled(src, dst) {
				if d := time.Duration(p.delay.Load()); d > 0 {
					time.Sleep(d)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go pipe(up, c)
	pipe(c, up)
}
