package vaultclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fast returns a client of addr whose retries do not wait.
func fast(t *testing.T, addr string, retries int) *Client {
	t.Helper()
	c, err := New(Config{Address: addr, MaxRetries: Int(retries), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.minWait, c.maxWait = time.Millisecond, time.Millisecond
	return c
}

// answering is a server that answers status with Vault's error JSON (or a
// secret for 200), counting requests.
func answering(t *testing.T, status int, n *atomic.Int32) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, `{"data":{"k":"v"}}`)
			return
		}
		io.WriteString(w, `{"errors":["reason `+strconv.Itoa(status)+`"]}`)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// The agent's requests retry what the api package retried (connection
// errors, 412, 429, 5xx but 501) up to max_retries times, and nothing else.
func TestRetries(t *testing.T) {
	tests := map[string]struct {
		status   int
		attempts int32
	}{
		"500 retried": {500, 3},
		"503 retried": {503, 3},
		"412 retried": {412, 3},
		"429 retried": {429, 3},
		"501 not":     {501, 1},
		"400 not":     {400, 1},
		"403 not":     {403, 1},
		"404 not":     {404, 1},
		"200 once":    {200, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			c := fast(t, answering(t, tc.status, &n), 2)
			_, err := c.Write(context.Background(), "secret/x", map[string]any{"k": "v"})
			if n.Load() != tc.attempts {
				t.Errorf("%d attempts, want %d", n.Load(), tc.attempts)
			}
			var re *ResponseError
			switch {
			case tc.status == 200:
				if err != nil {
					t.Fatal(err)
				}
			case !errors.As(err, &re) || re.StatusCode != tc.status || len(re.Errors) != 1 || re.Errors[0] != "reason "+strconv.Itoa(tc.status):
				t.Fatalf("err = %v, want a ResponseError %d carrying Vault's reason", err, tc.status)
			}
		})
	}
}

func TestRetriesConnectionErrorsAndStopsWithContext(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	addr := hs.URL
	hs.Close() // nothing listens there now
	var seen atomic.Int32
	c := fast(t, addr, 2)
	c.SetCheckRetry(func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		seen.Add(1)
		return DefaultRetryPolicy(ctx, resp, err)
	})
	if _, err := c.Read(context.Background(), "secret/x"); err == nil || !strings.Contains(err.Error(), "GET /v1/secret/x") {
		t.Fatalf("err = %v, want the connection error naming the request", err)
	}
	if seen.Load() != 3 {
		t.Errorf("%d attempts, want 3", seen.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	seen.Store(0)
	if _, err := c.Read(ctx, "secret/x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if seen.Load() != 1 {
		t.Errorf("%d attempts after the context ended, want 1", seen.Load())
	}
}

// A standby's 307 is followed with the request's body; a redirect loop
// ends in an error.
func TestRedirects(t *testing.T) {
	var active atomic.Int32
	act := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, `{"data":{"body":`+strconv.Quote(string(b))+`,"token":"`+r.Header.Get("X-Vault-Token")+`"}}`)
	}))
	t.Cleanup(act.Close)
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, act.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(standby.Close)
	c := fast(t, standby.URL, 0)
	c.SetToken("tok")
	s, err := c.Write(context.Background(), "secret/x", map[string]any{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["body"] != `{"k":"v"}` || s.Data["token"] != "tok" || active.Load() != 1 {
		t.Fatalf("active node got %v (%d requests), want the whole request once", s.Data, active.Load())
	}

	var hops atomic.Int32
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, loop.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(loop.Close)
	if _, err := fast(t, loop.URL, 0).Read(context.Background(), "secret/x"); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("redirect loop: err = %v, want an error", err)
	}
	if hops.Load() != maxRedirects+1 {
		t.Errorf("%d requests in a redirect loop, want %d", hops.Load(), maxRedirects+1)
	}
}

// Every request says X-Vault-Request (Vault's SSRF guard); token,
// namespace and wrap TTL only when set, and a clone's settings are its own.
func TestHeaders(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(hs.Close)
	c, err := New(Config{Address: hs.URL, Namespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Clone()
	tok.SetToken("tok")
	tok.SetNamespace("ns2")
	tok.SetWrapTTL("5m")
	tests := map[string]struct {
		c    *Client
		want map[string]string
	}{
		"bare":  {c, map[string]string{"X-Vault-Request": "true", "X-Vault-Namespace": "ns1", "X-Vault-Token": "", "X-Vault-Wrap-Ttl": ""}},
		"clone": {tok, map[string]string{"X-Vault-Request": "true", "X-Vault-Namespace": "ns2", "X-Vault-Token": "tok", "X-Vault-Wrap-Ttl": "5m"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.c.Read(context.Background(), "x"); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range tc.want {
				if got.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Get(k), v)
				}
			}
		})
	}
}

// The client's timeout bounds a call, retries included.
func TestTimeoutBoundsTheCall(t *testing.T) {
	block := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); hs.Close() })
	c := fast(t, hs.URL, 5)
	c.timeout = 200 * time.Millisecond
	if _, err := c.Read(context.Background(), "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}

// The wait before a retry: attempt × 1–1.5 s, or Vault's Retry-After on a
// 429 or 503 (as retryablehttp's RateLimitLinearJitterBackoff).
func TestBackoff(t *testing.T) {
	c, err := New(Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	with := func(status int, retryAfter string) *http.Response {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	tests := map[string]struct {
		attempt  int
		resp     *http.Response
		min, max time.Duration
	}{
		"first retry":             {0, nil, time.Second, 1500 * time.Millisecond},
		"third retry":             {2, with(500, ""), 3 * time.Second, 4500 * time.Millisecond},
		"429 with Retry-After":    {0, with(429, "7"), 7 * time.Second, 7 * time.Second},
		"503 with Retry-After":    {3, with(503, "0"), 0, 0},
		"500 ignores Retry-After": {0, with(500, "7"), time.Second, 1500 * time.Millisecond},
		"unreadable Retry-After":  {0, with(429, "soon"), time.Second, 1500 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if d := c.backoff(tc.attempt, tc.resp); d < tc.min || d > tc.max {
				t.Fatalf("wait %s, want %s–%s", d, tc.min, tc.max)
			}
		})
	}
}

// Retry-After is read on a 429 or 503 only: seconds or an HTTP date;
// a negative or unreadable one is none.
func TestRetryAfter(t *testing.T) {
	date := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	tests := map[string]struct {
		status     int
		header     string // "" for none
		ok         bool
		want, slop time.Duration // want − slop ≤ wait ≤ want
	}{
		"429 seconds":    {429, "7", true, 7 * time.Second, 0},
		"503 seconds":    {503, "3", true, 3 * time.Second, 0},
		"zero":           {429, "0", true, 0, 0},
		"spaces":         {429, " 2 ", true, 2 * time.Second, 0},
		"HTTP date":      {429, date(30 * time.Second), true, 30 * time.Second, 2 * time.Second},
		"RFC 850 date":   {503, time.Now().Add(30 * time.Second).UTC().Format("Monday, 02-Jan-06 15:04:05 GMT"), true, 30 * time.Second, 2 * time.Second},
		"date passed":    {429, date(-time.Minute), true, 0, 0},
		"huge seconds":   {429, "99999999999999999", true, maxRetryAfter, 0},
		"date far ahead": {429, date(10000 * time.Hour), true, maxRetryAfter, 0},
		"negative":       {429, "-5", false, 0, 0},
		"garbage":        {429, "soon", false, 0, 0},
		"fraction":       {429, "1.5", false, 0, 0},
		"absent":         {429, "", false, 0, 0},
		"500 ignored":    {500, "7", false, 0, 0},
		"403 ignored":    {403, "7", false, 0, 0},
		"200 ignored":    {200, "7", false, 0, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Retry-After", tc.header)
			}
			d, ok := retryAfter(&http.Response{StatusCode: tc.status, Header: h})
			if ok != tc.ok || d < tc.want-tc.slop || d > tc.want {
				t.Fatalf("retryAfter = %s, %t; want %s (−%s), %t", d, ok, tc.want, tc.slop, tc.ok)
			}
		})
	}
	if d, ok := retryAfter(nil); d != 0 || ok {
		t.Errorf("retryAfter(nil) = %s, %t", d, ok)
	}
}

// A 429 or 503 that ends a call (no retries left, as for a login) carries
// its Retry-After in the ResponseError; other answers carry none.
func TestResponseErrorRetryAfter(t *testing.T) {
	tests := map[string]struct {
		status int
		header string
		want   time.Duration
	}{
		"429":          {429, "4", 4 * time.Second},
		"503":          {503, "2", 2 * time.Second},
		"429 without":  {429, "", 0},
		"429 garbage":  {429, "later", 0},
		"500 with one": {500, "4", 0},
		"400 with one": {400, "4", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"errors":["request path \"auth/approle/login\": rate limit quota exceeded"]}`)
			}))
			t.Cleanup(hs.Close)
			c := fast(t, hs.URL, 0)
			_, err := c.Write(context.Background(), "auth/approle/login", map[string]any{"role_id": "r"})
			var re *ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status {
				t.Fatalf("err = %v, want a ResponseError %d", err, tc.status)
			}
			if re.RetryAfter != tc.want {
				t.Errorf("RetryAfter = %s, want %s", re.RetryAfter, tc.want)
			}
			if n.Load() != 1 {
				t.Errorf("%d requests, want 1", n.Load())
			}
		})
	}
}

// A Retry-After longer than the call has left is not waited for: the call
// returns that answer at once (a ResponseError with the wait Vault asked
// for), where it slept until its timeout and said "context deadline
// exceeded". One that fits is waited for and retried, as before.
func TestRetryAfterBeyondTheTimeout(t *testing.T) {
	tests := map[string]struct {
		header       string
		wantRequests int32
		wantErr      bool
	}{
		"an hour":         {"3600", 1, true},
		"beyond the call": {"11", 1, true},
		"within it":       {"0", 3, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) < 3 {
					w.Header().Set("Retry-After", tc.header)
					w.WriteHeader(http.StatusServiceUnavailable)
					io.WriteString(w, `{"errors":["Vault is sealed"]}`)
					return
				}
				io.WriteString(w, `{"data":{"k":"v"}}`)
			}))
			t.Cleanup(hs.Close)
			c := fast(t, hs.URL, 2) // timeout 10 s
			start := time.Now()
			_, err := c.Read(context.Background(), "secret/x")
			var re *ResponseError
			if secs, _ := strconv.Atoi(tc.header); tc.wantErr && (!errors.As(err, &re) || re.StatusCode != 503 || re.RetryAfter != time.Duration(secs)*time.Second) {
				t.Fatalf("err = %v, want the 503 with Retry-After %ss", err, tc.header)
			}
			if !tc.wantErr && err != nil {
				t.Fatalf("err = %v", err)
			}
			if n.Load() != tc.wantRequests || time.Since(start) > 5*time.Second {
				t.Errorf("%d requests in %s, want %d at once", n.Load(), time.Since(start).Round(time.Millisecond), tc.wantRequests)
			}
		})
	}
}

// Vault's 404 means "nothing there" to a read, and an error to a write or
// an unwrap — unless the answer carries data (a deleted KV v2 version, a
// wrapped 404), as the api package had it.
func TestNotFound(t *testing.T) {
	serve := func(body string) string {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, body)
		}))
		t.Cleanup(hs.Close)
		return hs.URL
	}
	empty, withData := serve(`{"errors":[]}`), serve(`{"data":{"x":1},"warnings":["w"]}`)
	ctx := context.Background()
	calls := map[string]func(c *Client) (*Secret, error){
		"read":   func(c *Client) (*Secret, error) { return c.Read(ctx, "x") },
		"list":   func(c *Client) (*Secret, error) { return c.List(ctx, "x") },
		"write":  func(c *Client) (*Secret, error) { return c.Write(ctx, "x", nil) },
		"unwrap": func(c *Client) (*Secret, error) { return c.Unwrap(ctx) },
	}
	tests := []struct {
		call, addr    string
		secret, isErr bool
	}{
		{"read", empty, false, false},
		{"read", withData, true, false},
		{"list", empty, false, false},
		{"write", empty, false, true},
		{"write", withData, true, true},
		{"unwrap", empty, false, true},
		{"unwrap", withData, true, false},
	}
	for _, tc := range tests {
		s, err := calls[tc.call](fast(t, tc.addr, 0))
		var re *ResponseError
		if (s != nil) != tc.secret || (err != nil) != tc.isErr || (err != nil && (!errors.As(err, &re) || re.StatusCode != 404)) {
			t.Errorf("%s of %s: %v, %v; want secret %v, a 404 error %v", tc.call, map[string]string{empty: "nothing", withData: "data"}[tc.addr], s, err, tc.secret, tc.isErr)
		}
	}
}
