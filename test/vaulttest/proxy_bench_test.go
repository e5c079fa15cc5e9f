package vaulttest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// A proxy started outside a test counts what it forwards, by method and
// path, and after Retarget forwards to the new address (a restarted Vault).
func TestStartCountingProxyCountsAndRetargets(t *testing.T) {
	p, err := StartCountingProxy(plain.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var seen atomic.Int32
	p.OnRequest = func(*http.Request) { seen.Add(1) }
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/v1/sys/health"); code != http.StatusOK {
		t.Fatalf("health through the proxy: %d", code)
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	defer other.Close()
	if err := p.Retarget(other.URL); err != nil {
		t.Fatal(err)
	}
	if code := get("/v1/sys/health"); code != http.StatusTeapot {
		t.Fatalf("after Retarget: %d, want the new target's 418", code)
	}
	if n := p.Count("GET", "/v1/sys/health"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	if n := p.Total(); n != 2 || len(p.Paths()) != 1 || seen.Load() != 2 {
		t.Errorf("Total = %d, Paths = %v, OnRequest saw %d", n, p.Paths(), seen.Load())
	}
	p.Reset()
	if n := p.Total(); n != 0 {
		t.Errorf("Total after Reset = %d", n)
	}
}
