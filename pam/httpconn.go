package pam

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseHeader bounds an answer's status line and headers (as
// net/http.Transport's MaxResponseHeaderBytes did; approximate by one read
// buffer).
const maxResponseHeader = 16 << 10

// httpClient sends one HTTP/1.1 request per connection, in the calling
// goroutine: what the helper's single request needs, without
// net/http.Transport's connection pool and its reader, writer and dialer
// goroutines, whose start-up a one-request process pays on every login.
// It keeps the Transport semantics the helper relied on: no proxy but the
// configured one (HTTP CONNECT for https targets, an absolute URI for
// http), the TLS config as given (ServerName defaults to the target's host),
// "Connection: close", no redirect followed (the caller decides), and ctx's
// deadline and cancellation bounding dial, handshake, write and read. Its
// errors read as net/http.Client's: `Post "<url>": <cause>`, the cause being
// ctx's error when ctx ended.
type httpClient struct {
	tls   *tls.Config
	proxy *url.URL // nil: direct
}

// Do sends req (a request whose context bounds everything) and returns the
// answer; the caller must close its Body, which closes the connection.
func (hc *httpClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := hc.do(req)
	if err != nil {
		ctx := req.Context()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &url.Error{Op: opName(req.Method), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

func opName(m string) string {
	if m == "" {
		return "Get"
	}
	return m[:1] + strings.ToLower(m[1:])
}

func (hc *httpClient) do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	target := req.URL
	if target.Scheme != "http" && target.Scheme != "https" {
		return nil, fmt.Errorf("unsupported protocol scheme %q", target.Scheme)
	}
	dialTo := target
	if hc.proxy != nil {
		dialTo = hc.proxy
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostPort(dialTo))
	if err != nil {
		return nil, err
	}
	// From here on, ctx's end (deadline or cancellation) closes the
	// connection, which ends any read or write; Do then reports ctx's error.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	ok := false
	defer func() {
		if !ok {
			stop()
			conn.Close()
		}
	}()
	var c net.Conn = conn
	if hc.proxy != nil && hc.proxy.Scheme == "https" {
		if c, err = hc.handshake(ctx, c, hc.proxy); err != nil {
			return nil, err
		}
	}
	if hc.proxy != nil && target.Scheme == "https" {
		if err := connect(c, hostPort(target)); err != nil {
			return nil, err
		}
	}
	if target.Scheme == "https" {
		if c, err = hc.handshake(ctx, c, target); err != nil {
			return nil, err
		}
	}
	req.Close = true
	bw := bufio.NewWriter(c)
	if hc.proxy != nil && target.Scheme == "http" {
		err = req.WriteProxy(bw)
	} else {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: c, N: maxResponseHeader}
	resp, err := http.ReadResponse(bufio.NewReader(lr), req)
	if err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("server response headers exceeded %d bytes; aborted", maxResponseHeader)
		}
		return nil, err
	}
	lr.N = math.MaxInt64
	resp.Body = &connBody{ReadCloser: resp.Body, close: func() { stop(); c.Close() }}
	ok = true
	return resp, nil
}

// handshake runs TLS over c to u's host: ServerName from the config, else
// the host's name, as net/http does.
func (hc *httpClient) handshake(ctx context.Context, c net.Conn, u *url.URL) (net.Conn, error) {
	cfg := hc.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// connect asks the proxy on c for a tunnel to hostport.
func connect(c net.Conn, hostport string) error {
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostport, hostport); err != nil {
		return err
	}
	// As net/http does: the buffered reader is dropped after the answer,
	// which loses nothing because a TLS server does not speak first.
	br := bufio.NewReader(&io.LimitedReader{R: c, N: maxResponseHeader})
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return fmt.Errorf("proxy CONNECT: %w", err)
	}
	// A 200's body is the tunnel: never read (or closed) here.
	if resp.StatusCode != http.StatusOK {
		return errors.New(strings.TrimSpace("proxy refused CONNECT: " + resp.Status))
	}
	return nil
}

// connBody closes the connection with the body.
type connBody struct {
	io.ReadCloser
	close func()
}

func (b *connBody) Close() error {
	err := b.ReadCloser.Close()
	b.close()
	return err
}

// hostPort is u's host:port, the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(u.Hostname(), port)
}
