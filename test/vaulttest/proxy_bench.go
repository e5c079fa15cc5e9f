package vaulttest

import (
	"net"
	"net/http"
	"net/url"
	"sort"
)

// StartCountingProxy starts a CountingProxy in front of addr outside a test
// (the benchmark); the caller must Close it. NewCountingProxy is the same
// for tests.
func StartCountingProxy(addr string) (*CountingProxy, error) {
	p := &CountingProxy{n: map[string]int{}}
	if err := p.Retarget(addr); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(p.serve)}
	go srv.Serve(l)
	p.URL = "http://" + l.Addr().String()
	p.close = srv.Close
	return p, nil
}

func (p *CountingProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.n[r.Method+" "+r.URL.Path]++
	target, hook := p.target, p.OnRequest
	p.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	Forward(w, r, target)
}

// Retarget sends the requests from now on to addr (a Vault restarted on
// another port). It is an error when addr is not a URL.
func (p *CountingProxy) Retarget(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.target = u
	p.mu.Unlock()
	return nil
}

// Counts returns a copy of the counts by "METHOD /path".
func (p *CountingProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.n))
	for k, v := range p.n {
		m[k] = v
	}
	return m
}

// Total returns how many requests were forwarded.
func (p *CountingProxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := 0
	for _, v := range p.n {
		t += v
	}
	return t
}

// Reset forgets the counts so far.
func (p *CountingProxy) Reset() {
	p.mu.Lock()
	p.n = map[string]int{}
	p.mu.Unlock()
}

// Paths returns the counted "METHOD /path" keys, sorted.
func (p *CountingProxy) Paths() []string {
	m := p.Counts()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Close stops a proxy started by StartCountingProxy.
func (p *CountingProxy) Close() error {
	if p.close == nil {
		return nil
	}
	return p.close()
}
