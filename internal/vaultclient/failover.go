package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Failover is an http.RoundTripper that sends a request for the first of
// Addrs to whichever of them answers: it starts with the address that
// answered last and moves on to the next when one gives no answer — a
// dial error, no response within AttemptTimeout, a 502/503/504 (a sealed
// node, a standby that cannot reach an active node, a load balancer
// without backend) or a standby's 500 NotActive (it does not know the
// active node, during an election or just after its restart), or a
// redirect to another of Addrs that gives no answer. Every other response,
// errors included, is an answer and makes its address the sticky one.
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
// when no address answered an error naming every address tried and why
// (or the last 502/503/504 response); the request's own context ending
// stops it at once.
//
// A redirect from one address to another of Addrs (a standby naming the
// active node) is followed here, not by the caller: when the named node
// gives no answer — it is the active node that just died, and the standby
// does not know yet — the remaining addresses are tried at once instead of
// the caller retrying the dead node until its deadline. A redirect to any
// other host is returned to the caller as it is.
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
	tried := make([]bool, len(f.Addrs))
	var errs []error
	var lastResp *http.Response
	keep := func(resp *http.Response) {
		if lastResp != nil {
			lastResp.Body.Close()
		}
		lastResp = resp
	}
	for k := range f.Addrs {
		i := (start + k) % len(f.Addrs)
		if tried[i] {
			continue
		}
		via := "" // "standby: redirected to " after a redirect
		for hop := 0; ; hop++ {
			tried[i] = true
			resp, err := f.attempt(req, f.Addrs[i], body)
			if req.Context().Err() != nil {
				if resp != nil {
					resp.Body.Close()
				}
				keep(nil)
				return nil, req.Context().Err()
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s%s: %w", via, f.Addrs[i].Redacted(), err))
				break
			}
			if j, ok := f.memberRedirect(resp); ok && hop == 0 {
				if tried[j] {
					// The node named was tried and gave no answer.
					resp.Body.Close()
					errs = append(errs, fmt.Errorf("%s: redirected to %s, which gave no answer", f.Addrs[i].Redacted(), f.Addrs[j].Redacted()))
					break
				}
				resp.Body.Close()
				via = f.Addrs[i].Redacted() + ": redirected to "
				i = j
				continue
			}
			if reason, down := Unavailable(resp); down {
				errs = append(errs, fmt.Errorf("%s%s: %s", via, f.Addrs[i].Redacted(), reason))
				keep(resp)
				break
			}
			f.mu.Lock()
			f.cur = i
			f.mu.Unlock()
			keep(nil)
			return resp, nil
		}
	}
	if lastResp != nil {
		return lastResp, nil
	}
	return nil, &NoAnswerError{Errs: errs}
}

// NoAnswerError is what Failover returns when no address answered: why
// each one tried did not.
type NoAnswerError struct {
	Errs []error
}

func (e *NoAnswerError) Error() string {
	parts := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		parts[i] = err.Error()
	}
	return "no vault address answered (" + strings.Join(parts, "; ") + ")"
}

// Unwrap returns the errors of each address (errors.Is sees a deadline).
func (e *NoAnswerError) Unwrap() []error { return e.Errs }

// memberRedirect returns the index of the address resp redirects to, when
// it is a redirect to one of Addrs.
func (f *Failover) memberRedirect(resp *http.Response) (int, bool) {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return 0, false
	}
	loc, err := resp.Location()
	if err != nil {
		return 0, false
	}
	for j, a := range f.Addrs {
		if strings.EqualFold(a.Host, loc.Host) && a.Scheme == loc.Scheme {
			return j, true
		}
	}
	return 0, false
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
	// The request was built on the first address: its path prefix
	// ("https://lb/vault-a") becomes this address's ("https://lb/vault-b"),
	// or every address behind one host and port was the same URL.
	if from, to := strings.TrimRight(f.Addrs[0].Path, "/"), strings.TrimRight(addr.Path, "/"); from != to {
		if rest, ok := strings.CutPrefix(u.Path, from); ok {
			u.Path = to + rest
		}
		if rest, ok := strings.CutPrefix(u.RawPath, from); ok && u.RawPath != "" {
			u.RawPath = to + rest
		}
	}
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

// NotActive is the error a standby answers (500) when it does not know the
// active node: Vault writes it in its request-forwarding handler
// (vault/http/handler.go, handleRequestForwarding) before the request is
// handed to any backend or forwarded, so the request was not processed.
const NotActive = "local node not active but active cluster node not found"

// Unavailable reports whether resp means "this node cannot answer now",
// and why: 502/503/504 (sealed, no active node, a load balancer without
// backend) or Vault's 500 NotActive. It reads at most a small 500 body and
// leaves resp's body readable.
func Unavailable(resp *http.Response) (string, bool) {
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return resp.Status, true
	case http.StatusInternalServerError:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		if bytes.Contains(b, []byte(NotActive)) {
			return "500 " + NotActive, true
		}
	}
	return "", false
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
