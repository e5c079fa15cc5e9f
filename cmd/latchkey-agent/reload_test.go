package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/agent/runner"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// loginDelay is how long the proxy holds each login before Vault sees it:
// long enough for a SIGHUP to land while the agent waits for the answer.
const loginDelay = 4 * time.Second

// slowLogins puts a CountingProxy in front of the test Vault that holds
// each login at mount for loginDelay before forwarding it. The proxy
// forwards a request even when the agent gave up on it (Forward does not
// follow the client's context), as Vault goes on with a request it
// received: a login the agent abandons still consumes its secret id.
func slowLogins(t *testing.T, mount string) *vaulttest.CountingProxy {
	t.Helper()
	p := vaulttest.NewCountingProxy(t, srv.Addr)
	p.OnRequest = func(r *http.Request) {
		if r.URL.Path == "/v1/auth/"+mount+"/login" {
			time.Sleep(loginDelay)
		}
	}
	return p
}

// singleUseSecretID makes mount's role issue secret ids that log in once,
// and writes a fresh one into dir/secret-id.
func singleUseSecretID(t *testing.T, dir, mount string) {
	t.Helper()
	_, err := srv.Client.Logical().Write("auth/"+mount+"/role/web", map[string]any{"secret_id_num_uses": 1})
	testkit.Must(t, err)
	testkit.NewSecretID(t, srv.Client, mount, filepath.Join(dir, "secret-id"))
}

// Defect: a SIGHUP while a login was in flight cancelled it, and the new
// configuration's instance sent the same secret id again. Vault had
// already consumed the single-use secret id for the first request (and
// issued a token nobody read), so the agent was refused with 400 "invalid
// role or secret ID" forever. A reload that keeps the auth config now goes
// on with the login under way: one login request, its token in the sink.
func TestSIGHUPDuringLoginKeepsTheLogin(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-hup-inflight"
	cfg, sink := approleConfig(t, dir, mount, "")
	singleUseSecretID(t, dir, mount)
	proxy := slowLogins(t, mount)
	logins := func() int { return proxy.Count("PUT", "/v1/auth/"+mount+"/login") }
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "the login request at the proxy", func() bool { return logins() == 1 })
	time.Sleep(time.Second) // well inside loginDelay
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, going on with the login under way", 1)
	testkit.Eventually(t, "the token in the sink", func() bool { return testkit.ReadFile(sink) != "" })
	tok := testkit.ReadFile(sink)
	c, err := srv.NewClient(tok)
	testkit.Must(t, err)
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}
	// The agent is healthy: a further reload keeps that token.
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 1)
	if n := logins(); n != 1 {
		t.Errorf("%d login requests, want 1 (the secret id is single-use)", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); !os.IsNotExist(err) {
		t.Errorf("the secret id file was not removed after reading (%v)", err)
	}
	log := a.stderr.String()
	for _, bad := range []string{"login failed", "no token to keep"} {
		if strings.Contains(log, bad) {
			t.Errorf("the log says %q", bad)
		}
	}
	if got := testkit.ReadFile(sink); got != tok {
		t.Error("the second reload changed the token")
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A SIGHUP while the agent waits between failed logins (backoff) keeps
// the wait and the backoff: repeated reloads never send a login early (a
// reload loop is no login loop), and the secret id read at the first
// attempt (its file removed) is the one used once the login can succeed.
func TestSIGHUPDuringLoginBackoffKeepsTheWait(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-hup-backoff"
	cfg, sink := approleConfig(t, dir, mount, "")
	singleUseSecretID(t, dir, mount)
	// A long first backoff: only a reload that reset it would log in again
	// within the test's reloads.
	testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), "    config = {\n", "    min_backoff = \"6s\"\n    max_backoff = \"6s\"\n    config = {\n", 1))
	roleID := filepath.Join(dir, "role-id")
	good := testkit.ReadFile(roleID)
	testkit.WriteFile(t, roleID, "not-the-role-id")
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	logins := func() int { return proxy.Count("PUT", "/v1/auth/"+mount+"/login") }
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	a.logged(t, "login failed", 1)
	start := time.Now()
	for i := 1; i <= 3; i++ {
		a.signal(t, syscall.SIGHUP)
		a.logged(t, "reloaded; auth unchanged, going on with the login under way", i)
	}
	if n := logins(); n != 1 && time.Since(start) < 5*time.Second {
		t.Errorf("%d login requests after 3 reloads within the backoff, want 1", n)
	}
	if !strings.Contains(a.stderr.String(), "next login attempt in") {
		t.Error("the reload's log does not say when the next attempt is due")
	}
	// The role id is fixed; the next attempt (at the end of the backoff)
	// logs in with the secret id read at the first.
	testkit.WriteFile(t, roleID, good)
	testkit.Eventually(t, "the token in the sink", func() bool { return testkit.ReadFile(sink) != "" })
	if n := logins(); n != 2 {
		t.Errorf("%d login requests, want 2 (one refused, one after the backoff)", n)
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A SIGHUP that changes the auth config (here the Vault address moves into
// the file) while a login is in flight gives that login up and logs in
// with the new config; the token Vault still issues for the abandoned
// login is revoked, not left live with nobody holding it.
func TestSIGHUPChangingAuthDuringLoginRevokesTheAbandonedToken(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-hup-changed"
	cfg, sink := approleConfig(t, dir, mount, "") // reusable secret id
	proxy := slowLogins(t, mount)
	logins := func() int { return proxy.Count("PUT", "/v1/auth/"+mount+"/login") }
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "the login request at the proxy", func() bool { return logins() == 1 })
	testkit.WriteFile(t, cfg, fmt.Sprintf("vault {\n  address = %q\n}\n", proxy.URL)+testkit.ReadFile(cfg))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth changed, logging in again", 1)
	testkit.Eventually(t, "the new login's token in the sink", func() bool { return testkit.ReadFile(sink) != "" })
	a.logged(t, "a login given up by a reload brought a token; revoked it", 1)
	if n := proxy.Count("PUT", "/v1/auth/token/revoke-self"); n != 1 {
		t.Errorf("%d revoke-self requests, want 1", n)
	}
	if n := logins(); n != 2 {
		t.Errorf("%d login requests, want 2", n)
	}
	c, err := srv.NewClient(testkit.ReadFile(sink))
	testkit.Must(t, err)
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// SIGTERM while a login is in flight stops the agent at once (exit 0),
// not after Vault's answer: a stop is never held up by a slow Vault.
func TestSIGTERMDuringLoginStopsAtOnce(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-term-inflight"
	cfg, sink := approleConfig(t, dir, mount, "")
	proxy := slowLogins(t, mount)
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "the login request at the proxy", func() bool { return proxy.Count("PUT", "/v1/auth/"+mount+"/login") == 1 })
	begin := time.Now()
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if took := time.Since(begin); took > loginDelay/2 {
		t.Errorf("the stop took %s, waiting for the login", took)
	}
	if testkit.ReadFile(sink) != "" {
		t.Error("a token was written after SIGTERM")
	}
}

// Defect: a wrap_ttl sink was wrapped and rewritten at every SIGHUP,
// though the token was kept: each reload minted another live single-use
// wrapping of the agent's token, and woke whoever watches the file. A
// reload that keeps the token and the sink's config leaves the file alone.
func TestSIGHUPLeavesAWrappedSinkAlone(t *testing.T) {
	dir := t.TempDir()
	cfg, sink := approleConfig(t, dir, "approle-hup-wrap", "")
	testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), "  sink \"file\" {\n", "  sink \"file\" {\n    wrap_ttl = \"5m\"\n", 1))
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	wraps := func() int { return proxy.Count("PUT", "/v1/sys/wrapping/wrap") }
	n := testkit.ListenNotify(t)
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL, "NOTIFY_SOCKET="+n.Path)
	i := n.WaitFor(t, "READY=1", 0)
	content := testkit.ReadFile(sink)
	// An mtime in the past: a rewrite, however quick, moves it.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	testkit.Must(t, os.Chtimes(sink, past, past))
	before, err := os.Stat(sink)
	testkit.Must(t, err)
	for r := 1; r <= 2; r++ {
		a.signal(t, syscall.SIGHUP)
		a.logged(t, "reloaded; auth unchanged, keeping the token", r)
		i = n.WaitFor(t, "READY=1", i+1) // every sink reported written
	}
	after, err := os.Stat(sink)
	testkit.Must(t, err)
	if !os.SameFile(before, after) || !after.ModTime().Equal(past) || testkit.ReadFile(sink) != content {
		t.Errorf("a reload rewrote the wrapped sink: inode kept %v, mtime %s (was %s)", os.SameFile(before, after), after.ModTime(), past)
	}
	if w := wraps(); w != 1 {
		t.Errorf("%d wrap requests, want 1", w)
	}
	if c := strings.Count(a.stderr.String(), "token written to sink"); c != 1 {
		t.Errorf("%d× \"token written to sink\" in the log, want 1", c)
	}
	// The file still holds a live wrapping of the agent's token.
	var info api.SecretWrapInfo
	testkit.Must(t, json.Unmarshal([]byte(content), &info))
	c, err := srv.NewClient("")
	testkit.Must(t, err)
	un, err := c.Logical().Unwrap(info.Token)
	testkit.Must(t, err)
	tok, _ := un.Data["token"].(string)
	tc, err := srv.NewClient(tok)
	testkit.Must(t, err)
	if _, err := tc.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the unwrapped token does not work: %v", err)
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Defect: a reload waited for the new configuration to be ready before
// READY=1, unbounded. The unit's TimeoutStartSec=infinity (a start waits
// for Vault) times reloads too, so a reload that needed a login Vault
// refused held `systemctl reload` forever. The agent now says the reload
// is done after runner.DefaultReloadWait, logs that it is not ready yet,
// and keeps trying.
func TestReloadThatCannotBeReadyEnds(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-reload-wait"
	cfg, _ := approleConfig(t, dir, mount, "")
	n := testkit.ListenNotify(t)
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr, "NOTIFY_SOCKET="+n.Path)
	n.WaitFor(t, "READY=1", 0)
	// The new auth method's mount does not exist: every login is refused.
	testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), "auth/"+mount, "auth/approle-nowhere", 1))
	from := n.Count()
	begin := time.Now()
	a.signal(t, syscall.SIGHUP)
	r := n.WaitFor(t, "RELOADING=1", from)
	n.WaitFor(t, "READY=1", r)
	if took := time.Since(begin); took < runner.DefaultReloadWait/2 {
		t.Errorf("READY=1 %s after the reload, before any login could succeed", took)
	}
	a.logged(t, "reload applied, but the new configuration is not ready yet", 1)
	n.WaitFor(t, "STATUS=reloaded; not ready yet", r)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}
