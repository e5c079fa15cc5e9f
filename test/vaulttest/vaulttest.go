// Package vaulttest runs a real `vault server -dev` for integration tests:
// on a free loopback port, with a random root token, in a temporary
// directory, over plain HTTP or TLS. The binary is bin/vault, built from the
// test/vault module by `make vault`; tests fail (never skip) without it.
//
// One server per test package keeps the suite fast:
//
//	var srv *vaulttest.Server
//
//	func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }
//
// Tests isolate themselves by mount path. A test that needs a server of its
// own (to stop it, say) calls StartT.
package vaulttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// Options shape one server.
type Options struct {
	// TLS serves https with a CA and certificate made by `-dev-tls`.
	TLS bool
	// Env is added to the server's environment (e.g. HTTPS_PROXY and
	// SSL_CERT_FILE to reach a fake cloud API). VAULT_* variables of the
	// test process are never passed on.
	Env []string
	// Args are extra `vault server` arguments.
	Args []string
}

// Server is a running dev server.
type Server struct {
	// Addr is the server's URL: http://127.0.0.1:PORT or https://127.0.0.1:PORT.
	Addr string
	// Port is the API port; the dev server also holds Port+1 for cluster traffic.
	Port int
	// RootToken is the dev root token.
	RootToken string
	// CACert is the PEM file of the CA that signed the server's certificate
	// ("" without TLS).
	CACert string
	// Client is an api client holding the root token.
	Client *api.Client
	// Dir is the server's temporary directory; LogFile holds its output.
	Dir, LogFile string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set when the process exited, read after done is closed
}

// Spec asks Main for one server, stored in *Into.
type Spec struct {
	Options
	Into **Server
}

// Main starts one server per spec, runs the package's tests, stops the
// servers and exits with the tests' code. A server that cannot start fails
// the whole package with a message on stderr.
func Main(m *testing.M, specs ...Spec) {
	os.Exit(Run(m, specs...))
}

// Run is Main without the exit: it returns the code to exit with, so that
// a TestMain can remove what it made before the tests after them. After
// the tests it runs the package's secret scan (test/testkit/secretscan):
// a captured log that holds a secret the tests issued makes the code 1.
func Run(m *testing.M, specs ...Spec) int {
	var started []*Server
	stopAll := func() {
		for _, s := range started {
			s.Stop()
		}
	}
	for _, sp := range specs {
		s, err := Start(sp.Options)
		if err != nil {
			stopAll()
			fmt.Fprintf(os.Stderr, "vaulttest: %v\n", err)
			return 1
		}
		started = append(started, s)
		*sp.Into = s
	}
	code := m.Run()
	stopAll()
	// No log the tests captured may hold a secret they issued.
	return secretscan.Finish(code, os.Stderr)
}

// StartT starts a server of the test's own, stopped when the test ends.
// A failure to start fails the test.
func StartT(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// Start starts a dev server and returns once it answers sys/health as
// initialized and unsealed. The caller must Stop it; should the test process
// die without doing so, the kernel kills the server (PR_SET_PDEATHSIG).
func Start(opts Options) (*Server, error) {
	bin, err := BinPath()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(bin, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

func start(bin string, opts Options) (*Server, error) {
	port, err := FreePortPair()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vaulttest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Port: port, RootToken: "root-" + randomHex(12), Dir: dir, LogFile: filepath.Join(dir, "vault.log")}
	secretscan.Remember(s.RootToken)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"server", "-dev",
		"-dev-root-token-id=" + s.RootToken,
		"-dev-listen-address=" + listen,
		"-dev-no-store-token",
		"-log-level=info",
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
		certDir := filepath.Join(dir, "tls")
		if err := os.Mkdir(certDir, 0o700); err != nil {
			return nil, err
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
		s.CACert = filepath.Join(certDir, "vault-ca.pem")
	}
	args = append(args, opts.Args...)
	s.Addr = scheme + "://" + listen

	if err := s.spawn(bin, args, opts.Env); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// spawn starts bin with args in s.Dir, its output appended to s.LogFile,
// and sets s.cmd and s.done (closed when the process exits). The kernel
// kills the process should the test process die (PR_SET_PDEATHSIG).
func (s *Server) spawn(bin string, args, env []string) error {
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Env = serverEnv(s.Dir, env)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() {
		s.err = cmd.Wait()
		close(done)
	}()
	return nil
}

// serverEnv is the test process's environment without VAULT_* (a developer's
// VAULT_ADDR must not leak into the server), with HOME in the server's
// directory, plus extra.
func serverEnv(dir string, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+dir)
	return append(env, extra...)
}

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.done:
			tail := s.logTail(40)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("vault server on %s: %w", s.Addr, errPortTaken)
			}
			return fmt.Errorf("vault server exited early (%v); its log:\n%s", s.err, tail)
		default:
		}
		var clientErr error
		if s.Client == nil && (s.CACert == "" || fileExists(s.CACert)) {
			// Vault writes the CA file in place: it can exist and still be
			// empty or partial, so a failure here is retried, not final.
			s.Client, clientErr = s.NewClient(s.RootToken)
		}
		if s.Client != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			h, err := s.Client.Sys().HealthWithContext(ctx)
			cancel()
			if err == nil && h.Initialized && !h.Sealed {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if clientErr != nil {
				return fmt.Errorf("vault server on %s: client: %w", s.Addr, clientErr)
			}
			return fmt.Errorf("vault server on %s not healthy after %s; its log:\n%s", s.Addr, limit, s.logTail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClientConfig returns the settings that reach this server (address and,
// with TLS, its CA), as the product's config would carry them.
func (s *Server) ClientConfig() vaultclient.Config {
	return vaultclient.Config{Address: s.Addr, CACert: s.CACert, Timeout: 10 * time.Second, MaxRetries: vaultclient.Int(0)}
}

// NewClient returns a new vault/api client of this server (for setting
// Vault up; the agent's own client is vaultclient's) holding token ("" =
// none), ignoring the VAULT_* environment.
func (s *Server) NewClient(token string) (*api.Client, error) {
	cfg := s.ClientConfig()
	ac := api.DefaultConfig()
	ac.Error = nil
	ac.Address = cfg.Address
	ac.Timeout = cfg.Timeout
	ac.MaxRetries = *cfg.MaxRetries
	ac.AgentAddress = ""
	if cfg.CACert != "" {
		if err := ac.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("vault client TLS: %w", err)
		}
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, err
	}
	c.ClearNamespace()
	c.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	c.SetToken(token)
	return observe(c), nil
}

// AgentClient returns the agent's kind of client of this server holding
// token ("" = none).
func (s *Server) AgentClient(tb testing.TB, token string) *vaultclient.Client {
	tb.Helper()
	c, err := vaultclient.New(s.ClientConfig())
	if err != nil {
		tb.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// PID returns the server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server (SIGTERM, then SIGKILL after 5 s) and removes its
// directory. It is safe to call more than once.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	s.halt(syscall.SIGTERM, 5*time.Second)
	if s.Dir != "" {
		os.RemoveAll(s.Dir)
	}
	return nil
}

// halt sends sig to a running server and waits up to grace for it to exit,
// then kills it; it returns once the process is gone, keeping its directory.
func (s *Server) halt(sig syscall.Signal, grace time.Duration) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	// A stopped process (SIGSTOP) acts on no signal but SIGKILL until it runs.
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Stopped reports whether the server process has exited.
func (s *Server) Stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Log returns the server's output so far (for failure messages).
func (s *Server) Log() string { return s.logTail(0) }

func (s *Server) logTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if n <= 0 {
		return string(b)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// HTTPClient returns a plain http.Client that trusts this server (for tests
// that speak the wire protocol directly).
func (s *Server) HTTPClient() *http.Client {
	return s.Client.CloneConfig().HttpClient
}

// FreePortPair returns a loopback port p such that p and p+1 were both free
// (a dev server binds p+1 for cluster traffic).
func FreePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, errors.New("no free pair of loopback ports")
}

// BinPath returns the Vault binary to run: $LATCHKEY_VAULT_BIN, else
// bin/vault at the repository root. It is an error, saying to run
// `make vault`, when the binary is missing.
func BinPath() (string, error) {
	if p := os.Getenv("LATCHKEY_VAULT_BIN"); p != "" {
		if !fileExists(p) {
			return "", fmt.Errorf("LATCHKEY_VAULT_BIN=%s does not exist: run `make vault`", p)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "vault")
	if !fileExists(p) {
		return "", fmt.Errorf("%s is missing: run `make vault` (it builds Vault from test/vault)", p)
	}
	return p, nil
}

// RepoRoot returns the directory holding latchkey's go.mod, found upwards
// from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/latchkey/latchkey\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("latchkey's go.mod not found above the working directory")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// MountT mounts a secrets engine at path for the test and unmounts it when
// the test ends, so that tests can run again in the same server (-count).
func (s *Server) MountT(tb testing.TB, path string, in *api.MountInput) {
	tb.Helper()
	if err := s.Client.Sys().Mount(path, in); err != nil {
		tb.Fatalf("mount %s: %v", path, err)
	}
	tb.Cleanup(func() { s.Client.Sys().Unmount(path) })
}

// EnableAuthT enables an auth method at path for the test and disables it
// when the test ends.
func (s *Server) EnableAuthT(tb testing.TB, path string, in *api.EnableAuthOptions) {
	tb.Helper()
	if err := s.Client.Sys().EnableAuthWithOptions(path, in); err != nil {
		tb.Fatalf("enable auth %s: %v", path, err)
	}
	tb.Cleanup(func() { s.Client.Sys().DisableAuth(path) })
}
