// Package runner is latchkey-agent's main loop: it starts auto-auth, sinks
// and template rendering for a config, tells systemd what it is doing
// (READY=1 only once the token, sinks and templates exist; STATUS=;
// WATCHDOG=1; RELOADING=1; STOPPING=1), and reloads or stops on request.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sink"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Renderer renders a config's templates with the agent's token. The
// template package implements it; the runner starts one per config and
// keeps it across re-logins (it reads tokens.Client() per request).
type Renderer interface {
	// Run renders every template and keeps them current until ctx ends.
	// It returns nil when ctx ends, and an error only when rendering must
	// stop the agent (template_config.exit_on_retry_failure).
	Run(ctx context.Context) error
	// Ready is closed once every template has been rendered once.
	Ready() <-chan struct{}
}

// RendererFactory builds the Renderer of cfg's templates. It is called only
// when cfg has templates, and again on a reload that changed them.
type RendererFactory func(cfg *config.Config, tokens *auth.Tokens, logger *zap.Logger) (Renderer, error)

// RenderError is returned by Run when the renderer failed.
type RenderError struct{ Err error }

func (e *RenderError) Error() string { return "templates: " + e.Err.Error() }
func (e *RenderError) Unwrap() error { return e.Err }

// ConfigError is returned by Run when the configuration could not be
// loaded or applied at start.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Options configure a Runner.
type Options struct {
	// Load reads, merges and validates the whole configuration (files,
	// environment, flags); it is called at start and on every reload.
	Load   func() (*config.Config, error)
	Logger *zap.Logger
	// Getenv is os.Getenv in production (passed to auth methods).
	Getenv func(string) string
	// NewRenderer renders templates; nil refuses configs with templates.
	NewRenderer RendererFactory
	// Notify sends sd_notify states; nil is SystemdNotifier.
	Notify Notifier
}

// Runner runs the agent. Its Stop and Reload may be called from any
// goroutine (signal handlers), any number of times.
type Runner struct {
	opts   Options
	log    *zap.Logger
	reload chan chan error
	stop   chan struct{}
	once   sync.Once
}

// New returns a runner; nothing starts before Run.
func New(opts Options) *Runner {
	if opts.Notify == nil {
		opts.Notify = SystemdNotifier
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Runner{opts: opts, log: opts.Logger, reload: make(chan chan error), stop: make(chan struct{})}
}

// Stop asks Run to stop; it returns at once.
func (r *Runner) Stop() error {
	r.once.Do(func() { close(r.stop) })
	return nil
}

// Reload re-reads the whole configuration and applies it, keeping the
// current token when the auth settings did not change. It returns the
// error of a configuration that could not be applied (the agent then keeps
// running with the old one), or an error when Run is not running.
func (r *Runner) Reload() error {
	done := make(chan error, 1)
	select {
	case r.reload <- done:
		return <-done
	case <-r.stop:
		return errors.New("agent is stopping")
	}
}

// component is one running part (auth, sinks, renderer).
type component struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func start(parent context.Context, errs chan<- error, run func(ctx context.Context) error) *component {
	ctx, cancel := context.WithCancel(parent)
	c := &component{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			errs <- err
		}
	}()
	return c
}

// halt stops the component and waits for it; nil is fine.
func (c *component) halt() {
	if c != nil {
		c.cancel()
		<-c.done
	}
}

// state is what runs for one configuration.
type state struct {
	cfg      *config.Config
	tokens   *auth.Tokens
	auth     *component
	sinks    *sink.Set
	sinkRun  *component
	renderer Renderer
	render   *component
}

// Run loads the configuration, starts everything and runs until Stop, ctx
// ends, exit_after_auth is done, or a part fails fatally. It returns nil on
// a clean stop; a *ConfigError (before anything started); an error writing
// the pid file; an
// *auth.LoginError when a login failed with exit_on_err; a *RenderError
// when templates failed with exit_on_retry_failure.
func (r *Runner) Run(ctx context.Context) error {
	cfg, err := r.opts.Load()
	if err != nil {
		return &ConfigError{Err: err}
	}
	if err := prepare(cfg); err != nil {
		return &ConfigError{Err: err}
	}
	if cfg.PidFile != "" {
		if err := atomicfile.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), atomicfile.Owner(0o644)); err != nil {
			return fmt.Errorf("pid_file: %w", err)
		}
		defer os.Remove(cfg.PidFile)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 8)
	st := &state{}
	if err := r.apply(ctx, errs, st, cfg); err != nil {
		return &ConfigError{Err: err}
	}
	defer func() {
		r.opts.Notify("STOPPING=1")
		st.render.halt()
		st.sinkRun.halt()
		st.auth.halt()
	}()

	var watchdog <-chan time.Time
	if d := watchdogInterval(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		watchdog = t.C
	}
	ready := r.readiness(ctx, st)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.stop:
			r.log.Info("stopping")
			return nil
		case err := <-errs:
			return err
		case <-watchdog:
			r.opts.Notify("WATCHDOG=1")
		case <-ready:
			ready = nil
			if *st.cfg.ExitAfterAuth {
				r.log.Info("exit_after_auth: token written, exiting")
				return nil
			}
			r.log.Info("ready")
			r.opts.Notify("READY=1")
		case done := <-r.reload:
			done <- r.doReload(ctx, errs, st)
			if ready == nil {
				r.opts.Notify("READY=1")
			} else {
				// Not ready yet: wait for the new parts too.
				ready = r.readiness(ctx, st)
			}
		}
	}
}

// readiness returns a channel closed once the first token exists, every
// sink holds it and every template was rendered.
func (r *Runner) readiness(ctx context.Context, st *state) <-chan struct{} {
	tokens, sinks, rend := st.tokens, st.sinks, st.renderer
	ch := make(chan struct{})
	go func() {
		if _, err := tokens.Wait(ctx); err != nil {
			return
		}
		select {
		case <-sinks.Ready():
		case <-ctx.Done():
			return
		}
		if rend != nil {
			select {
			case <-rend.Ready():
			case <-ctx.Done():
				return
			}
		}
		close(ch)
	}()
	return ch
}

// doReload applies a freshly loaded config; on error the old one stays.
func (r *Runner) doReload(ctx context.Context, errs chan<- error, st *state) error {
	r.log.Info("reloading the configuration")
	r.opts.Notify(reloading())
	cfg, err := r.opts.Load()
	if err == nil {
		err = prepare(cfg)
	}
	if err == nil {
		err = r.apply(ctx, errs, st, cfg)
	}
	if err != nil {
		r.log.Error("reload failed; keeping the running configuration", zap.Error(err))
		r.opts.Notify("STATUS=reload failed, running the previous configuration: " + err.Error())
		return err
	}
	r.log.Info("configuration reloaded")
	return nil
}

// prepare checks what New-ing the parts will need before anything is
// replaced: the state directory.
func prepare(cfg *config.Config) error {
	if err := os.MkdirAll(cfg.Latchkey.StateDir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	return nil
}

// apply makes st run cfg: auth is restarted only when its settings changed
// (the token is kept otherwise), sinks are rebuilt (an unchanged sink is
// not rewritten), templates restarted only when they changed. All new
// parts are built before any old one is stopped, so a bad config changes
// nothing.
func (r *Runner) apply(ctx context.Context, errs chan<- error, st *state, cfg *config.Config) error {
	keepAuth := st.cfg != nil && config.SameAuth(st.cfg, cfg)
	var lc *auth.Lifecycle
	var client *api.Client
	if !keepAuth {
		var err error
		if client, lc, err = r.newAuth(cfg); err != nil {
			return err
		}
	}
	sinks, err := sink.NewSet(sinkConfigs(cfg), st.sinks, r.log)
	if err != nil {
		return err
	}
	tokens, fresh := st.tokens, st.tokens == nil
	if fresh {
		tokens = auth.NewTokens(client)
	}
	keepRender := st.cfg != nil && sameTemplates(st.cfg, cfg)
	var rend Renderer
	if !keepRender && len(cfg.Templates) > 0 {
		if r.opts.NewRenderer == nil {
			return errors.New("templates: this build of latchkey-agent cannot render templates")
		}
		if rend, err = r.opts.NewRenderer(cfg, tokens, r.log); err != nil {
			return err
		}
	}

	// Everything is built: swap.
	st.cfg = cfg
	st.tokens = tokens
	if !keepAuth {
		st.auth.halt()
		if !fresh {
			tokens.SetClient(client)
		}
		lc.Tokens = tokens
		st.auth = start(ctx, errs, lc.Run)
	}
	st.sinkRun.halt()
	st.sinks = sinks
	st.sinkRun = start(ctx, errs, func(ctx context.Context) error { sinks.Run(ctx, tokens); return nil })
	if !keepRender {
		st.render.halt()
		st.renderer, st.render = rend, nil
		if rend != nil {
			st.render = start(ctx, errs, func(ctx context.Context) error {
				if err := rend.Run(ctx); err != nil {
					return &RenderError{Err: err}
				}
				return nil
			})
		}
	}
	return nil
}

// newAuth builds the Vault client and the login loop of cfg.
func (r *Runner) newAuth(cfg *config.Config) (*api.Client, *auth.Lifecycle, error) {
	client, err := vaultclient.New(cfg.Vault)
	if err != nil {
		return nil, nil, err
	}
	m := cfg.AutoAuth.Method
	env := auth.Env{StateDir: cfg.Latchkey.StateDir, Logger: r.log.With(zap.String("method", m.Type)), Getenv: r.opts.Getenv}
	method, err := methods.New(methods.FromConfig(m), env)
	if err != nil {
		return nil, nil, err
	}
	lc := &auth.Lifecycle{
		Method: method, Client: client, Namespace: m.Namespace, WrapTTL: m.WrapTTL,
		MinBackoff: m.MinBackoff, MaxBackoff: m.MaxBackoff, ExitOnErr: m.ExitOnErr,
		Logger: r.log, Status: func(s string) { r.opts.Notify("STATUS=" + s) },
	}
	return client, lc, nil
}

func sinkConfigs(cfg *config.Config) []config.Sink {
	if cfg.AutoAuth == nil {
		return nil
	}
	return cfg.AutoAuth.Sinks
}

// sameTemplates reports whether two configs render the same templates the
// same way (positions in the files aside).
func sameTemplates(a, b *config.Config) bool {
	strip := func(ts []config.Template) []config.Template {
		out := make([]config.Template, len(ts))
		for i, t := range ts {
			t.Range = hcl.Range{}
			out[i] = t
		}
		return out
	}
	return reflect.DeepEqual(strip(a.Templates), strip(b.Templates)) &&
		reflect.DeepEqual(a.TemplateConfig, b.TemplateConfig) && reflect.DeepEqual(a.Vault, b.Vault)
}
