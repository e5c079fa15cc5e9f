// Package runner is the agent's main loop: it loads the config, runs auto-auth
// and the sinks, tells systemd how things stand, and handles SIGHUP (reload
// everything), SIGTERM/SIGINT (stop) and exit_after_auth.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sink"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// ErrConfig wraps a config that cannot be loaded or used.
var ErrConfig = errors.New("config error")

// Runner runs the agent.
type Runner struct {
	// Paths are the -config files and directories.
	Paths []string
	// Flags is the Vault client config from the command line (wins over
	// the environment, which wins over the file).
	Flags  vaultclient.Config
	Getenv func(string) string
	Logger *zap.Logger
	// Signals delivers SIGHUP/SIGTERM/SIGINT; nil subscribes to the real ones.
	Signals <-chan os.Signal
	// Notify sends an sd_notify state; nil uses daemon.SdNotify.
	Notify func(state string)
	// CheckInterval is how often the token is looked up to notice
	// revocation (default 1m).
	CheckInterval time.Duration
	// NewRenderer renders templates (agent/template plugs in here); nil
	// makes a config with templates a config error.
	NewRenderer RendererFactory
	// OnReload, when set, is called with a configuration a SIGHUP loaded
	// successfully (the CLI applies its log_level).
	OnReload func(*config.Config)
}

// instance is one generation of the running agent (replaced on reload).
type instance struct {
	cfg       *config.Config
	cancel    context.CancelFunc
	done      chan struct{}
	err       error // set before done is closed
	ready     chan struct{}
	lifecycle *auth.Lifecycle

	mu     sync.Mutex
	secret *api.Secret // the current login, kept across reloads
	fatal  error       // the renderer's fatal error, if any
	rend   *rendering  // nil without templates, or once handed to the next instance
}

// fail ends the instance with err (a renderer gave up).
func (in *instance) fail(err error) {
	in.mu.Lock()
	if in.fatal == nil {
		in.fatal = err
	}
	in.mu.Unlock()
	in.cancel()
}

// handOver detaches the instance's rendering for the next instance (a
// reload that did not change the templates), so that stopping this
// instance does not stop it.
func (in *instance) handOver() *rendering {
	in.mu.Lock()
	defer in.mu.Unlock()
	rg := in.rend
	in.rend = nil
	return rg
}

// Run runs until a stop signal (nil), exit_after_auth completes (nil), or a
// fatal error: an error wrapping ErrConfig for a bad config at start, or
// wrapping auth.ErrLogin with exit_on_err.
func (r *Runner) Run(ctx context.Context) error {
	cfg, err := config.Load(r.Paths...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if r.CheckInterval == 0 {
		r.CheckInterval = time.Minute
	}
	sigs := r.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	if cfg.PidFile != "" {
		if err := atomicfile.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), atomicfile.Options{Mode: 0o644, UID: -1, GID: -1}); err != nil {
			return fmt.Errorf("%w: pid_file: %w", ErrConfig, err)
		}
		defer os.Remove(cfg.PidFile)
	}
	holder := auth.NewHolder()
	cur, err := r.start(ctx, cfg, holder, nil, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// The watchdog is fed from this loop, so that a wedged agent (not just
	// a dead one) is restarted by systemd.
	var watchdog <-chan time.Time
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		watchdog = t.C
	}
	readyCh := cur.ready
	for {
		select {
		case <-watchdog:
			r.notify("WATCHDOG=1")
		case <-readyCh:
			readyCh = nil
			if cur.cfg.ExitAfterAuth {
				r.Logger.Info("exit_after_auth: logged in and wrote every sink; exiting")
				r.notify("STOPPING=1")
				cur.stop()
				return nil
			}
			r.notify("READY=1")
		case <-cur.done:
			// Only a fatal error (exit_on_err, a renderer's) ends an
			// instance by itself.
			r.notify("STOPPING=1")
			return cur.err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				next := r.reload(ctx, cur, holder)
				if next != cur {
					cur = next
					readyCh = cur.ready
				} else {
					r.notify("READY=1")
				}
			default:
				r.Logger.Info("stopping", zap.String("signal", sig.String()))
				r.notify("STOPPING=1")
				cur.stop()
				return nil
			}
		case <-ctx.Done():
			r.notify("STOPPING=1")
			cur.stop()
			return nil
		}
	}
}

// reload re-reads the whole config. A config that does not load leaves the
// running instance as it is. The token is kept when neither the Vault
// client settings nor the auth method changed.
func (r *Runner) reload(ctx context.Context, cur *instance, holder *auth.Holder) *instance {
	r.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	r.Logger.Info("SIGHUP: reloading the configuration")
	cfg, err := config.Load(r.Paths...)
	if err != nil {
		r.Logger.Error("reload failed; keeping the running configuration", zap.Error(err))
		r.notify("STATUS=reload failed, running the previous configuration: " + err.Error())
		return cur
	}
	var keep *api.Secret
	if sameAuth(cur.cfg, cfg) {
		cur.mu.Lock()
		keep = cur.secret
		cur.mu.Unlock()
		keep = timeLeft(keep, cur.lifecycle.Expiry())
	}
	// Unchanged templates keep rendering: no file is rewritten and no
	// secret or certificate issued again because of a reload.
	var rg *rendering
	if sameTemplates(cur.cfg, cfg) {
		rg = cur.handOver()
	}
	cur.stop()
	if keep == nil {
		// The old token is no longer renewed: it ends at its expiry, and
		// with it the leases it created.
		holder.Retire(cur.lifecycle.Expiry())
	}
	next, err := r.start(ctx, cfg, holder, keep, rg)
	if err != nil {
		r.Logger.Error("reload failed; restarting the previous configuration", zap.Error(err))
		next, _ = r.start(ctx, cur.cfg, holder, keep, rg)
		return next
	}
	if r.OnReload != nil {
		r.OnReload(cfg)
	}
	if rg != nil {
		r.Logger.Info("reloaded; templates unchanged, still rendering")
	}
	if keep != nil {
		r.Logger.Info("reloaded; auth unchanged, keeping the token")
	} else {
		r.Logger.Info("reloaded; auth changed, logging in again")
	}
	return next
}

// timeLeft returns the kept login with the TTL its token has left at
// expiry (zero: it never expires), or nil when it has less than a second
// left: the login's TTL counts from the login, not from the reload. The
// lifecycle looks the TTL up in Vault too; this is what it goes by when
// Vault cannot answer.
func timeLeft(keep *api.Secret, expiry time.Time) *api.Secret {
	if keep == nil || keep.Auth == nil || expiry.IsZero() {
		return keep
	}
	left := int(time.Until(expiry).Seconds())
	if left < 1 {
		return nil
	}
	return auth.WithTTL(keep, left, keep.Auth.Renewable)
}

// sameTemplates reports whether b renders what a renders, the same way
// (positions in the files aside).
func sameTemplates(a, b *config.Config) bool {
	strip := func(ts []config.Template) []config.Template {
		out := make([]config.Template, len(ts))
		for i, t := range ts {
			t.Range = hcl.Range{}
			out[i] = t
		}
		return out
	}
	return len(a.Templates) > 0 && reflect.DeepEqual(strip(a.Templates), strip(b.Templates)) &&
		a.TemplateConfig == b.TemplateConfig && reflect.DeepEqual(a.Vault, b.Vault)
}

func sameAuth(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Vault, b.Vault) && reflect.DeepEqual(a.AutoAuth.Method, b.AutoAuth.Method) &&
		a.StateDir == b.StateDir
}

// VaultClient is the agent's Vault client for cfg: the vault stanza, under
// the environment, under flags; vault { retry { num_retries } } unless
// VAULT_MAX_RETRIES or a flag set it; and template_config's
// max_connections_per_host, shared by every clone (renderers included).
func VaultClient(cfg *config.Config, getenv func(string) string, flags vaultclient.Config) (*api.Client, error) {
	env, err := vaultclient.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	vc := cfg.Vault.Client.Merge(env).Merge(flags)
	if vc.MaxRetries == nil {
		vc.MaxRetries = cfg.Vault.NumRetries
	}
	client, err := vaultclient.New(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	vaultclient.LimitConnsPerHost(client, cfg.TemplateConfig.MaxConnectionsPerHost)
	return client, nil
}

// start builds and starts one instance. keep, when set, is a login to go on
// with instead of logging in; rg, when set, is the previous instance's
// rendering, adopted instead of starting a renderer.
func (r *Runner) start(parent context.Context, cfg *config.Config, holder *auth.Holder, keep *api.Secret, rg *rendering) (*instance, error) {
	client, err := VaultClient(cfg, r.Getenv, r.Flags)
	if err != nil {
		return nil, err
	}
	a := cfg.AutoAuth
	method, err := methods.New(a.Method, auth.Env{StateDir: cfg.StateDir, Logger: r.Logger, Getenv: r.Getenv})
	if err != nil {
		return nil, err
	}
	var sinks []*sink.File
	for _, sc := range a.Sinks {
		s, err := sink.New(sc, client, r.Logger)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, s)
	}
	ctx, cancel := context.WithCancel(parent)
	in := &instance{cfg: cfg, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{}), secret: keep}
	// The lifecycle exists before anything that reports to it: a handed
	// over renderer does so from the moment it is adopted, in its own
	// goroutine.
	in.lifecycle = &auth.Lifecycle{
		Method: method, Client: client, Namespace: a.Method.Namespace, Holder: holder, Logger: r.Logger,
		MinBackoff: a.MinBackoff, MaxBackoff: a.MaxBackoff, ExitOnErr: a.ExitOnErr,
		CheckInterval: r.CheckInterval,
		Status:        func(s string) { r.notify("STATUS=" + s) },
		OnLogin: func(s *api.Secret) {
			in.mu.Lock()
			in.secret = s
			in.mu.Unlock()
		},
	}
	denied := in.lifecycle.PermissionDenied
	// Every clone of client (sinks, renderers, the renewal watcher) reports
	// 403 answers, so a revoked token is replaced as soon as it is used.
	report403(client, denied)
	trust, err := newSSHTrust(cfg, client, holder, r)
	if err != nil {
		cancel()
		return nil, err
	}
	if rg == nil && len(cfg.Templates) > 0 {
		if r.NewRenderer == nil {
			cancel()
			return nil, errors.New("templates: this build of latchkey-agent cannot render templates")
		}
		tokens := &Tokens{holder: holder}
		tokens.set(client, denied)
		rend, err := r.NewRenderer(cfg, tokens, r.Logger)
		if err != nil {
			cancel()
			return nil, err
		}
		// The rendering outlives this instance's context when a reload
		// hands it over, so it runs under the Runner's.
		rg = startRendering(parent, rend, tokens, in)
	} else if rg != nil {
		rg.adopt(in, client, denied)
	}
	in.rend = rg
	// Ready once there is a token, every sink has written it and every
	// template has been rendered.
	var pending sync.WaitGroup
	pending.Add(1 + len(sinks))
	var wg sync.WaitGroup
	var tokenOnce sync.Once
	tokenReady := func() { tokenOnce.Do(pending.Done) }
	if keep != nil {
		tokenReady()
	}
	changed := holder.Changed() // before the lifecycle can Set
	wg.Add(1)
	go func() {
		defer wg.Done()
		if keep == nil {
			select {
			case <-changed:
				tokenReady()
			case <-ctx.Done():
			}
		}
	}()
	for _, s := range sinks {
		wg.Add(1)
		var once sync.Once
		go func() {
			defer wg.Done()
			s.Run(ctx, holder, func() { once.Do(pending.Done) })
		}()
	}
	launchSSHTrust(ctx, trust, &pending, &wg)
	if rg != nil {
		pending.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-rg.r.Ready():
				pending.Done()
			case <-ctx.Done():
			}
		}()
	}
	go func() {
		pending.Wait()
		close(in.ready)
	}()
	go func() {
		err := in.lifecycle.Run(ctx, keep)
		cancel()
		wg.Wait()
		if rg := in.handOver(); rg != nil {
			rg.stop() // not handed to a next instance
		}
		in.mu.Lock()
		if err == nil {
			err = in.fatal
		}
		in.mu.Unlock()
		in.err = err
		close(in.done)
	}()
	return in, nil
}

// stop ends the instance and waits for its goroutines.
func (in *instance) stop() {
	in.cancel()
	<-in.done
}

func (r *Runner) notify(state string) {
	if r.Notify != nil {
		r.Notify(state)
		return
	}
	daemon.SdNotify(false, state)
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
