package pam

// Integration tests against a real Vault dev server (HTTP and TLS).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/totptest"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var plain, tlsSrv *vaulttest.Server

func TestMain(m *testing.M) {
	if os.Getenv(journalChildEnv) != "" || os.Getenv(netnsChildEnv) != "" {
		// The re-executed journal and network tests need no Vault.
		os.Exit(m.Run())
	}
	vaulttest.Main(m, vaulttest.Spec{Into: &plain}, vaulttest.Spec{Into: &tlsSrv, Options: vaulttest.Options{TLS: true}})
}

var mountSeq atomic.Int32

// sshMount mounts the SSH engine at a fresh path with an OTP role "web"
// for alice and bob on any IPv4 or IPv6 address.
func sshMount(t *testing.T, srv *vaulttest.Server) string {
	t.Helper()
	mount := fmt.Sprintf("ssh-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), mountSeq.Add(1))
	if len(mount) > 60 {
		mount = fmt.Sprintf("ssh-t%d", mountSeq.Add(1))
	}
	c := srv.Client
	if err := c.Sys().Mount(mount, &api.MountInput{Type: "ssh"}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"web", "db"} {
		if _, err := c.Logical().Write(mount+"/roles/"+role, map[string]any{
			"key_type": "otp", "default_user": "alice", "allowed_users": "alice,bob",
			"cidr_list": "0.0.0.0/0,::/0",
		}); err != nil {
			t.Fatal(err)
		}
	}
	return mount
}

func issue(t *testing.T, srv *vaulttest.Server, mount, role, user, ip string) string {
	t.Helper()
	s, err := srv.Client.Logical().Write(mount+"/creds/"+role, map[string]any{"ip": ip, "username": user})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data["key"].(string)
}

func testConfig(srv *vaulttest.Server, mount string) *Config {
	return &Config{
		VaultAddrs: []string{srv.Addr}, SSHMountPoint: mount, CACert: srv.CACert,
		AllowedRoles: []string{"web"}, Timeout: 5 * time.Second, Mode: ModeOTP, Audit: AuditOff,
	}
}

type run struct {
	err error
	rec Record
}

// login runs the helper as pam_exec would for user with stdin, and returns
// its error and audit record. It fails the test when the password shows in
// the audit record or in anything logged, at debug level included.
func login(t *testing.T, cfg *Config, user, stdin string) run {
	t.Helper()
	var rec Record
	var got bool
	file := t.TempDir() + "/audit.log"
	cfg.AuditFile = file
	// At debug level, with a fixed time whose digits cannot look like a TOTP code.
	logger, logged := testLogger(t)
	h := &Helper{
		Config: cfg, Logger: logger,
		Auditor: &Auditor{Dest: AuditOff, File: file},
		Getenv: func(k string) string {
			return map[string]string{"PAM_USER": user, "PAM_SERVICE": "sshd", "PAM_RHOST": "198.51.100.7", "PAM_TYPE": "auth"}[k]
		},
		HostAddrs: func() ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("10.9.8.7"), netip.MustParseAddr("2001:db8::7")}, nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	err := h.Run(ctx, strings.NewReader(stdin))
	b := readFile(t, file)
	secret := strings.TrimSuffix(stdin, "\x00")
	if containsSecret(b, secret) {
		t.Errorf("audit record contains the password: %s", b)
	}
	if containsSecret(logged.String(), secret) {
		t.Errorf("the log contains the password: %s", logged.String())
	}
	if n := strings.Count(b, "\n"); n != 1 {
		t.Errorf("want one audit record, got %d: %s", n, b)
	}
	rec, got = parseRecord(b)
	if !got {
		t.Errorf("audit record unreadable: %q", b)
	}
	if rec.Time.IsZero() || rec.Time.Location() != time.UTC {
		t.Errorf("audit record time %v, want a UTC time", rec.Time)
	}
	return run{err: err, rec: rec}
}

// containsSecret reports whether text holds secret. A TOTP code is digits
// only and is looked for as a whole number, so that a duration or request
// id with the same digits in it does not count.
func containsSecret(text, secret string) bool {
	if secret == "" {
		return false
	}
	if strings.Trim(secret, "0123456789") != "" {
		return strings.Contains(text, secret)
	}
	return regexp.MustCompile(`(^|[^0-9])` + regexp.QuoteMeta(secret) + `($|[^0-9])`).MatchString(text)
}

func TestVerifyAgainstVault(t *testing.T) {
	for _, srv := range []*vaulttest.Server{plain, tlsSrv} {
		name := "http"
		if srv.CACert != "" {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			mount := sshMount(t, srv)
			cfg := testConfig(srv, mount)

			good := issue(t, srv, mount, "web", "alice", "10.9.8.7")
			r := login(t, cfg, "alice", good)
			if r.err != nil {
				t.Fatalf("valid OTP: %v", r.err)
			}
			if r.rec.Result != "success" || r.rec.Time.IsZero() || r.rec.Role != "web" || r.rec.IP != "10.9.8.7" || r.rec.RequestID == "" ||
				r.rec.VaultAddr != srv.Addr || r.rec.Service != "sshd" || r.rec.RHost != "198.51.100.7" {
				t.Errorf("audit record = %+v", r.rec)
			}

			r = login(t, cfg, "alice", good+"\x00")
			if !errors.Is(r.err, ErrDenied) || r.rec.Result != "failure" || !strings.Contains(r.rec.Reason, "wrong, used or expired") {
				t.Errorf("second use: %v, %+v", r.err, r.rec)
			}

			cases := map[string]struct {
				role, issuedTo, ip, user, want string
			}{
				"nul-terminated (older Linux-PAM)": {"web", "alice", "10.9.8.7", "alice", ""},
				"ipv6 host address":                {"web", "alice", "2001:db8::7", "alice", ""},
				// The login comes from 198.51.100.7: loopback is every host's.
				"loopback, from a remote client": {"web", "alice", "127.0.0.1", "alice", "loopback address 127.0.0.1, which every host has"},
				"other user":                     {"web", "bob", "10.9.8.7", "alice", `issued for user "bob"`},
				"other ip":                       {"web", "alice", "10.1.2.3", "alice", "neither this host's"},
				"role not allowed":               {"db", "alice", "10.9.8.7", "alice", `role "db"`},
			}
			for cname, c := range cases {
				t.Run(cname, func(t *testing.T) {
					otp := issue(t, srv, mount, c.role, c.issuedTo, c.ip)
					r := login(t, cfg, c.user, otp+"\x00")
					if c.want == "" {
						if r.err != nil {
							t.Fatal(r.err)
						}
						return
					}
					if !errors.Is(r.err, ErrDenied) || !strings.Contains(r.err.Error(), c.want) {
						t.Fatalf("error = %v, want denied with %q", r.err, c.want)
					}
					if r.rec.Reason == "" || r.rec.Result != "failure" {
						t.Errorf("audit record = %+v", r.rec)
					}
				})
			}

			t.Run("random uuid", func(t *testing.T) {
				r := login(t, cfg, "alice", "11111111-2222-3333-4444-555555555555")
				if !errors.Is(r.err, ErrDenied) {
					t.Fatalf("error = %v", r.err)
				}
			})
			t.Run("not a uuid never reaches vault", func(t *testing.T) {
				r := login(t, cfg, "alice", "my-real-password")
				if !errors.Is(r.err, ErrDenied) || !strings.Contains(r.err.Error(), "not a Vault OTP") || r.rec.VaultAddr != "" {
					t.Fatalf("error = %v, record %+v", r.err, r.rec)
				}
			})
			t.Run("oversized password is denied", func(t *testing.T) {
				r := login(t, cfg, "alice", strings.Repeat("x", 4096))
				if !errors.Is(r.err, ErrDenied) || r.rec.VaultAddr != "" {
					t.Fatalf("error = %v, record %+v", r.err, r.rec)
				}
			})
			t.Run("no PAM_USER", func(t *testing.T) {
				r := login(t, cfg, "", good)
				if !errors.Is(r.err, ErrDenied) {
					t.Fatalf("error = %v", r.err)
				}
			})
			t.Run("echo", func(t *testing.T) {
				logger, _ := testLogger(t)
				h := &Helper{Config: cfg, Logger: logger}
				if err := h.VerifyOnly(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestVaultErrors(t *testing.T) {
	mount := sshMount(t, tlsSrv)
	otpFor := func() string { return issue(t, tlsSrv, mount, "web", "alice", "10.9.8.7") }

	t.Run("wrong mount", func(t *testing.T) {
		cfg := testConfig(tlsSrv, "no-such-mount")
		r := login(t, cfg, "alice", otpFor())
		if !errors.Is(r.err, ErrVault) || errors.Is(r.err, ErrDenied) {
			t.Fatalf("error = %v", r.err)
		}
	})
	// Vault OSS ignores X-Vault-Namespace, so the real server cannot refuse
	// a wrong one (TestUnknownNamespace stands in for Enterprise). Here: the
	// configured namespace is what reaches Vault.
	t.Run("namespace header", func(t *testing.T) {
		p, u := proxyTo(t, plain)
		m := sshMount(t, plain)
		cfg := testConfig(plain, m)
		cfg.VaultAddrs = []string{u}
		cfg.Namespace = "team-a"
		if r := login(t, cfg, "alice", issue(t, plain, m, "web", "alice", "10.9.8.7")); r.err != nil {
			t.Fatal(r.err)
		}
		if got := p.lastNamespace.Load(); got == nil || *got != "team-a" {
			t.Errorf("X-Vault-Namespace = %v, want team-a", got)
		}
	})
	// What the real (OSS) server does with a namespace it does not have:
	// nothing — it serves the root namespace. Checked here so that a Vault
	// release that starts refusing it shows up.
	t.Run("namespace on OSS Vault", func(t *testing.T) {
		cfg := testConfig(tlsSrv, mount)
		cfg.Namespace = "no-such-namespace"
		if r := login(t, cfg, "alice", otpFor()); r.err != nil {
			t.Fatalf("OSS Vault with a namespace: %v", r.err)
		}
	})
	t.Run("vault down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := "http://" + l.Addr().String()
		l.Close() // nothing listens there now
		cfg := testConfig(plain, "ssh")
		cfg.VaultAddrs = []string{addr}
		r := login(t, cfg, "alice", otpFor())
		if !errors.Is(r.err, ErrUnreachable) || !strings.Contains(r.rec.Reason, "refused") {
			t.Fatalf("error = %v; reason %q", r.err, r.rec.Reason)
		}
	})
	t.Run("vault hung", func(t *testing.T) {
		hung := testkit.StartHung(t)
		cfg := testConfig(plain, "ssh")
		cfg.VaultAddrs = []string{"http://" + hung.Addr}
		cfg.Timeout = 700 * time.Millisecond
		r := login(t, cfg, "alice", otpFor())
		if !errors.Is(r.err, ErrUnreachable) || !strings.Contains(r.rec.Reason, "deadline") {
			t.Fatalf("error = %v; reason %q", r.err, r.rec.Reason)
		}
	})
	t.Run("answer without data", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"request_id":"x","data":null}`)
		}))
		defer srv.Close()
		cfg := testConfig(plain, "ssh")
		cfg.VaultAddrs = []string{srv.URL}
		r := login(t, cfg, "alice", otpFor())
		if !errors.Is(r.err, ErrVault) || !strings.Contains(r.err.Error(), "no data") {
			t.Fatalf("error = %v", r.err)
		}
	})
}

// The TLS keys of the config, against the real Vault's https listener,
// whose certificate (made by -dev-tls) names localhost and 127.0.0.1.
func TestTLSConfigKeys(t *testing.T) {
	mount := sshMount(t, tlsSrv)
	caDir := t.TempDir()
	writeFileT(t, filepath.Join(caDir, "vault-ca.pem"), readFile(t, tlsSrv.CACert))
	otherCADir := t.TempDir()
	writeFileT(t, filepath.Join(otherCADir, "other-ca.pem"), otherCAPEM(t))
	tests := map[string]struct {
		caCert, caPath, serverName string
		skipVerify                 bool
		// wantRefused: the TLS handshake fails on the certificate, so no
		// Vault answered; else the login succeeds.
		wantRefused bool
	}{
		"ca_cert":                                {caCert: tlsSrv.CACert},
		"no CA":                                  {wantRefused: true},
		"tls_skip_verify without a CA":           {skipVerify: true},
		"tls_skip_verify, name not in cert":      {skipVerify: true, serverName: "wrong.example"},
		"tls_server_name in the certificate":     {caCert: tlsSrv.CACert, serverName: "localhost"},
		"tls_server_name not in the certificate": {caCert: tlsSrv.CACert, serverName: "wrong.example", wantRefused: true},
		"ca_path holding the CA":                 {caPath: caDir},
		"ca_path with the name":                  {caPath: caDir, serverName: "localhost"},
		"ca_path holding another CA":             {caPath: otherCADir, wantRefused: true},
		// vault-ssh-helper's rule: ca_cert alone, the ca_path is not added.
		"ca_cert of another CA beside a ca_path holding Vault's": {caCert: filepath.Join(otherCADir, "other-ca.pem"), caPath: caDir, wantRefused: true},
		"ca_cert beside a ca_path holding another CA":            {caCert: tlsSrv.CACert, caPath: otherCADir},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(tlsSrv, mount)
			cfg.CACert, cfg.CAPath, cfg.TLSServerName, cfg.TLSSkipVerify = tc.caCert, tc.caPath, tc.serverName, tc.skipVerify
			r := login(t, cfg, "alice", issue(t, tlsSrv, mount, "web", "alice", "10.9.8.7"))
			if tc.wantRefused {
				if !errors.Is(r.err, ErrUnreachable) || !strings.Contains(r.err.Error(), "certificate") ||
					!strings.Contains(r.rec.Reason, "certificate") {
					t.Fatalf("error = %v (reason %q), want no answer because of the certificate", r.err, r.rec.Reason)
				}
				return
			}
			if r.err != nil || r.rec.VaultAddr != tlsSrv.Addr {
				t.Fatalf("error = %v, record %+v", r.err, r.rec)
			}
		})
	}
}

// otherCAPEM is a self-signed CA certificate that signed nothing Vault uses.
func otherCAPEM(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey test, not Vault's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// countingProxy forwards to target and counts verify requests; status, when
// non-zero, is answered instead of forwarding.
type countingProxy struct {
	target   *url.URL
	verifies atomic.Int32
	status   int
	message  string // the error answered with status ("injected" when empty)
	redirect string
	// namespaceStatus, when non-zero, is answered (with namespaceError) to a
	// request whose X-Vault-Namespace is not namespace, as Vault Enterprise
	// answers a namespace it does not have.
	namespace       string
	namespaceStatus int
	namespaceError  string
	// lastNamespace is the X-Vault-Namespace of the last verify request.
	lastNamespace atomic.Pointer[string]
	// cut forwards the request and sends back Vault's status line and half
	// its body, then closes the connection: an answer cut off mid-body.
	cut bool
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/verify") {
		p.verifies.Add(1)
		ns := r.Header.Get("X-Vault-Namespace")
		p.lastNamespace.Store(&ns)
	}
	switch {
	case p.namespaceStatus != 0 && r.Header.Get("X-Vault-Namespace") != p.namespace:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(p.namespaceStatus)
		json.NewEncoder(w).Encode(map[string][]string{"errors": {p.namespaceError}})
		return
	case p.redirect != "":
		// A standby node's answer: go to the active node.
		http.Redirect(w, r, p.redirect+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		return
	case p.status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(p.status)
		msg := p.message
		if msg == "" {
			msg = "injected"
		}
		json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
		return
	case p.cut:
		rec := httptest.NewRecorder()
		vaulttest.Forward(rec, r, p.target)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		body := rec.Body.Bytes()
		fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			rec.Code, http.StatusText(rec.Code), len(body), body[:len(body)/2])
		conn.Close()
		return
	}
	vaulttest.Forward(w, r, p.target)
}

func proxyTo(t *testing.T, srv *vaulttest.Server) (*countingProxy, string) {
	u, _ := url.Parse(srv.Addr)
	p := &countingProxy{target: u}
	hs := httptest.NewServer(p)
	t.Cleanup(hs.Close)
	return p, hs.URL
}

// A namespace the server does not have: Vault Enterprise (and OpenBao)
// answer 404 or 403, which is the operator's problem, not a wrong password:
// ErrVault (exit 4), with Vault's answer in the audit record.
func TestUnknownNamespace(t *testing.T) {
	mount := sshMount(t, plain)
	tests := map[string]struct {
		namespace  string
		status     int
		message    string
		wantReason string // "" = the login succeeds
	}{
		"known namespace": {namespace: "team-a", status: http.StatusNotFound},
		"unknown namespace, 404": {namespace: "team-b", status: http.StatusNotFound,
			message:    fmt.Sprintf("no handler for route %q. route entry not found.", "team-b/"+mount+"/verify"),
			wantReason: "404 on " + mount + "/verify: no handler for route"},
		"unknown namespace, 403": {namespace: "team-b", status: http.StatusForbidden,
			message: "permission denied", wantReason: "403 on " + mount + "/verify: permission denied"},
		"no namespace configured": {status: http.StatusForbidden,
			message: "permission denied", wantReason: "403 on " + mount + "/verify: permission denied"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, u := proxyTo(t, plain)
			p.namespace, p.namespaceStatus, p.namespaceError = "team-a", tc.status, tc.message
			cfg := testConfig(plain, mount)
			cfg.VaultAddrs, cfg.Namespace = []string{u}, tc.namespace
			r := login(t, cfg, "alice", issue(t, plain, mount, "web", "alice", "10.9.8.7"))
			if tc.wantReason == "" {
				if r.err != nil {
					t.Fatal(r.err)
				}
				return
			}
			if !errors.Is(r.err, ErrVault) || errors.Is(r.err, ErrDenied) || errors.Is(r.err, ErrUnreachable) {
				t.Fatalf("error = %v, want ErrVault only", r.err)
			}
			if r.rec.Result != "failure" || !strings.Contains(r.rec.Reason, tc.wantReason) || r.rec.VaultAddr != u {
				t.Errorf("audit record %+v, want a failure from %s with reason %q", r.rec, u, tc.wantReason)
			}
		})
	}
}

// addrSpec is one configured Vault address of a failover case.
type addrSpec struct {
	kind string // "down" (nothing listens), "hung" (accepts, never answers), "live" (the Vault), "proxy"
	// A proxy counts verify requests and forwards them to the Vault, or
	// answers status, or redirects to the Vault as a standby node does, or
	// cuts Vault's answer off mid-body.
	status   int
	redirect bool
	cut      bool
	// message is Vault's error with status ("injected" when empty).
	message string
}

func TestFailover(t *testing.T) {
	mount := sshMount(t, plain)
	const unknownOTP = "11111111-2222-3333-4444-555555555555"
	tests := map[string]struct {
		addrs    []addrSpec
		password string // "" = a fresh valid OTP
		timeout  time.Duration
		wantErr  error // nil = the login succeeds
		// wantReason is in the audit record's reason.
		wantReason string
		// wantAddr is the index of the address recorded as the one that
		// answered; -1: none.
		wantAddr int
		// wantCalls is, per address, how many verify requests a proxy got
		// or connections a hung address accepted, exactly: a retry to the
		// same address would send the OTP twice. Down and live addresses
		// are not counted.
		wantCalls []int
	}{
		"down, hung, then a live address": {
			addrs: []addrSpec{{kind: "down"}, {kind: "hung"}, {kind: "live"}}, timeout: 3 * time.Second,
			wantAddr: 2, wantCalls: []int{0, 1, 0},
		},
		"sealed (503) is skipped": {
			addrs:    []addrSpec{{kind: "proxy", status: http.StatusServiceUnavailable}, {kind: "proxy"}},
			wantAddr: 1, wantCalls: []int{1, 1},
		},
		// Written by a standby that knows no active node before the
		// request reaches any backend: the OTP was not seen.
		"a standby's 500 'no active node' is skipped": {
			addrs:    []addrSpec{{kind: "proxy", status: http.StatusInternalServerError, message: notActive}, {kind: "proxy"}},
			wantAddr: 1, wantCalls: []int{1, 1},
		},
		"an answer (400, unknown OTP) stops failover": {
			addrs: []addrSpec{{kind: "proxy"}, {kind: "proxy"}}, password: unknownOTP,
			wantErr: ErrDenied, wantReason: "wrong, used or expired", wantAddr: 0, wantCalls: []int{1, 0},
		},
		"an answer (500) stops failover": {
			addrs:   []addrSpec{{kind: "proxy", status: http.StatusInternalServerError}, {kind: "proxy"}},
			wantErr: ErrVault, wantReason: "500", wantAddr: 0, wantCalls: []int{1, 0},
		},
		// The status line came: Vault has seen (and deleted) the OTP, so
		// the next address must not get it, though the body never came.
		"an answer cut off mid-body stops failover": {
			addrs:   []addrSpec{{kind: "proxy", cut: true}, {kind: "proxy"}},
			wantErr: ErrVault, wantReason: "read answer (200)", wantAddr: 0, wantCalls: []int{1, 0},
		},
		"an answer (403) stops failover": {
			addrs:   []addrSpec{{kind: "proxy", status: http.StatusForbidden}, {kind: "proxy"}},
			wantErr: ErrVault, wantReason: "403", wantAddr: 0, wantCalls: []int{1, 0},
		},
		// The record names the address that answered (the active node).
		"standby redirect is followed": {
			addrs:    []addrSpec{{kind: "proxy", redirect: true}, {kind: "live"}},
			wantAddr: 1, wantCalls: []int{1, 0},
		},
		// Each hung address gets its share of the deadline: the second is
		// still tried after the first used its share.
		"all hung": {
			addrs: []addrSpec{{kind: "hung"}, {kind: "hung"}}, timeout: time.Second,
			wantErr: ErrUnreachable, wantReason: "deadline", wantAddr: -1, wantCalls: []int{1, 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(plain, mount)
			if tc.timeout != 0 {
				cfg.Timeout = tc.timeout
			}
			cfg.VaultAddrs = nil
			calls := make([]func() int32, len(tc.addrs))
			for i, a := range tc.addrs {
				var addr string
				switch a.kind {
				case "down":
					addr = downAddr(t)
				case "hung":
					h := testkit.StartHung(t)
					addr, calls[i] = "http://"+h.Addr, h.Accepted
				case "live":
					addr = plain.Addr
				case "proxy":
					p, u := proxyTo(t, plain)
					p.status, p.message, p.cut = a.status, a.message, a.cut
					if a.redirect {
						p.redirect = plain.Addr
					}
					addr, calls[i] = u, p.verifies.Load
				default:
					t.Fatalf("address kind %q", a.kind)
				}
				cfg.VaultAddrs = append(cfg.VaultAddrs, addr)
			}
			password := tc.password
			if password == "" {
				password = issue(t, plain, mount, "web", "alice", "10.9.8.7")
			}

			r := login(t, cfg, "alice", password)
			if tc.wantErr == nil && r.err != nil || tc.wantErr != nil && !errors.Is(r.err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", r.err, tc.wantErr)
			}
			if !strings.Contains(r.rec.Reason, tc.wantReason) {
				t.Errorf("reason %q, want it to contain %q", r.rec.Reason, tc.wantReason)
			}
			wantAddr := ""
			if tc.wantAddr >= 0 {
				wantAddr = cfg.VaultAddrs[tc.wantAddr]
			}
			if r.rec.VaultAddr != wantAddr {
				t.Errorf("recorded vault_addr %q, want %q (address %d)", r.rec.VaultAddr, wantAddr, tc.wantAddr)
			}
			for i, n := range calls {
				if n == nil {
					continue
				}
				// A hung server counts a connection when its accept loop
				// gets to it, which may be just after the helper gave up.
				if tc.addrs[i].kind == "hung" {
					for range 1000 {
						if n() >= int32(tc.wantCalls[i]) {
							break
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
				if got := n(); got != int32(tc.wantCalls[i]) {
					t.Errorf("address %d (%s) got %d requests, want exactly %d", i, tc.addrs[i].kind, got, tc.wantCalls[i])
				}
			}
		})
	}
}

// downAddr is an http address where nothing listens.
func downAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	return addr
}

func TestTOTP(t *testing.T) {
	c := plain.Client
	mount := fmt.Sprintf("totp-%d", mountSeq.Add(1))
	if err := c.Sys().Mount(mount, &api.MountInput{Type: "totp"}); err != nil {
		t.Fatal(err)
	}
	const seed = "JBSWY3DPEHPK3PXP"
	if _, err := c.Logical().Write(mount+"/keys/ssh-alice", map[string]any{"key": seed, "generate": false, "issuer": "latchkey", "account_name": "alice"}); err != nil {
		t.Fatal(err)
	}
	// A token that may only check codes, as the agent's sink would hold.
	if err := c.Sys().PutPolicy("totp-check", fmt.Sprintf(`path "%s/code/*" { capabilities = ["update"] }`, mount)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"totp-check"}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := t.TempDir() + "/token"
	writeFileT(t, tokenFile, tok.Auth.ClientToken+"\n")

	cfg := testConfig(plain, "ssh")
	cfg.Mode, cfg.TOTPMount, cfg.TOTPKeyPattern, cfg.TokenFile = ModeTOTP, mount, "ssh-{{user}}", tokenFile

	code := func(at time.Time) string { return totptest.Code(seed, at) }
	now := time.Now()
	if r := login(t, cfg, "alice", code(now)); r.err != nil {
		t.Fatalf("current code: %v", r.err)
	}
	if r := login(t, cfg, "alice", code(now)); !errors.Is(r.err, ErrDenied) {
		t.Errorf("reused code: %v", r.err)
	}
	if r := login(t, cfg, "alice", code(now.Add(-10*time.Minute))); !errors.Is(r.err, ErrDenied) {
		t.Errorf("stale code: %v", r.err)
	}
	if r := login(t, cfg, "bob", code(now)); r.err == nil {
		t.Error("a user without a key got in")
	}
	if r := login(t, cfg, "alice", "12ab56"); !errors.Is(r.err, ErrDenied) {
		t.Errorf("non-digits: %v", r.err)
	}
	// A token Vault no longer accepts is the operator's problem, not a
	// wrong code: it must not read as "denied".
	if err := c.Auth().Token().RevokeTree(tok.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	if r := login(t, cfg, "alice", code(time.Now())); !errors.Is(r.err, ErrVault) || errors.Is(r.err, ErrDenied) ||
		!strings.Contains(r.rec.Reason, "403") {
		t.Errorf("revoked token: %v (reason %q)", r.err, r.rec.Reason)
	} else if strings.Contains(r.err.Error(), tok.Auth.ClientToken) {
		t.Error("the error holds the token")
	}
	cfg.TokenFile = t.TempDir() + "/missing"
	if r := login(t, cfg, "alice", code(now)); r.err == nil || !strings.Contains(r.err.Error(), "token_file") {
		t.Errorf("missing token file: %v", r.err)
	}
}
