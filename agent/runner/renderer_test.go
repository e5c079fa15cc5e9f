package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
)

// fakeRenderer stands in for agent/template: it uses the token every 50ms
// (as a renderer refreshing secrets would), is Ready once told so, and can
// fail fatally.
type fakeRenderer struct {
	tokens  *Tokens
	release chan struct{} // closed by the test to let the first render finish
	ready   chan struct{}
	fail    chan error
}

func (f *fakeRenderer) Run(ctx context.Context) error {
	once := sync.Once{}
	for {
		select {
		case <-f.release:
			if c, err := f.tokens.Client(); err == nil {
				if _, err := c.LookupSelf(ctx); err == nil {
					once.Do(func() { close(f.ready) })
				}
			}
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-f.fail:
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (f *fakeRenderer) Ready() <-chan struct{} { return f.ready }

// runRendering runs the agent with renderers from a factory that records
// every renderer it builds.
func runRendering(t *testing.T, cfg string) (*running, func() []*fakeRenderer) {
	var mu sync.Mutex
	var built []*fakeRenderer
	r := &running{notes: &notes{}, sigs: make(chan os.Signal, 1), done: make(chan error, 1)}
	rn := &Runner{
		Paths: []string{cfg}, Getenv: func(string) string { return "" }, Logger: zaptest.NewLogger(t),
		Signals: r.sigs, Notify: r.notes.add, CheckInterval: time.Hour,
		NewRenderer: func(c *config.Config, tokens *Tokens, _ *zap.Logger) (Renderer, error) {
			f := &fakeRenderer{tokens: tokens, release: make(chan struct{}), ready: make(chan struct{}), fail: make(chan error, 1)}
			mu.Lock()
			built = append(built, f)
			mu.Unlock()
			return f, nil
		},
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
	return r, func() []*fakeRenderer {
		mu.Lock()
		defer mu.Unlock()
		return append([]*fakeRenderer(nil), built...)
	}
}

const oneTemplate = "template {\n  contents = \"x\"\n  destination = \"/nonexistent/out\"\n}\n"

func TestReadyWaitsForTemplatesAndRevocationSeenByARenderer(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	cfg := agentConfig(t, dir, method, oneTemplate, fileSink(sinkPath, ""))
	r, renderers := runRendering(t, cfg)

	testkit.Eventually(t, "the sink", func() bool { return readToken(t, sinkPath) != "" })
	testkit.Eventually(t, "the renderer", func() bool { return len(renderers()) == 1 })
	time.Sleep(300 * time.Millisecond) // give a premature READY=1 the chance to show
	if r.notes.count("READY=1") != 0 {
		t.Fatal("READY=1 before the templates were rendered")
	}
	close(renderers()[0].release)
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })

	// Revoke the token: CheckInterval is 1h and the 1h token renews after
	// 40 minutes, so a new token in the sink means the renderer's 403
	// triggered the login.
	first := readToken(t, sinkPath)
	testkit.Must(t, srv.Client.Auth().Token().RevokeTree(first))
	testkit.Eventually(t, "a new token after revocation", func() bool {
		tok := readToken(t, sinkPath)
		return tok != "" && tok != first
	})
	if _, err := lookup(t, readToken(t, sinkPath)); err != nil {
		t.Fatalf("new token: %v", err)
	}
	if n := len(renderers()); n != 1 {
		t.Errorf("re-login restarted the renderer (%d built)", n)
	}
}

func TestRendererFailureStopsTheAgent(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	cfg := agentConfig(t, dir, method, oneTemplate, fileSink(filepath.Join(dir, "token"), ""))
	r, renderers := runRendering(t, cfg)
	testkit.Eventually(t, "the renderer", func() bool { return len(renderers()) == 1 })
	renderers()[0].fail <- errors.New("template a.tmpl: gave up after 12 retries")
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
	}
	if !errors.Is(err, ErrTemplate) {
		t.Fatalf("Run = %v, want ErrTemplate", err)
	}
}

func TestTemplatesWithoutARendererAreAConfigError(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	cfg := agentConfig(t, dir, method, oneTemplate, fileSink(filepath.Join(dir, "token"), ""))
	rn := &Runner{Paths: []string{cfg}, Getenv: func(string) string { return "" }, Logger: zaptest.NewLogger(t),
		Signals: make(chan os.Signal), Notify: func(string) {}}
	err := rn.Run(context.Background(), nil)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Run = %v, want ErrConfig", err)
	}
}

func TestReloadKeepsTheRendererWhenTemplatesAreUnchanged(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	cfg := agentConfig(t, dir, method, oneTemplate, fileSink(sinkPath, ""))
	r, renderers := runRendering(t, cfg)
	testkit.Eventually(t, "the renderer", func() bool { return len(renderers()) == 1 })
	close(renderers()[0].release)
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })

	// Same templates, one more sink: the renderer keeps running.
	extra := filepath.Join(dir, "extra")
	agentConfig(t, dir, method, oneTemplate, fileSink(sinkPath, ""), fileSink(extra, ""))
	r.sigs <- syscall.SIGHUP
	testkit.Eventually(t, "the reload", func() bool { return r.notes.count("READY=1") == 2 && readToken(t, extra) != "" })
	if n := len(renderers()); n != 1 {
		t.Fatalf("a reload with unchanged templates built %d renderers", n)
	}
	// The kept renderer reaches the new instance's auth loop: a revoked
	// token it runs into is replaced.
	first := readToken(t, sinkPath)
	testkit.Must(t, srv.Client.Auth().Token().RevokeTree(first))
	testkit.Eventually(t, "a new token after revocation", func() bool {
		tok := readToken(t, sinkPath)
		return tok != "" && tok != first
	})

	// Changed templates: a new renderer replaces the old one.
	agentConfig(t, dir, method, strings.Replace(oneTemplate, `"x"`, `"y"`, 1), fileSink(sinkPath, ""))
	r.sigs <- syscall.SIGHUP
	testkit.Eventually(t, "a new renderer", func() bool { return len(renderers()) == 2 })
	close(renderers()[1].release)
	testkit.Eventually(t, "READY=1 after the new render", func() bool { return r.notes.count("READY=1") == 3 })
}

// template_config { max_connections_per_host } bounds the connections of
// the transport the renderer's clients share (Vault Agent's default: 10).
func TestMaxConnectionsPerHostReachesTheRenderer(t *testing.T) {
	tests := map[string]struct {
		templateConfig string
		want           int
	}{
		"configured": {"template_config {\n  max_connections_per_host = 3\n}\n", 3},
		"default":    {"", 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, method := approle(t, dir, "1h", "2h")
			cfg := agentConfig(t, dir, method, tc.templateConfig+oneTemplate, fileSink(filepath.Join(dir, "token"), ""))
			_, renderers := runRendering(t, cfg)
			testkit.Eventually(t, "the renderer", func() bool { return len(renderers()) == 1 })
			tokens := renderers()[0].tokens
			testkit.Eventually(t, "a token", func() bool { return tokens.Holder().Token() != "" })
			c, err := tokens.Client()
			testkit.Must(t, err)
			if got := c.MaxConnsPerHost(); got != tc.want {
				t.Errorf("MaxConnsPerHost = %d, want %d", got, tc.want)
			}
		})
	}
}

// denier is a renderer that reports permission denied without pause, as
// one running into a revoked token on every request would.
type denier struct {
	tokens *Tokens
	ready  chan struct{}
}

func (d *denier) Run(ctx context.Context) error {
	close(d.ready)
	for ctx.Err() == nil {
		d.tokens.PermissionDenied()
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

func (d *denier) Ready() <-chan struct{} { return d.ready }

// A renderer handed over by a reload reports to the new instance's auth
// loop from the moment it is adopted: run under -race, this checks that
// nothing it reaches is still being set up.
func TestHandedOverRendererReportsDuringReload(t *testing.T) {
	dir := t.TempDir()
	_, method := approle(t, dir, "1h", "2h")
	sinkPath := filepath.Join(dir, "token")
	cfg := agentConfig(t, dir, method, oneTemplate, fileSink(sinkPath, ""))
	built := 0
	r := &running{notes: &notes{}, sigs: make(chan os.Signal, 1), done: make(chan error, 1)}
	rn := &Runner{
		Paths: []string{cfg}, Getenv: func(string) string { return "" }, Logger: zaptest.NewLogger(t),
		Signals: r.sigs, Notify: r.notes.add, CheckInterval: time.Hour,
		NewRenderer: func(c *config.Config, tokens *Tokens, _ *zap.Logger) (Renderer, error) {
			built++ // the runner's goroutine only
			return &denier{tokens: tokens, ready: make(chan struct{})}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- rn.Run(ctx, nil) }()
	defer func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	}()
	testkit.Eventually(t, "READY=1", func() bool { return r.notes.count("READY=1") == 1 })
	first := readToken(t, sinkPath)
	for i := 0; i < 5; i++ {
		r.sigs <- syscall.SIGHUP
		testkit.Eventually(t, "READY=1 after a reload", func() bool { return r.notes.count("READY=1") == i+2 })
	}
	if readToken(t, sinkPath) != first {
		t.Error("reports of a token that works replaced it")
	}
	if built != 1 {
		t.Errorf("%d renderers built, want the first one handed over", built)
	}
}

// The agent's Vault client (the runner's and the render subcommand's):
// template_config's max_connections_per_host (default 10) and vault {
// retry { num_retries } } unless VAULT_MAX_RETRIES or a flag says otherwise.
func TestVaultClient(t *testing.T) {
	const auth = "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/nonexistent\" }\n  }\n}\n"
	three := 3
	tests := map[string]struct {
		extra          string
		env            map[string]string
		flags          vaultclient.Config
		conns, retries int
	}{
		"defaults (as Vault Agent)": {"", nil, vaultclient.Config{}, 10, 12},
		"configured":                {"template_config {\n  max_connections_per_host = 4\n}\nvault {\n  retry {\n    num_retries = 5\n  }\n}\n", nil, vaultclient.Config{}, 4, 5},
		// num_retries as in Vault Agent: 0 is the default, -1 is none.
		"num_retries 0 is the default": {"vault {\n  retry {\n    num_retries = 0\n  }\n}\n", nil, vaultclient.Config{}, 10, 12},
		"num_retries -1 is none":       {"vault {\n  retry {\n    num_retries = -1\n  }\n}\n", nil, vaultclient.Config{}, 10, 0},
		"environment wins":             {"vault {\n  retry {\n    num_retries = 5\n  }\n}\n", map[string]string{"VAULT_MAX_RETRIES": "1"}, vaultclient.Config{}, 10, 1},
		"flag wins":                    {"vault {\n  retry {\n    num_retries = 5\n  }\n}\n", map[string]string{"VAULT_MAX_RETRIES": "1"}, vaultclient.Config{MaxRetries: &three}, 10, 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.Must(t, os.WriteFile(p, []byte(auth+tc.extra), 0o600))
			cfg, err := config.Load(p)
			testkit.Must(t, err)
			c, err := VaultClient(cfg, func(k string) string {
				if k == "VAULT_ADDR" {
					return "http://127.0.0.1:1"
				}
				return tc.env[k]
			}, tc.flags)
			testkit.Must(t, err)
			if c.MaxConnsPerHost() != tc.conns || c.MaxRetries() != tc.retries {
				t.Errorf("MaxConnsPerHost %d, MaxRetries %d; want %d, %d", c.MaxConnsPerHost(), c.MaxRetries(), tc.conns, tc.retries)
			}
		})
	}
}
