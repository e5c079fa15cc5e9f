package pam

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// proxy_addr against the real Vault: an https Vault through a CONNECT
// tunnel (checked against the Vault's CA, under its own name), an http Vault
// by an absolute-URI request. The login succeeds and the proxy saw it.
func TestProxyAddrReachesVault(t *testing.T) {
	tests := map[string]struct {
		srv                       **vaulttest.Server
		wantConnects, wantForward int32
	}{
		"https through CONNECT":   {srv: &tlsSrv, wantConnects: 1},
		"http by an absolute URI": {srv: &plain, wantForward: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := *tc.srv
			p := vaulttest.NewForwardProxy(t)
			m := sshMount(t, srv)
			cfg := testConfig(srv, m)
			cfg.ProxyAddr = p.URL
			if r := login(t, cfg, "alice", issue(t, srv, m, "web", "alice", "10.9.8.7")); r.err != nil {
				t.Fatal(r.err)
			}
			if c, f := p.Connects.Load(), p.Forwards.Load(); c != tc.wantConnects || f != tc.wantForward {
				t.Fatalf("proxy saw %d CONNECTs and %d requests, want %d and %d", c, f, tc.wantConnects, tc.wantForward)
			}
			if tc.wantConnects > 0 {
				u, _ := url.Parse(srv.Addr)
				if got := p.LastConnect.Load(); got == nil || *got != u.Host {
					t.Fatalf("CONNECT to %v, want %s", got, u.Host)
				}
			}
		})
	}
}

// What the lean client does with servers that are not Vault: an endless
// header, a server that accepts and never answers (the deadline ends it,
// as the context's error), a proxy that refuses the tunnel.
func TestHTTPClientHostileServers(t *testing.T) {
	tests := map[string]struct {
		serve   func(c net.Conn)
		https   bool // the target is https (through the proxy below)
		proxy   bool // the listener is the proxy
		want    string
		wantErr error
	}{
		"endless headers": {
			serve: func(c net.Conn) {
				c.Write([]byte("HTTP/1.1 200 OK\r\n"))
				for i := 0; i < 10000; i++ {
					if _, err := c.Write([]byte("X-Filler: " + strings.Repeat("a", 100) + "\r\n")); err != nil {
						return
					}
				}
			},
			want: "headers exceeded",
		},
		"never answers": {
			serve:   func(c net.Conn) { time.Sleep(3 * time.Second) },
			wantErr: context.DeadlineExceeded,
		},
		"proxy refuses CONNECT": {
			serve: func(c net.Conn) {
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
			},
			https: true, proxy: true,
			want: "proxy refused CONNECT: 403 Forbidden",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr := "http://" + serveRaw(t, tc.serve)
			cfg := &Config{VaultAddrs: []string{addr}, SSHMountPoint: "ssh", TLSSkipVerify: true}
			if tc.https {
				cfg.VaultAddrs = []string{"https://vault.invalid:8200"}
			}
			if tc.proxy {
				cfg.ProxyAddr = addr
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			hc, err := newHTTPClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := &Caller{Config: cfg}
			_, _, _, answered, err := c.post(ctx, hc, cfg.VaultAddrs[0], "ssh/verify", []byte(`{}`))
			if err == nil || answered {
				t.Fatalf("answered=%v err=%v, want no answer and an error", answered, err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want it to wrap %v", err, tc.wantErr)
			}
		})
	}
}

// How the lean client frames an answer (chunked, Content-Length, up to the
// connection's end, after a 100 Continue) and what it refuses from a server
// that is not Vault: a body shorter than its Content-Length, a malformed
// status line or chunk, two Content-Lengths, an unknown transfer coding.
func TestHTTPClientFraming(t *testing.T) {
	tests := map[string]struct {
		answer   string
		wantBody string // "" with want: an error
		want     string
		answered bool // with want: whether the error came with an answer
	}{
		"chunked":        {answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n{\"a\r\n2\r\n\"}\r\n0\r\nX-Trailer: 1\r\n\r\n", wantBody: `{"a"}`},
		"content-length": {answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}ignored", wantBody: `{}`},
		"to the end":     {answer: "HTTP/1.0 200 OK\r\n\r\n{}", wantBody: `{}`},
		"after 100":      {answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", wantBody: `{}`},
		"LF only":        {answer: "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", wantBody: `{}`},
		"short body":     {answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", want: "read answer (200): unexpected EOF", answered: true},
		"short 503 body": {answer: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\n{}", want: "read answer (503): unexpected EOF"},
		"short 500 body": {answer: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10\r\n\r\n{}", want: "read answer (500): unexpected EOF", answered: true},
		"bad status":     {answer: "HTTP/2 200 OK\r\n\r\n", want: `malformed HTTP response "HTTP/2 200 OK"`},
		"no status":      {answer: "", want: "unexpected EOF"},
		"bad chunk":      {answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", want: "read answer (200): malformed chunked encoding", answered: true},
		"two lengths":    {answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", want: "multiple Content-Length"},
		"gzip coding":    {answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", want: `unsupported transfer encoding "gzip"`},
		"header fold":    {answer: "HTTP/1.1 200 OK\r\n folded\r\n\r\n", want: "malformed HTTP response header"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr := serveRaw(t, func(c net.Conn) {
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte(tc.answer))
			})
			cfg := &Config{VaultAddrs: []string{"http://" + addr}, SSHMountPoint: "ssh"}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hc, err := newHTTPClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			status, body, _, answered, err := (&Caller{Config: cfg}).post(ctx, hc, cfg.VaultAddrs[0], "ssh/verify", []byte(`{}`))
			if tc.want == "" {
				if err != nil || status != 200 || string(body) != tc.wantBody || !answered {
					t.Fatalf("status %d body %q answered %v err %v, want 200 %q", status, body, answered, err, tc.wantBody)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || answered != tc.answered {
				t.Fatalf("answered %v err %v, want %v and an error containing %q", answered, err, tc.answered, tc.want)
			}
		})
	}
}

// A header value with a line break (a namespace or token read from a file)
// is never sent: it would forge headers.
func TestHTTPClientRefusesHeaderInjection(t *testing.T) {
	cfg := &Config{VaultAddrs: []string{"http://127.0.0.1:1"}, SSHMountPoint: "ssh", Namespace: "a\r\nX-Evil: 1"}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, answered, err := (&Caller{Config: cfg}).post(context.Background(), hc, cfg.VaultAddrs[0], "ssh/verify", []byte(`{}`))
	if err == nil || answered || !strings.Contains(err.Error(), "header X-Vault-Namespace holds a line break or NUL, refused") {
		t.Fatalf("answered %v err %v", answered, err)
	}
}

// serveRaw listens on loopback and hands every connection to serve (closed
// after it returns), for answers net/http's server would never write; it
// returns the listener's host:port, closed when the test ends.
func serveRaw(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return l.Addr().String()
}
