package vaulttest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// Forward sends r on to target (the same path and query) and copies the
// answer back into w: the tail of every test proxy in front of Vault.
func Forward(w http.ResponseWriter, r *http.Request, target *url.URL) {
	body, _ := io.ReadAll(r.Body)
	req, err := http.NewRequest(r.Method, target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// CountingProxy is a reverse proxy in front of a Vault server that counts
// the requests it forwards, to show how often something was asked for.
type CountingProxy struct {
	// URL is the proxy's address, to use as the Vault address.
	URL string

	// OnRequest, when set before the first request, sees every request
	// before it is forwarded (the benchmark's rate per second).
	OnRequest func(*http.Request)

	mu     sync.Mutex
	n      map[string]int
	target *url.URL
	close  func() error
}

// NewCountingProxy starts a CountingProxy in front of addr; it stops when
// the test ends.
func NewCountingProxy(tb testing.TB, addr string) *CountingProxy {
	tb.Helper()
	p := &CountingProxy{n: map[string]int{}}
	if err := p.Retarget(addr); err != nil {
		tb.Fatalf("proxy target %q: %v", addr, err)
	}
	hs := httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

// Count returns how many requests had this method and path, e.g.
// Count("GET", "/v1/secret/data/app").
func (p *CountingProxy) Count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[method+" "+path]
}
