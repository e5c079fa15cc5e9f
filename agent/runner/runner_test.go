package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }

// notes records sd_notify states.
type notes struct {
	mu  sync.Mutex
	all []string
}

func (n *notes) notify(s string) {
	n.mu.Lock()
	n.all = append(n.all, s)
	n.mu.Unlock()
}

func (n *notes) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.all...)
}

// waitFor polls until a state starting with prefix was sent (after skip
// earlier ones) and returns its index.
func (n *notes) waitFor(t *testing.T, prefix string, from int) int {
	t.Helper()
	var found int = -1
	poll(t, "sd_notify "+prefix, func() bool {
		for i, s := range n.list() {
			if i >= from && strings.HasPrefix(s, prefix) {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// poll waits (generously) for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// approle enables an approle mount with one role "web" and returns the
// role_id and secret_id files.
func approle(t *testing.T, dir, mount string, role map[string]any) (roleIDFile, secretIDFile string) {
	t.Helper()
	c := srv.Client
	if err := c.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/"+mount+"/role/web", role); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/" + mount + "/role/web/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.Logical().Write("auth/"+mount+"/role/web/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	roleIDFile, secretIDFile = filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	writeFile(t, roleIDFile, rid.Data["role_id"].(string)+"\n")
	writeFile(t, secretIDFile, sid.Data["secret_id"].(string)+"\n")
	return roleIDFile, secretIDFile
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// loader parses the HCL src (with %s for the vault address) like the CLI.
func loader(t *testing.T, dir string, src *string) func() (*config.Config, error) {
	return func() (*config.Config, error) {
		path := filepath.Join(dir, "agent.hcl")
		body := fmt.Sprintf("vault {\n address = %q\n}\nlatchkey {\n state_dir = %q\n}\n", srv.Addr, filepath.Join(dir, "state")) + *src
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return nil, err
		}
		cfg, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		return cfg, cfg.Validate()
	}
}

type running struct {
	r     *Runner
	notes *notes
	done  chan error
}

func startRunner(t *testing.T, load func() (*config.Config, error), factory RendererFactory) *running {
	t.Helper()
	n := &notes{}
	r := New(Options{Load: load, Logger: zaptest.NewLogger(t), Notify: n.notify, NewRenderer: factory})
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{r: r, notes: n, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-run.done:
		case <-time.After(30 * time.Second):
			t.Error("runner did not stop")
		}
	})
	return run
}

func lookup(t *testing.T, token string) (*api.Secret, error) {
	t.Helper()
	c, err := srv.NewClient(token)
	if err != nil {
		t.Fatal(err)
	}
	return c.Auth().Token().LookupSelf()
}

func TestApproleSinkModeOwnerAndReadiness(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := approle(t, dir, "approle-sink", map[string]any{"token_ttl": "1h", "token_policies": "default"})
	sinkPath := filepath.Join(dir, "token")
	src := fmt.Sprintf(`auto_auth {
  method "approle" {
    mount_path = "auth/approle-sink"
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" {
    config = {
      path  = %q
      mode  = 0604
      owner = "nobody"
      group = "nogroup"
    }
  }
}
`, roleID, secretID, sinkPath)
	run := startRunner(t, loader(t, dir, &src), nil)
	run.notes.waitFor(t, "READY=1", 0)

	token := readFile(t, sinkPath)
	if _, err := lookup(t, token); err != nil {
		t.Fatalf("sink token does not work: %v", err)
	}
	fi, err := os.Stat(sinkPath)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o604 || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("sink mode %v owner %d:%d, want 0604 nobody:nogroup", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	if _, err := os.Stat(secretID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("secret_id file still there (remove_secret_id_file_after_reading defaults to true): %v", err)
	}
	// READY=1 came after a STATUS naming the role.
	ready := run.notes.waitFor(t, "READY=1", 0)
	status := run.notes.waitFor(t, "STATUS=authenticated with approle role \"web\", token renews in", 0)
	if status > ready {
		t.Errorf("STATUS came after READY: %q", run.notes.list())
	}
	if fi, err := os.Stat(filepath.Join(dir, "state")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi, err)
	}
}

// userRenderer stands in for agent/template: it uses the token for a
// request every 100ms, so that a revoked token is seen by a user.
type userRenderer struct {
	tokens   *auth.Tokens
	ready    chan struct{}
	once     sync.Once
	requests int
	mu       sync.Mutex
}

func (u *userRenderer) Run(ctx context.Context) error {
	for {
		if c, err := u.tokens.Client(); err == nil {
			if _, err := c.Logical().ReadWithContext(ctx, "auth/token/lookup-self"); err == nil {
				u.once.Do(func() { close(u.ready) })
			}
			u.mu.Lock()
			u.requests++
			u.mu.Unlock()
		}
		if !auth.Sleep(ctx, 100*time.Millisecond) {
			return nil
		}
	}
}

func (u *userRenderer) Ready() <-chan struct{} { return u.ready }

func TestReloginWhenAUserSeesTheTokenRevoked(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := approle(t, dir, "approle-revoke", map[string]any{"token_ttl": "1h"})
	sinkPath := filepath.Join(dir, "token")
	src := fmt.Sprintf(`auto_auth {
  method "approle" {
    mount_path = "auth/approle-revoke"
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" {
    config = { path = %q }
  }
}
template {
  contents    = "x"
  destination = %q
}
`, roleID, secretID, sinkPath, filepath.Join(dir, "out"))
	var renderers []*userRenderer
	var mu sync.Mutex
	factory := func(cfg *config.Config, tokens *auth.Tokens, _ *zap.Logger) (Renderer, error) {
		u := &userRenderer{tokens: tokens, ready: make(chan struct{})}
		mu.Lock()
		renderers = append(renderers, u)
		mu.Unlock()
		return u, nil
	}
	run := startRunner(t, loader(t, dir, &src), factory)
	run.notes.waitFor(t, "READY=1", 0)
	first := readFile(t, sinkPath)
	if err := srv.Client.Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	// The 1h token would renew only after 40 minutes: a new token within
	// the poll limit means the user's 403 triggered the login.
	poll(t, "a new token in the sink", func() bool {
		tok := readFile(t, sinkPath)
		return tok != "" && tok != first
	})
	if _, err := lookup(t, readFile(t, sinkPath)); err != nil {
		t.Fatalf("new token: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(renderers) != 1 {
		t.Errorf("the renderer was restarted by the re-login: %d renderers", len(renderers))
	}
}

func TestRenewalThenReloginAtMaxTTL(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := approle(t, dir, "approle-ttl", map[string]any{"token_ttl": "3s", "token_max_ttl": "8s"})
	sinkPath := filepath.Join(dir, "token")
	src := fmt.Sprintf(`auto_auth {
  method "approle" {
    mount_path = "auth/approle-ttl"
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" {
    config = { path = %q }
  }
}
`, roleID, secretID, sinkPath)
	run := startRunner(t, loader(t, dir, &src), nil)
	run.notes.waitFor(t, "READY=1", 0)
	first := readFile(t, sinkPath)
	// Renewed at least once (a STATUS after the first one) ...
	i := run.notes.waitFor(t, "STATUS=authenticated", 0)
	run.notes.waitFor(t, "STATUS=authenticated", i+1)
	if readFile(t, sinkPath) != first {
		t.Log("token replaced before a renewal was seen; fine but unexpected")
	}
	// ... then replaced near its max TTL.
	poll(t, "a new token after the max TTL", func() bool {
		tok := readFile(t, sinkPath)
		return tok != "" && tok != first
	})
	if _, err := lookup(t, readFile(t, sinkPath)); err != nil {
		t.Fatalf("new token: %v", err)
	}
}

func TestBatchTokenIsReplacedBeforeItExpires(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := approle(t, dir, "approle-batch", map[string]any{"token_type": "batch", "token_ttl": "4s"})
	sinkPath := filepath.Join(dir, "token")
	src := fmt.Sprintf(`auto_auth {
  method "approle" {
    mount_path = "auth/approle-batch"
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" {
    config = { path = %q }
  }
}
`, roleID, secretID, sinkPath)
	run := startRunner(t, loader(t, dir, &src), nil)
	run.notes.waitFor(t, "READY=1", 0)
	first := readFile(t, sinkPath)
	if !strings.HasPrefix(first, "hvb.") {
		t.Fatalf("not a batch token: %.4s...", first)
	}
	run.notes.waitFor(t, "STATUS=authenticated with approle role \"web\", token is not renewable; next login in", 0)
	poll(t, "a new batch token", func() bool {
		tok := readFile(t, sinkPath)
		return tok != "" && tok != first
	})
}

func TestTokenFileAndWrappedSinkAndReloadKeepsToken(t *testing.T) {
	dir := t.TempDir()
	child, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "vault-token")
	writeFile(t, tokenFile, child.Auth.ClientToken+"\n")
	plain, wrapped, extra := filepath.Join(dir, "plain"), filepath.Join(dir, "wrapped"), filepath.Join(dir, "extra")
	src := fmt.Sprintf(`auto_auth {
  method {
    type = "token_file"
    config {
      token_file_path = %q
    }
  }
  sink "file" {
    config = { path = %q }
  }
  sink "file" {
    wrap_ttl = "5m"
    config = { path = %q }
  }
}
`, tokenFile, plain, wrapped)
	run := startRunner(t, loader(t, dir, &src), nil)
	run.notes.waitFor(t, "READY=1", 0)
	if got := readFile(t, plain); got != child.Auth.ClientToken {
		t.Fatalf("plain sink does not hold the file's token")
	}
	run.notes.waitFor(t, "STATUS=authenticated with token_file "+tokenFile, 0)

	var info api.SecretWrapInfo
	if err := json.Unmarshal([]byte(readFile(t, wrapped)), &info); err != nil || info.Token == "" {
		t.Fatalf("wrapped sink: %v", err)
	}
	unwrapped, err := srv.Client.Logical().Unwrap(info.Token)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := unwrapped.Data["token"].(string); tok != child.Auth.ClientToken {
		t.Fatalf("wrapped sink unwraps to another token")
	} else if _, err := lookup(t, tok); err != nil {
		t.Fatalf("unwrapped token: %v", err)
	}

	// Reload with one more sink: the token is kept, the unchanged sink is
	// not rewritten, the new sink gets the same token.
	before, err := os.Stat(plain)
	if err != nil {
		t.Fatal(err)
	}
	src = strings.Replace(src, "\n}\n", fmt.Sprintf("\n  sink \"file\" {\n    config = { path = %q }\n  }\n}\n", extra), 1)
	from := len(run.notes.list())
	if err := run.r.Reload(); err != nil {
		t.Fatal(err)
	}
	i := run.notes.waitFor(t, "RELOADING=1", from)
	run.notes.waitFor(t, "READY=1", i)
	poll(t, "the new sink", func() bool { return readFile(t, extra) == child.Auth.ClientToken })
	after, err := os.Stat(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("unchanged sink was rewritten on reload")
	}
	// A broken config is refused and the agent keeps running.
	src = "bogus = 1\n"
	if err := run.r.Reload(); err == nil || !strings.Contains(err.Error(), `unknown key "bogus"`) {
		t.Fatalf("reload of a bad config: %v", err)
	}
	if readFile(t, plain) != child.Auth.ClientToken {
		t.Error("sink changed after a failed reload")
	}
}

func TestExitAfterAuth(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := approle(t, dir, "approle-exit", map[string]any{"token_ttl": "1h"})
	sinkPath := filepath.Join(dir, "token")
	src := fmt.Sprintf(`exit_after_auth = true
pid_file = %q
auto_auth {
  method "approle" {
    mount_path = "auth/approle-exit"
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" {
    config = { path = %q }
  }
}
`, filepath.Join(dir, "pid"), roleID, secretID, sinkPath)
	run := startRunner(t, loader(t, dir, &src), nil)
	select {
	case err := <-run.done:
		run.done <- err // for the cleanup
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("agent did not exit after auth")
	}
	if _, err := lookup(t, readFile(t, sinkPath)); err != nil {
		t.Fatalf("sink token: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
	for _, s := range run.notes.list() {
		if s == "READY=1" {
			t.Error("READY=1 sent by a one-shot run")
		}
	}
}

func TestExitOnErr(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := approle(t, dir, "approle-err", map[string]any{"token_ttl": "1h"})
	writeFile(t, roleID, "not-the-role-id")
	src := fmt.Sprintf(`auto_auth {
  method "approle" {
    mount_path  = "auth/approle-err"
    exit_on_err = true
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
}
`, roleID, secretID)
	run := startRunner(t, loader(t, dir, &src), nil)
	var err error
	select {
	case err = <-run.done:
		run.done <- err
	case <-time.After(60 * time.Second):
		t.Fatal("agent did not exit")
	}
	var le *auth.LoginError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want a LoginError", err)
	}
	if strings.Contains(err.Error(), "not-the-role-id") {
		t.Errorf("error shows the role_id: %v", err)
	}
}
