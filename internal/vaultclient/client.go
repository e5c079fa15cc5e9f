package vaultclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Client talks to Vault's HTTP API: the few requests the agent makes, with
// the behaviour it relied on from github.com/hashicorp/vault/api (headers,
// retries, a standby's redirect, errors carrying Vault's answer) and
// nothing else, so that the agent's binary does not carry that package's
// dependencies. Clone gives an independent copy sharing the HTTP client.
type Client struct {
	hc        *http.Client
	transport *http.Transport // under any Failover, for LimitConnsPerHost
	addr      *url.URL
	token     string
	namespace string
	wrapTTL   string
	// timeout bounds one call, its retries and redirect included.
	timeout    time.Duration
	maxRetries int
	checkRetry RetryPolicy
	// minWait and maxWait bound the wait before a retry (times its number).
	minWait, maxWait time.Duration
}

// RetryPolicy decides from one attempt's outcome whether to try again; a
// non-nil error is returned when retries run out. It sees every attempt,
// so hooks use it to observe Vault's answers (see DefaultRetryPolicy).
type RetryPolicy func(ctx context.Context, resp *http.Response, err error) (bool, error)

// Address returns the address requests go to.
func (c *Client) Address() string { return c.addr.String() }

// Token returns the token sent with requests ("" for none).
func (c *Client) Token() string { return c.token }

// SetToken sets the token sent with requests ("" for none).
func (c *Client) SetToken(t string) { c.token = t }

// Namespace returns the namespace sent with requests ("" for none).
func (c *Client) Namespace() string { return c.namespace }

// SetNamespace sets the namespace sent with requests ("" for none).
func (c *Client) SetNamespace(ns string) { c.namespace = ns }

// MaxRetries returns how often a failed attempt is retried.
func (c *Client) MaxRetries() int { return c.maxRetries }

// SetMaxRetries sets how often a failed attempt is retried.
func (c *Client) SetMaxRetries(n int) { c.maxRetries = n }

// SetWrapTTL makes Vault response-wrap every answer with ttl ("" for none).
func (c *Client) SetWrapTTL(ttl string) { c.wrapTTL = ttl }

// CheckRetry returns the retry policy.
func (c *Client) CheckRetry() RetryPolicy { return c.checkRetry }

// SetCheckRetry sets the retry policy (nil: DefaultRetryPolicy). Clones
// made afterwards inherit it.
func (c *Client) SetCheckRetry(p RetryPolicy) { c.checkRetry = p }

// Clone returns a copy of c sharing its HTTP client; setting one's token,
// namespace, retries or policy does not change the other.
func (c *Client) Clone() *Client {
	n := *c
	return &n
}

// unretryable reports whether msg, a *url.Error's text, names a net/http
// failure that another attempt would not change (retryablehttp's list:
// "stopped after N redirects" at the end, an unsupported protocol scheme,
// an invalid header, a certificate that is not trusted). Plain string
// checks, not regexps: every start of the agent would compile those.
func unretryable(msg string) bool {
	return redirectsStopped(msg) || strings.Contains(msg, "unsupported protocol scheme") ||
		strings.Contains(msg, "invalid header") || strings.Contains(msg, "certificate is not trusted")
}

// redirectsStopped reports whether msg ends in "stopped after <digits>
// redirects".
func redirectsStopped(msg string) bool {
	rest, ok := strings.CutSuffix(msg, " redirects")
	if !ok {
		return false
	}
	i := len(rest)
	for i > 0 && '0' <= rest[i-1] && rest[i-1] <= '9' {
		i--
	}
	return i < len(rest) && strings.HasSuffix(rest[:i], "stopped after ")
}

// DefaultRetryPolicy is what the api package did: retry a connection error
// (but not a TLS or URL one), 429, 412 (a performance standby not yet
// caught up) and 5xx except 501; stop when ctx ends.
func DefaultRetryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			msg := ue.Error()
			if unretryable(msg) {
				return false, ue
			}
			var ua x509.UnknownAuthorityError
			var ci x509.CertificateInvalidError
			var hn x509.HostnameError
			if errors.As(ue.Err, &ua) || errors.As(ue.Err, &ci) || errors.As(ue.Err, &hn) {
				return false, ue
			}
		}
		return true, nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusPreconditionFailed:
		return true, nil
	case resp.StatusCode == 0 || (resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented):
		return true, nil
	}
	return false, nil
}

// ResponseError is Vault's answer with a status of 400 or more: the
// request's method and path (never its query, body or token), the status
// and Vault's "errors" list.
type ResponseError struct {
	Method     string
	Path       string
	StatusCode int
	Errors     []string
	// RetryAfter is the wait a 429 or 503 asked for in its Retry-After
	// header (a rate limit quota's, with Vault's
	// enable_rate_limit_response_headers); 0 when it asked for none.
	RetryAfter time.Duration
}

func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("vault: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if len(e.Errors) > 0 {
		msg += ": " + strings.Join(e.Errors, "; ")
	}
	return msg
}

// responseError reads resp's body into a ResponseError (and leaves the
// body readable again).
func responseError(resp *http.Response, method, p string) *ResponseError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	re := &ResponseError{Method: method, Path: p, StatusCode: resp.StatusCode}
	re.RetryAfter, _ = retryAfter(resp)
	var body struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(b, &body); err == nil {
		re.Errors = body.Errors
	} else if s := strings.TrimSpace(string(b)); s != "" {
		// Not Vault's JSON (a proxy's page): a bounded excerpt.
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		re.Errors = []string{s}
	}
	return re
}

// maxRedirects bounds the standby → active redirects one call follows.
const maxRedirects = 3

// do sends one request: headers, retries under the policy and Vault's
// redirects. It returns the response with any status; the caller closes
// its body. Errors name method and path only.
func (c *Client) do(ctx context.Context, method, p string, query url.Values, body any) (*http.Response, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("vault: %s %s: encoding the request: %w", method, p, err)
		}
		payload = b
	}
	u := *c.addr
	u.Path = path.Join(c.addr.Path, p)
	u.RawQuery = query.Encode()
	for hop := 0; ; hop++ {
		resp, err := c.retrying(ctx, method, &u, payload)
		if err != nil {
			return nil, fmt.Errorf("vault: %s %s: %w", method, p, err)
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect:
		default:
			return resp, nil
		}
		resp.Body.Close()
		if hop == maxRedirects {
			return nil, fmt.Errorf("vault: %s %s: stopped after %d redirects", method, p, maxRedirects)
		}
		loc, err := resp.Location()
		if err != nil {
			return nil, fmt.Errorf("vault: %s %s: redirect: %w", method, p, err)
		}
		if u.Scheme == "https" && loc.Scheme != "https" {
			return nil, fmt.Errorf("vault: %s %s: redirect would downgrade to %s", method, p, loc.Scheme)
		}
		u = *loc
	}
}

// retrying sends the request until the policy says stop or retries run
// out, waiting (attempt × 1–1.5 s, or the server's Retry-After) between.
func (c *Client) retrying(ctx context.Context, method string, u *url.URL, payload []byte) (*http.Response, error) {
	policy := c.checkRetry
	if policy == nil {
		policy = DefaultRetryPolicy
	}
	for i := 0; ; i++ {
		req, err := c.request(ctx, method, u, payload)
		if err != nil {
			return nil, err
		}
		resp, doErr := c.hc.Do(req)
		retry, checkErr := policy(ctx, resp, doErr)
		var wait time.Duration
		if retry && i < c.maxRetries {
			wait = c.backoff(i, resp)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				// The wait (a Retry-After of an hour, say) would outlast
				// the call: this answer is the caller's now, not "context
				// deadline exceeded" once the time is up.
				retry = false
			}
		}
		if !retry || i >= c.maxRetries {
			if doErr != nil {
				return nil, redact(doErr)
			}
			if checkErr != nil && !retry {
				resp.Body.Close()
				return nil, redact(checkErr)
			}
			return resp, nil
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// redact drops the URL from a net/http error: a query may hold a secret.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxRetryAfter bounds a Retry-After in seconds, so that a huge one does
// not overflow a time.Duration.
const maxRetryAfter = 24 * time.Hour

// retryAfter returns the wait resp's Retry-After header asks for, and
// true, when resp is a 429 or a 503 whose header is a number of seconds
// or an HTTP date (0 once it has passed), at most maxRetryAfter; 0 and
// false when resp is another answer (or nil), has no such header, or one
// that is neither (negative, garbage).
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	ra := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if s, err := strconv.ParseInt(ra, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if at, err := http.ParseTime(ra); err == nil {
		return min(max(time.Until(at), 0), maxRetryAfter), true
	}
	return 0, false
}

func (c *Client) backoff(attempt int, resp *http.Response) time.Duration {
	if d, ok := retryAfter(resp); ok {
		return d
	}
	n := time.Duration(attempt + 1)
	if c.maxWait <= c.minWait {
		return c.minWait * n
	}
	return (c.minWait + rand.N(c.maxWait-c.minWait)) * n
}

func (c *Client) request(ctx context.Context, method string, u *url.URL, payload []byte) (*http.Request, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Vault refuses requests without it when its SSRF protection is on.
	req.Header.Set("X-Vault-Request", "true")
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	if c.namespace != "" {
		req.Header.Set("X-Vault-Namespace", c.namespace)
	}
	if c.wrapTTL != "" {
		req.Header.Set("X-Vault-Wrap-TTL", c.wrapTTL)
	}
	return req, nil
}

// call sends a request bounded by the client's timeout and returns the
// response for a status below 400, a *ResponseError otherwise (with the
// response, body readable, for callers that look into a 404).
func (c *Client) call(ctx context.Context, method, p string, query url.Values, body any) (*http.Response, error) {
	resp, err := c.do(ctx, method, p, query, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return resp, responseError(resp, method, "/"+strings.TrimPrefix(p, "/"))
	}
	return resp, nil
}

// withTimeout bounds ctx by the client's timeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// on404 is what a 404 answer means to a request, as in the api package:
// a 404 from Vault may still carry data or warnings (a wrapped 404, a KV
// v2 version that was deleted).
type on404 int

const (
	// notFoundNil (reads, lists): nothing there is (nil, nil); an answer
	// with data or warnings is returned without error.
	notFoundNil on404 = iota
	// notFoundData (unwrap): an answer with data or warnings is returned
	// without error; otherwise the error.
	notFoundData
	// notFoundErr (writes, token calls): the error, with the answer when
	// it carries data or warnings.
	notFoundErr
)

// secret sends a request bounded by the client's timeout and parses the
// answer; a 404 is handled as nf says.
func (c *Client) secret(ctx context.Context, method, p string, query url.Values, body any, nf on404) (*Secret, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.call(ctx, method, p, query, body)
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		s, perr := ParseSecret(resp.Body)
		if perr != nil || s == nil || (len(s.Warnings) == 0 && len(s.Data) == 0) {
			s = nil
		}
		switch {
		case nf == notFoundNil && s == nil:
			return nil, nil
		case nf == notFoundErr, s == nil:
			return s, err
		}
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := ParseSecret(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("vault: %s %s: %w", method, p, err)
	}
	return s, nil
}

func v1(p string) string { return "/v1/" + strings.TrimPrefix(p, "/") }

// Read GETs path; nothing there is (nil, nil).
func (c *Client) Read(ctx context.Context, p string) (*Secret, error) {
	return c.secret(ctx, http.MethodGet, v1(p), nil, nil, notFoundNil)
}

// ReadWithData GETs path with query parameters; nothing there is (nil, nil).
func (c *Client) ReadWithData(ctx context.Context, p string, query map[string][]string) (*Secret, error) {
	return c.secret(ctx, http.MethodGet, v1(p), url.Values(query), nil, notFoundNil)
}

// List lists the keys under path; nothing there is (nil, nil).
func (c *Client) List(ctx context.Context, p string) (*Secret, error) {
	return c.secret(ctx, http.MethodGet, v1(p), url.Values{"list": {"true"}}, nil, notFoundNil)
}

// Write PUTs data (JSON) to path and returns the answer (nil for 204).
func (c *Client) Write(ctx context.Context, p string, data map[string]any) (*Secret, error) {
	if data == nil {
		data = map[string]any{}
	}
	return c.secret(ctx, http.MethodPut, v1(p), nil, data, notFoundErr)
}

// Unwrap unwraps the response-wrapping token the client holds.
func (c *Client) Unwrap(ctx context.Context) (*Secret, error) {
	return c.secret(ctx, http.MethodPut, v1("sys/wrapping/unwrap"), nil, nil, notFoundData)
}

// LookupSelf looks up the token the client holds.
func (c *Client) LookupSelf(ctx context.Context) (*Secret, error) {
	return c.secret(ctx, http.MethodGet, v1("auth/token/lookup-self"), nil, nil, notFoundErr)
}

// RenewSelf renews the token the client holds by increment (0: its
// default TTL).
func (c *Client) RenewSelf(ctx context.Context, increment time.Duration) (*Secret, error) {
	return c.secret(ctx, http.MethodPut, v1("auth/token/renew-self"), nil,
		map[string]any{"increment": int(increment.Seconds())}, notFoundErr)
}

// ReadRaw GETs path and returns the response whatever its status (the
// caller closes its body); the error is for no answer at all. The call
// stays bounded by the client's timeout until the body is closed.
func (c *Client) ReadRaw(ctx context.Context, p string) (*http.Response, error) {
	ctx, cancel := c.withTimeout(ctx)
	resp, err := c.do(ctx, http.MethodGet, v1(p), nil, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// HealthResponse is sys/health's answer (the fields the agent reads).
type HealthResponse struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Standby     bool   `json:"standby"`
	Version     string `json:"version"`
	ClusterName string `json:"cluster_name"`
}

// Health asks sys/health (no token needed). Every node state is answered
// with 299, as the api package asked, so that only a failure is an error.
func (c *Client) Health(ctx context.Context) (*HealthResponse, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	q := url.Values{}
	for _, k := range []string{"uninitcode", "sealedcode", "standbycode", "drsecondarycode", "performancestandbycode"} {
		q.Set(k, "299")
	}
	resp, err := c.call(ctx, http.MethodGet, "/v1/sys/health", q, nil)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	var h HealthResponse
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return nil, fmt.Errorf("vault: GET /v1/sys/health: decoding the answer: %w", err)
	}
	return &h, nil
}

// RenewLease renews the lease leaseID by increment seconds.
func (c *Client) RenewLease(ctx context.Context, leaseID string, increment int) (*Secret, error) {
	return c.secret(ctx, http.MethodPut, v1("sys/leases/renew"), nil,
		map[string]any{"lease_id": leaseID, "increment": increment}, notFoundErr)
}
