package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) {
	vaulttest.Main(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
}

var seq atomic.Int32

// approle mounts AppRole at a fresh path with a role whose tokens live
// ttl/maxTTL, writes role and secret id files into dir and returns the
// config's auto_auth method stanza.
func approle(t *testing.T, dir, ttl, maxTTL string) (mount, stanza string) {
	t.Helper()
	mount = fmt.Sprintf("approle-%d", seq.Add(1))
	testkit.AppRole(t, srv.Client, mount, dir, map[string]any{"token_ttl": ttl, "token_max_ttl": maxTTL, "token_policies": "default"})
	stanza = fmt.Sprintf(`
  method "approle" {
    mount_path = "auth/%s"
    min_backoff = "100ms"
    max_backoff = "1s"
    config = {
      role_id_file_path = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }`, mount, filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id"))
	return mount, stanza
}

func agentConfig(t *testing.T, dir, method, extra string, sinks ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vault {\n  address = %q\n  ca_cert = %q\n}\n", srv.Addr, srv.CACert)
	fmt.Fprintf(&b, "auto_auth {%s\n", method)
	for _, s := range sinks {
		b.WriteString(s)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "latchkey {\n  state_dir = %q\n}\n%s", filepath.Join(dir, "state"), extra)
	p := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, p, b.String())
	return p
}

func fileSink(path, extra string) string {
	return fmt.Sprintf("\n  sink \"file\" {\n    %s\n    config = {\n      path = %q\n      mode = 0600\n    }\n  }\n", extra, path)
}

// notes collects sd_notify states.
type notes struct {
	mu sync.Mutex
	s  []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.s = append(n.s, s); n.mu.Unlock() }
func (n *notes) count(prefix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, s := range n.s {
		if strings.HasPrefix(s, prefix) {
			c++
		}
	}
	return c
}

func (n *notes) len() int { n.mu.Lock(); defer n.mu.Unlock(); return len(n.s) }

// firstContaining returns the first state from index from that contains
// sub, or "".
func (n *notes) firstContaining(from int, sub string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.s[from:] {
		if strings.Contains(s, sub) {
			return s
		}
	}
	return ""
}

func (n *notes) countContaining(sub string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, s := range n.s {
		if strings.Contains(s, sub) {
			c++
		}
	}
	return c
}

type running struct {
	notes *notes
	sigs  chan os.Signal
	done  chan error
}

func start(t *testing.T, cfg string, check time.Duration) *running {
	return startWith(t, cfg, check, zaptest.NewLogger(t))
}

// startWith is start with the agent logging to log.
func startWith(t *testing.T, cfg string, check time.Duration, log *zap.Logger) *running {
	r := &running{notes: &notes{}, sigs: make(chan os.Signal, 1), done: make(chan error, 1)}
	rn := &Runner{
		Paths: []string{cfg}, Getenv: func(string) string { return "" }, Logger: log,
		Signals: r.sigs, Notify: r.notes.add, CheckInterval: check,
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- rn.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return r
}

func readToken(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

func lookup(t *testing.T, tok string) (*api.Secret, error) {
	c, err := srv.NewClient(tok)
	testkit.Must(t, err)
	return c.Auth().Token().LookupSelf()
}

func TestApproleSinkReady(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "out", "token")
	testkit.Must(t, os.Mkdir(filepath.Dir(sinkPath), 0o755))
	owner := fmt.Sprintf("\n      owner = %d\n      group = %d", 65534, 65534)
	sink := strings.Replace(fileSink(sinkPath, ""), "mode = 0600", "mode = 0640"+owner, 1)
	r := start(t, agentConfig(t, dir, method, "", sink), time.Minute)

	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
	tok := readToken(t, sinkPath)
	if _, err := lookup(t, tok); err != nil {
		t.Fatalf("sink token does not work: %v", err)
	}
	fi, err := os.Stat(sinkPath)
	testkit.Must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o640 || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("sink mode %v owner %d:%d, want 0640 65534:65534", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	if r.notes.count("STATUS=authenticated with approle") == 0 {
		t.Errorf("no STATUS line: %v", r.notes.s)
	}
}

func TestExitAfterAuth(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	r := start(t, agentConfig(t, dir, method, "exit_after_auth = true\n", fileSink(sinkPath, "")), time.Minute)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("exit_after_auth: still running")
	}
	if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
		t.Fatalf("sink token: %v", err)
	}
}

// Short TTLs: the token is renewed, then at its max TTL replaced by a new login.
func TestRenewalAndReLogin(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "2s", "5s")
	sinkPath := filepath.Join(dir, "token")
	r := start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Minute)
	testkit.Eventually(t, "first token", func() bool { return readToken(t, sinkPath) != "" })
	first := readToken(t, sinkPath)
	testkit.Eventually(t, "a renewal", func() bool { return r.notes.countContaining("token renewed for") > 0 })
	testkit.Eventually(t, "a new token after max TTL", func() bool {
		tok := readToken(t, sinkPath)
		return tok != "" && tok != first
	})
	if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
		t.Fatalf("new token: %v", err)
	}
}

// A fresh login is not renewed at once (its TTL is fresh: a renewal would
// be a wasted request, which Vault Agent makes); the first renewal comes
// at about two thirds of the TTL. The check lookups show the token's
// watch running meanwhile.
func TestLoginNotRenewedAtOnce(t *testing.T) {
	dir := t.TempDir()
	mount, method := approle(t, dir, "1h", "2h")
	var mu sync.Mutex
	counts := map[string]int{}
	count := func(k string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[k]
	}
	target, err := url.Parse(srv.Addr)
	testkit.Must(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = srv.HTTPClient().Transport
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	cfg := agentConfig(t, dir, method, "", fileSink(filepath.Join(dir, "token"), ""))
	testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), srv.Addr, proxy.URL, 1))
	start(t, cfg, 50*time.Millisecond)
	testkit.Eventually(t, "the watch's lookups", func() bool { return count("GET /v1/auth/token/lookup-self") >= 3 })
	if n := count("PUT /v1/auth/token/renew-self"); n != 0 {
		t.Fatalf("%d renewals of a fresh 1 h token", n)
	}
	if n := count("PUT /v1/auth/" + mount + "/login"); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

// A batch token cannot be renewed: the agent logs in again by itself
// before it expires (not after a 403) — also when a reload kept it, whose
// watcher must go by the time the token has left, not by the TTL its
// login reported.
func TestNonRenewableTokenReplacedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name   string
		ttl    time.Duration
		reload bool
	}{
		{"batch token", 4 * time.Second, false},
		{"batch token kept across a reload", 10 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mount, method := approle(t, dir, tc.ttl.String(), tc.ttl.String())
			_, err := srv.Client.Logical().Write("auth/"+mount+"/role/web", map[string]any{"token_type": "batch"})
			testkit.Must(t, err)
			sinkPath := filepath.Join(dir, "token")
			log, logs := testkit.Observed(t)
			r := startWith(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Minute, log)
			testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
			first := readToken(t, sinkPath)
			s, err := lookup(t, first)
			testkit.Must(t, err)
			if renewable, _ := s.TokenIsRenewable(); s.Data["type"] != "batch" || renewable {
				t.Fatalf("token type %v renewable %v, want a batch token", s.Data["type"], renewable)
			}

			if tc.reload {
				// Half its life gone: a watcher going by the login's TTL
				// would now outlive the token.
				testkit.Eventually(t, "half the token's TTL gone", func() bool {
					s, err := lookup(t, first)
					left, _ := s.TokenTTL()
					return err == nil && left <= tc.ttl/2
				})
				from := r.notes.len()
				r.sigs <- syscall.SIGHUP
				testkit.Eventually(t, "READY=1 after the reload", func() bool { return r.notes.count("READY=1") == 2 })
				// The token's watcher sends its STATUS= line from its own
				// goroutine: before or just after READY=1.
				testkit.Eventually(t, "the kept token's STATUS= line", func() bool { return r.notes.firstContaining(from, "token expires in ") != "" })
				status := r.notes.firstContaining(from, "token expires in ")
				_, after, found := strings.Cut(status, "token expires in ")
				left, err := time.ParseDuration(strings.SplitN(after, " ", 2)[0])
				if !found || err != nil || left > tc.ttl/2 {
					t.Errorf("after the reload: %q, want the time the token has left (at most %s)", status, tc.ttl/2)
				}
			}

			testkit.Eventually(t, "a new token", func() bool {
				tok := readToken(t, sinkPath)
				return tok != "" && tok != first
			})
			// The re-login came before the old token's end (Vault's own
			// expire_time; the agent's log clock is the same machine's), so
			// nothing used an expired token. Checking the old token from here
			// instead would race the test's polling against the watcher's grace.
			expires, err := time.Parse(time.RFC3339Nano, fmt.Sprint(s.Data["expire_time"]))
			testkit.Must(t, err)
			if e := logs.FilterMessage("logging in again").All(); len(e) > 0 && !e[0].Time.Before(expires) {
				t.Errorf("logged in again at %s, after the old token expired at %s", e[0].Time, expires)
			}
			if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
				t.Fatalf("new token: %v", err)
			}
			relogins := logs.FilterMessage("logging in again").All()
			if len(relogins) == 0 {
				t.Fatal("no 'logging in again' in the log")
			}
			for _, e := range relogins {
				if reason := e.ContextMap()["reason"]; reason != "token reached its max TTL or stopped being renewable" {
					t.Errorf("logged in again because %q, want the token's end (not a refusal)", reason)
				}
			}
		})
	}
}

// A kept token revoked before the reload is not watched: the reload looks
// it up and logs in again at once.
func TestReloadKeepsNoRevokedToken(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	log, logs := testkit.Observed(t)
	r := startWith(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Hour, log)
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
	first := readToken(t, sinkPath)
	testkit.Must(t, srv.Client.Auth().Token().RevokeTree(first))
	r.sigs <- syscall.SIGHUP
	testkit.Eventually(t, "a new token after the reload", func() bool {
		tok := readToken(t, sinkPath)
		return tok != "" && tok != first
	})
	if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
		t.Fatalf("new token: %v", err)
	}
	if logs.FilterField(zap.String("reason", "the kept token no longer works (lookup-self: permission denied)")).Len() != 1 {
		t.Errorf("re-logins: %v", logs.FilterMessage("logging in again").All())
	}
}

func TestTimeLeft(t *testing.T) {
	login := &vaultclient.Secret{Auth: &vaultclient.SecretAuth{ClientToken: "hvs.x", LeaseDuration: 3600, Renewable: true}}
	tests := []struct {
		name   string
		keep   *vaultclient.Secret
		expiry time.Time
		want   int // LeaseDuration; -1: nil
	}{
		{"no token kept", nil, time.Now().Add(time.Hour), -1},
		{"never expires", login, time.Time{}, 3600},
		{"half gone", login, time.Now().Add(30*time.Minute + 30*time.Second), 1800},
		{"expired", login, time.Now().Add(-time.Second), -1},
		{"less than a second left", login, time.Now().Add(500 * time.Millisecond), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := timeLeft(tc.keep, tc.expiry)
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("got a token with %ds, want none", got.Auth.LeaseDuration)
			case tc.want < 0:
			case got == nil:
				t.Fatal("got none")
			case got.Auth.LeaseDuration < tc.want || got.Auth.LeaseDuration > tc.want+30 || got.Auth.ClientToken != "hvs.x" || !got.Auth.Renewable:
				t.Errorf("got %+v, want %ds left", got.Auth, tc.want)
			}
		})
	}
	if login.Auth.LeaseDuration != 3600 {
		t.Error("timeLeft changed the login it was given")
	}
}

func TestRevokedTokenReLogin(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), 200*time.Millisecond)
	testkit.Eventually(t, "first token", func() bool { return readToken(t, sinkPath) != "" })
	first := readToken(t, sinkPath)
	testkit.Must(t, srv.Client.Auth().Token().RevokeTree(first))
	testkit.Eventually(t, "a new token after revocation", func() bool {
		tok := readToken(t, sinkPath)
		return tok != "" && tok != first
	})
}

func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sink1 := filepath.Join(dir, "token1")
	cfg := agentConfig(t, dir, method, "", fileSink(sink1, ""))
	r := start(t, cfg, time.Minute)
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
	tok := readToken(t, sink1)
	// An mtime in the past: a rewrite, however quick, moves it.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	testkit.Must(t, os.Chtimes(sink1, past, past))
	before, err := os.Stat(sink1)
	testkit.Must(t, err)

	// A new sink, same auth: the token is kept and written to the new sink.
	sink2 := filepath.Join(dir, "token2")
	agentConfig(t, dir, method, "", fileSink(sink1, ""), fileSink(sink2, ""))
	for i := 0; i < 3; i++ { // repeated SIGHUPs are safe
		r.sigs <- syscall.SIGHUP
		testkit.Eventually(t, "RELOADING=1", func() bool { return r.notes.count("RELOADING=1") == i+1 })
		testkit.Eventually(t, "READY=1 again", func() bool { return r.notes.count("READY=1") == i+2 })
	}
	if got := readToken(t, sink2); got != tok {
		t.Errorf("after reload sink2 has another token (kept: %v)", got == tok)
	}
	if readToken(t, sink1) != tok {
		t.Error("token changed on a reload that did not change auth")
	}
	// ...and the sink that already held it was left alone.
	after, err := os.Stat(sink1)
	testkit.Must(t, err)
	if !os.SameFile(before, after) || !after.ModTime().Equal(past) {
		t.Errorf("reload rewrote %s: inode kept %v, mtime %s (was %s)", sink1, os.SameFile(before, after), after.ModTime(), past)
	}

	// A broken config: the agent keeps running with the old one.
	testkit.WriteFile(t, cfg, "auto_auth {\n")
	r.sigs <- syscall.SIGHUP
	testkit.Eventually(t, "reload failure status", func() bool { return r.notes.count("STATUS=reload failed") == 1 })

	// Another auth mount: a new login.
	_, method2 := approle(t, dir, "1h", "2h")
	agentConfig(t, dir, method2, "", fileSink(sink1, ""))
	r.sigs <- syscall.SIGHUP
	testkit.Eventually(t, "a new token after an auth change", func() bool {
		got := readToken(t, sink1)
		return got != "" && got != tok
	})
}

func TestTokenFileBatchToken(t *testing.T) {
	dir := t.TempDir()
	s, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{Type: "batch", TTL: "1h", Policies: []string{"default"}, NoParent: true})
	if err != nil {
		// Batch tokens need an orphan-capable parent: the root token is.
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "in-token")
	testkit.WriteFile(t, tokFile, s.Auth.ClientToken+"\n")
	method := fmt.Sprintf("\n  method \"token_file\" {\n    config = { token_file_path = %q }\n  }", tokFile)
	sinkPath := filepath.Join(dir, "token")
	r := start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Minute)
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
	if readToken(t, sinkPath) != s.Auth.ClientToken {
		t.Error("sink does not hold the batch token")
	}
}

func TestWrapTTLSink(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "wrapped")
	start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, `wrap_ttl = "5m"`)), time.Minute)
	testkit.Eventually(t, "wrapped token", func() bool { return readToken(t, sinkPath) != "" })
	var info api.SecretWrapInfo
	testkit.Must(t, json.Unmarshal([]byte(readToken(t, sinkPath)), &info))
	c, err := srv.NewClient("")
	testkit.Must(t, err)
	un, err := c.Logical().Unwrap(info.Token)
	testkit.Must(t, err)
	tok, _ := un.Data["token"].(string)
	if _, err := lookup(t, tok); err != nil {
		t.Fatalf("unwrapped token: %v", err)
	}
}

func TestExitOnErr(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	testkit.WriteFile(t, filepath.Join(dir, "role-id"), "not-a-role-id")
	method = strings.Replace(method, `max_backoff = "1s"`, "max_backoff = \"1s\"\n    exit_on_err = true", 1)
	r := start(t, agentConfig(t, dir, method, "", fileSink(filepath.Join(dir, "token"), "")), time.Minute)
	select {
	case err := <-r.done:
		if !errors.Is(err, auth.ErrLogin) {
			t.Fatalf("error = %v, want ErrLogin", err)
		}
		r.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("exit_on_err: still running")
	}
}

// Without exit_on_err a failed login is retried (and said so in STATUS)
// until it succeeds: here once the role id file is put right.
func TestLoginRetriedUntilFixed(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	roleID := filepath.Join(dir, "role-id")
	good, err := os.ReadFile(roleID)
	testkit.Must(t, err)
	testkit.WriteFile(t, roleID, "not-a-role-id")
	sinkPath := filepath.Join(dir, "token")
	r := start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Minute)
	testkit.Eventually(t, "a retry STATUS", func() bool { return r.notes.count("STATUS=login failed, retrying in ") >= 2 })
	if r.notes.count("READY=1") != 0 || readToken(t, sinkPath) != "" {
		t.Fatal("READY=1 or a token without a login")
	}
	testkit.WriteFile(t, roleID, string(good))
	testkit.Eventually(t, "READY=1 after the fix", func() bool { return r.notes.count("READY=1") == 1 })
	if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
		t.Fatalf("sink token: %v", err)
	}
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		t.Fatalf("the agent stopped: %v", err)
	default:
	}
}

// The real sd_notify path: NOTIFY_SOCKET names a unix datagram socket.
func TestSdNotifySocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	testkit.Must(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	rn := &Runner{Paths: []string{agentConfig(t, dir, method, "", fileSink(sinkPath, ""))}, Getenv: func(string) string { return "" },
		Logger: zaptest.NewLogger(t), Signals: make(chan os.Signal)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rn.Run(ctx, nil) }()
	var got []string
	buf := make([]byte, 4096)
	for !contains(got, "READY=1") {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		testkit.Must(t, err)
		got = append(got, string(buf[:n]))
	}
	if readToken(t, sinkPath) == "" {
		t.Error("READY=1 before the sink was written")
	}
	cancel()
	testkit.Must(t, <-done)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !contains(got, "STOPPING=1") {
		n, err := conn.Read(buf)
		testkit.Must(t, err)
		got = append(got, string(buf[:n]))
	}
	if !contains(got, "STATUS=") {
		t.Errorf("no STATUS= among %q", got)
	}
}

func contains(xs []string, prefix string) bool {
	for _, x := range xs {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}

func TestApproleWrappedSecretID(t *testing.T) {
	dir := t.TempDir()
	mount, method := approle(t, dir, "1h", "2h")
	wc, err := srv.Client.Clone()
	testkit.Must(t, err)
	wc.SetToken(srv.RootToken)
	wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	w, err := wc.Logical().Write("auth/"+mount+"/role/web/secret-id", nil)
	testkit.Must(t, err)
	testkit.WriteFile(t, filepath.Join(dir, "secret-id"), w.WrapInfo.Token)
	method = strings.Replace(method, "remove_secret_id_file_after_reading = false",
		fmt.Sprintf("secret_id_response_wrapping_path = %q", "auth/"+mount+"/role/web/secret-id"), 1)
	sinkPath := filepath.Join(dir, "token")
	start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Minute)
	testkit.Eventually(t, "a token from the wrapped secret id", func() bool { return readToken(t, sinkPath) != "" })
	if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
		t.Fatalf("token: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("secret id file kept: %v", err)
	}
}

func TestApproleRefusesAWrappingTokenFromElsewhere(t *testing.T) {
	dir := t.TempDir()
	mount, method := approle(t, dir, "1h", "2h")
	wc, err := srv.Client.Clone()
	testkit.Must(t, err)
	wc.SetToken(srv.RootToken)
	wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	w, err := wc.Logical().Write("sys/wrapping/wrap", map[string]any{"secret_id": "chosen-by-an-attacker"})
	testkit.Must(t, err)
	testkit.WriteFile(t, filepath.Join(dir, "secret-id"), w.WrapInfo.Token)
	method = strings.Replace(method, "remove_secret_id_file_after_reading = false",
		fmt.Sprintf("secret_id_response_wrapping_path = %q", "auth/"+mount+"/role/web/secret-id"), 1)
	method = strings.Replace(method, `max_backoff = "1s"`, "max_backoff = \"1s\"\n    exit_on_err = true", 1)
	r := start(t, agentConfig(t, dir, method, "", fileSink(filepath.Join(dir, "token"), "")), time.Minute)
	var runErr error
	select {
	case runErr = <-r.done:
		r.done <- runErr
	case <-time.After(30 * time.Second):
		t.Fatal("agent kept running")
	}
	if runErr == nil || !strings.Contains(runErr.Error(), `the wrapping token was created at "sys/wrapping/wrap"`) {
		t.Fatalf("Run = %v", runErr)
	}
}

// A sink that cannot be written is retried (and logged) until it can; the
// agent keeps running and is not READY until then.
func TestSinkRetriedUntilWritable(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkDir := filepath.Join(dir, "not-yet")
	sinkPath := filepath.Join(sinkDir, "token")
	r := start(t, agentConfig(t, dir, method, "", fileSink(sinkPath, "")), time.Minute)
	testkit.Eventually(t, "a login", func() bool { return r.notes.countContaining("authenticated with") > 0 })
	if r.notes.count("READY=1") != 0 {
		t.Fatal("READY=1 before the sink was written")
	}
	testkit.Must(t, os.Mkdir(sinkDir, 0o755))
	testkit.Eventually(t, "the sink written after its directory appeared", func() bool { return readToken(t, sinkPath) != "" })
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
}

// A reload is done (READY=1) when the new configuration is ready or after
// ReloadWait, whichever is first; the start is never cut short. Each
// reload gets its own wait, also one after a wait that ran out.
func TestReloadWaitIsBounded(t *testing.T) {
	dir := t.TempDir()
	_, good := approle(t, dir, "1h", "2h")
	bad := strings.Replace(good, `mount_path = "auth/`, `mount_path = "auth/nowhere-`, 1)
	sink := filepath.Join(dir, "token")
	cfg := agentConfig(t, dir, bad, "", fileSink(sink, ""))
	n := &notes{}
	sigs := make(chan os.Signal, 1)
	rn := &Runner{Paths: []string{cfg}, Getenv: func(string) string { return "" }, Logger: zaptest.NewLogger(t),
		Signals: sigs, Notify: n.add, CheckInterval: time.Minute, ReloadWait: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rn.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	ready := func() int { return n.count("READY=1") }
	reload := func(reloads int) {
		t.Helper()
		sigs <- syscall.SIGHUP
		testkit.Eventually(t, "RELOADING=1", func() bool { return n.count("RELOADING=1") == reloads })
	}

	// A start that cannot log in: a reload then is part of the start.
	reload(1)
	time.Sleep(time.Second)
	if ready() != 0 {
		t.Fatal("READY=1 before the first login")
	}
	agentConfig(t, dir, good, "", fileSink(sink, ""))
	reload(2)
	testkit.Eventually(t, "READY=1 after the first login", func() bool { return ready() == 1 })

	agentConfig(t, dir, bad, "", fileSink(sink, ""))
	for i, want := range []int{2, 3} { // each reload ends, the second too
		reload(3 + i)
		testkit.Eventually(t, "READY=1 after the wait", func() bool { return ready() == want })
	}
	if c := n.countContaining("STATUS=reloaded; not ready yet"); c != 2 {
		t.Errorf("%d not-ready statuses, want 2", c)
	}
	// A refused reload ends at once.
	testkit.WriteFile(t, cfg, "auto_auth {\n")
	reload(5)
	testkit.Eventually(t, "READY=1 after a refused reload", func() bool { return ready() == 4 })
	// Ready again: READY=1 once more.
	agentConfig(t, dir, good, "", fileSink(sink, ""))
	reload(6)
	testkit.Eventually(t, "READY=1 once the new login is there", func() bool { return ready() == 5 })
	time.Sleep(500 * time.Millisecond)
	if ready() != 5 {
		t.Errorf("READY=1 %d times, want 5", ready())
	}
}

// adoptingComp adopts a predecessor of its own kind (same kind field).
type adoptingComp struct {
	Component
	kind    string
	adopted []any
}

func (a *adoptingComp) Adopt(prev any) bool {
	if p, ok := prev.(*adoptingComp); ok && p.kind == a.kind {
		a.adopted = append(a.adopted, prev)
		return true
	}
	return false
}

// adopt hands a returning component the newest leftover of its kind only,
// and keeps the others for the runner to finish.
func TestAdoptTakesTheNewestOfItsKind(t *testing.T) {
	other := &adoptingComp{kind: "sshtrust"}
	older := &adoptingComp{kind: "templates"}
	newer := &adoptingComp{kind: "templates"}
	tests := []struct {
		name      string
		c         Component
		leftover  []Component
		wantLeft  []Component
		wantTaken []any
	}{
		{"none left", &adoptingComp{kind: "templates"}, nil, nil, nil},
		{"another kind only", &adoptingComp{kind: "templates"}, []Component{other}, []Component{other}, nil},
		{"the newest of its kind", &adoptingComp{kind: "templates"}, []Component{older, other, newer}, []Component{older, other}, []any{newer}},
		{"not an Adopter", nopComp{}, []Component{older}, []Component{older}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Component(nil), tt.leftover...)
			left := adopt(tt.c, in)
			if !reflect.DeepEqual(left, tt.wantLeft) && !(len(left) == 0 && len(tt.wantLeft) == 0) {
				t.Errorf("left %v, want %v", left, tt.wantLeft)
			}
			if a, ok := tt.c.(*adoptingComp); ok && !reflect.DeepEqual(a.adopted, tt.wantTaken) {
				t.Errorf("adopted %v, want %v", a.adopted, tt.wantTaken)
			}
			if tt.name == "the newest of its kind" && in[2] != newer {
				t.Error("adopt changed the caller's slice beyond the adopted element's removal")
			}
		})
	}
}

type nopComp struct{ Component }
