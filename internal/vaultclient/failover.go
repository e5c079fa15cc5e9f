package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Failover is an http.RoundTripper that sends a request for the first of
// Addrs to whichever of them answers: it starts with the address that
// answered last and moves on to the next when one gives no answer — a
// dial error, no response within AttemptTimeout, or a 502/503/504 (a
// sealed node, a standby that cannot reach an active node, a load
// balancer without backend). Every other response, errors included, is an
// answer and makes its address the sticky one.
//
// Requests for another host (a standby's redirect to the active node) pass
// through unchanged. With one address Failover does nothing but forward.
type Failover struct {
	// Addrs are the servers of one cluster, in the order to try them.
	Addrs []*url.URL
	// AttemptTimeout bounds one address's attempt (0: none but the
	// request's own deadline).
	AttemptTimeout time.Duration
	// Next sends the requests (http.DefaultTransport when nil).
	Next http.RoundTripper

	mu  sync.Mutex
	cur int
}

// NewFailover returns a Failover over addrs (absolute http(s) URLs), or an
// error naming the first that is not one.
func NewFailover(addrs []string, attempt time.Duration, next http.RoundTripper) (*Failover, error) {
	f := &Failover{AttemptTimeout: attempt, Next: next}
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("vault address %q: want http(s)://host[:port]", a)
		}
		f.Addrs = append(f.Addrs, u)
	}
	if len(f.Addrs) == 0 {
		return nil, errors.New("vault addresses: none given")
	}
	return f, nil
}

// Current returns the address requests go to first now.
func (f *Failover) Current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Addrs[f.cur].String()
}

func (f *Failover) next() http.RoundTripper {
	if f.Next != nil {
		return f.Next
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper. It returns the first answer, or
// when no address answered the last address's error (or its 502/503/504
// response); the request's own context ending stops it at once.
func (f *Failover) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(f.Addrs) < 2 || req.URL.Host != f.Addrs[0].Host {
		return f.next().RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		// Vault requests are small; buffered, one can be sent again.
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	f.mu.Lock()
	start := f.cur
	f.mu.Unlock()
	var lastErr error
	var lastResp *http.Response
	for k := range f.Addrs {
		i := (start + k) % len(f.Addrs)
		if lastResp != nil {
			lastResp.Body.Close()
			lastResp = nil
		}
		resp, err := f.attempt(req, f.Addrs[i], body)
		if req.Context().Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, req.Context().Err()
		}
		if err == nil && !unavailable(resp.StatusCode) {
			f.mu.Lock()
			f.cur = i
			f.mu.Unlock()
			return resp, nil
		}
		lastErr, lastResp = err, resp
	}
	if lastResp != nil {
		return lastResp, nil
	}
	return nil, lastErr
}

// attempt sends req to addr, bounded by AttemptTimeout until its body has
// been read or closed.
func (f *Failover) attempt(req *http.Request, addr *url.URL, body []byte) (*http.Response, error) {
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if f.AttemptTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.AttemptTimeout)
	}
	r := req.Clone(ctx)
	u := *req.URL
	u.Scheme, u.Host = addr.Scheme, addr.Host
	r.URL, r.Host = &u, ""
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	resp, err := f.next().RoundTrip(r)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// unavailable reports whether a status means "this node cannot answer".
func unavailable(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// cancelBody ends an attempt's context once its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
