package pam

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// maxResponseHeader bounds an answer's status line and headers (as
// net/http.Transport's MaxResponseHeaderBytes did).
const maxResponseHeader = 16 << 10

// HTTP statuses the helper tells apart.
const (
	statusOK                  = 200
	statusNoContent           = 204
	statusMovedPermanently    = 301
	statusFound               = 302
	statusNotModified         = 304
	statusTemporaryRedirect   = 307
	statusBadRequest          = 400
	statusInternalServerError = 500
	statusServiceUnavailable  = 503
)

// httpClient sends one HTTP/1.1 POST per connection, in the calling
// goroutine, and reads the answer itself: what the helper's single request
// needs, without net/http, whose linking and package initialisation (and
// Transport's goroutines) a one-request process paid on every login. It
// keeps the semantics the helper relied on: no proxy but the configured one
// (HTTP CONNECT for https targets, an absolute URI for http), the TLS config
// as given (ServerName defaults to the target's host), "Connection: close",
// no redirect followed (the caller decides), a body framed by chunked
// transfer coding, Content-Length or the connection's end, and ctx's
// deadline and cancellation bounding dial, handshake, write and read. Its
// errors read as net/http.Client's: `Post "<url>": <cause>`, the cause being
// ctx's error when ctx ended.
type httpClient struct {
	tls   *tls.Config
	proxy *url.URL // nil: direct
}

// request is one POST.
type request struct {
	url    *url.URL
	header [][2]string // name, value
	body   []byte
}

// response is an answer: its status, its headers (by lower-case name, the
// first value) and its body, whose Close closes the connection.
type response struct {
	StatusCode int
	Status     string // "403 Forbidden"
	header     map[string]string
	Body       io.ReadCloser
}

// Header is the first value of the header name (any case).
func (r *response) Header(name string) string { return r.header[strings.ToLower(name)] }

// Do sends req within ctx and returns the answer; the caller must close its
// Body.
func (hc *httpClient) Do(ctx context.Context, req *request) (*response, error) {
	resp, err := hc.do(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &url.Error{Op: "Post", URL: req.url.String(), Err: err}
	}
	return resp, nil
}

func (hc *httpClient) do(ctx context.Context, req *request) (*response, error) {
	target := req.url
	if target.Scheme != "http" && target.Scheme != "https" {
		return nil, fmt.Errorf("unsupported protocol scheme %q", target.Scheme)
	}
	for _, h := range req.header {
		// A value with a line break would forge headers; refused, never sent.
		if strings.ContainsAny(h[1], "\r\n\x00") {
			return nil, fmt.Errorf("header %s holds a line break or NUL, refused", h[0])
		}
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
	uri := target.RequestURI()
	if hc.proxy != nil && target.Scheme == "http" {
		uri = target.String()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: %d\r\n", uri, target.Host, len(req.body))
	for _, h := range req.header {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(req.body)
	if _, err := c.Write(b.Bytes()); err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: c, N: maxResponseHeader}
	br := bufio.NewReader(lr)
	resp, err := readResponse(br, false)
	if err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("server response headers exceeded %d bytes; aborted", maxResponseHeader)
		}
		return nil, err
	}
	lr.N = math.MaxInt64
	resp.Body = &connBody{Reader: resp.Body, close: func() { stop(); c.Close() }}
	ok = true
	return resp, nil
}

// readResponse reads a status line and headers from br, skipping 1xx
// interim answers, and frames the body: none for 204 and 304 (or a CONNECT's
// 2xx, the tunnel), chunked, Content-Length, else up to the connection's end.
func readResponse(br *bufio.Reader, connect bool) (*response, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		proto, status, _ := strings.Cut(line, " ")
		code, reason, _ := strings.Cut(status, " ")
		n, cerr := strconv.Atoi(code)
		if (proto != "HTTP/1.1" && proto != "HTTP/1.0") || len(code) != 3 || cerr != nil || n < 100 {
			return nil, fmt.Errorf("malformed HTTP response %q", truncate(line))
		}
		r := &response{StatusCode: n, Status: strings.TrimSpace(code + " " + reason), header: map[string]string{}}
		for {
			line, err := readLine(br)
			if err != nil {
				return nil, err
			}
			if line == "" {
				break
			}
			name, v, found := strings.Cut(line, ":")
			if !found || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("malformed HTTP response header %q", truncate(line))
			}
			name, v = strings.ToLower(name), strings.Trim(v, " \t")
			if old, dup := r.header[name]; dup {
				if name == "content-length" && old != v {
					return nil, errors.New("http: message cannot contain multiple Content-Length headers")
				}
				continue
			}
			r.header[name] = v
		}
		if n == 101 {
			return nil, errors.New("unexpected 101 Switching Protocols")
		}
		if n < 200 {
			continue // 100 Continue and friends: the answer follows
		}
		switch te, cl := strings.ToLower(r.header["transfer-encoding"]), r.header["content-length"]; {
		case connect && n/100 == 2, n == statusNoContent, n == statusNotModified:
			r.Body = io.NopCloser(bytes.NewReader(nil))
		case te == "chunked":
			r.Body = io.NopCloser(&chunkedReader{r: br})
		case te != "":
			return nil, fmt.Errorf("unsupported transfer encoding %q", truncate(te))
		case cl != "":
			size, err := strconv.ParseUint(cl, 10, 63)
			if err != nil {
				return nil, fmt.Errorf("bad Content-Length %q", truncate(cl))
			}
			r.Body = io.NopCloser(&exactReader{r: io.LimitReader(br, int64(size)), left: int64(size)})
		default:
			r.Body = io.NopCloser(br)
		}
		return r, nil
	}
}

// readLine reads one CRLF (or LF) terminated line of a header.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("HTTP response line too long")
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return string(bytes.TrimRight(line, "\r\n")), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// exactReader is a Content-Length body: ending early is an error.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkedReader decodes the chunked transfer coding; trailers are read and
// dropped.
type chunkedReader struct {
	r       *bufio.Reader
	left    int64 // of the current chunk
	started bool
	done    bool
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		if c.started {
			// The CRLF that ends the previous chunk's data.
			if line, err := readLine(c.r); err != nil || line != "" {
				return 0, errors.New("malformed chunked encoding")
			}
		}
		c.started = true
		line, err := readLine(c.r)
		if err != nil {
			return 0, err
		}
		size, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseUint(strings.TrimSpace(size), 16, 63)
		if err != nil {
			return 0, errors.New("malformed chunked encoding")
		}
		if n == 0 {
			for {
				line, err := readLine(c.r)
				if err != nil {
					return 0, err
				}
				if line == "" {
					c.done = true
					return 0, io.EOF
				}
			}
		}
		c.left = int64(n)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
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
	resp, err := readResponse(br, true)
	if err != nil {
		return fmt.Errorf("proxy CONNECT: %w", err)
	}
	// A 200's body is the tunnel: never read (or closed) here.
	if resp.StatusCode != statusOK {
		return errors.New(strings.TrimSpace("proxy refused CONNECT: " + resp.Status))
	}
	return nil
}

// connBody closes the connection with the body.
type connBody struct {
	io.Reader
	close func()
}

func (b *connBody) Close() error {
	b.close()
	return nil
}

// hostPort is u's host:port, the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(u.Hostname(), port)
}
