package vaulttest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// ForwardProxy is an HTTP forward proxy, as an operator's proxy_addr names:
// CONNECT tunnels (https targets) and absolute-URI requests (http targets).
// It counts both, so that a test can show a client went through it.
type ForwardProxy struct {
	// URL is the proxy's address (http://127.0.0.1:port).
	URL string
	// Connects counts CONNECT tunnels opened; Forwards, plain requests.
	Connects, Forwards atomic.Int32
	// LastConnect is the host:port of the last CONNECT.
	LastConnect atomic.Pointer[string]
}

// NewForwardProxy starts a ForwardProxy, stopped when the test ends.
func NewForwardProxy(tb testing.TB) *ForwardProxy {
	tb.Helper()
	p := &ForwardProxy{}
	hs := httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

func (p *ForwardProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request (no absolute URI)", http.StatusBadRequest)
			return
		}
		p.Forwards.Add(1)
		target := *r.URL
		target.Path, target.RawPath, target.RawQuery = "", "", ""
		Forward(w, r, &target)
		return
	}
	host := r.Host
	p.LastConnect.Store(&host)
	p.Connects.Add(1)
	testkit.Tunnel(w, host)
}
