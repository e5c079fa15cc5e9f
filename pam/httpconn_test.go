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
			if r := login(t, cfg, "alice", issue(t, srv, m, "web", "alice", "127.0.0.1")); r.err != nil {
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
					go func() { defer c.Close(); tc.serve(c) }()
				}
			}()
			addr := "http://" + l.Addr().String()
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
