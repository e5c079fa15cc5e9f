// Package runner is the agent's main loop: it runs auto-auth, the sinks and
// the components (templates), tells systemd how things stand, and handles
// SIGHUP (reload), SIGTERM/SIGINT (stop) and exit_after_auth.
//
// An instance is one generation of the running agent. It is made in two
// phases: build turns a config into a Vault client, an auth method, sinks
// and components without starting a goroutine or contacting Vault (an
// error is a config error); launch starts them. A reload builds the new
// instance completely before the running one is touched, so a reload that
// is refused changes nothing at all.
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
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sink"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// ErrConfig wraps a config that cannot be loaded or used.
var ErrConfig = errors.New("config error")

// DefaultCheckInterval is how often the token is looked up to notice a
// revocation between renewals when Runner.CheckInterval is zero.
const DefaultCheckInterval = time.Minute

// DefaultReloadWait is how long a reload waits for the new configuration
// to be ready (a token, every sink written, every changed template
// rendered) before it sends READY=1 anyway. The unit has
// TimeoutStartSec=infinity, so that a start waits for Vault, and systemd
// times a reload (RELOADING=1 ... READY=1) by that timeout too: without
// this bound, a reload that needs Vault while Vault is down or refusing
// would hold `systemctl reload` (and every job queued behind it) forever.
const DefaultReloadWait = 10 * time.Second

// Runner runs the agent.
type Runner struct {
	// Paths are the -config files and directories (read again at SIGHUP).
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
	// revocation (DefaultCheckInterval when zero).
	CheckInterval time.Duration
	// ReloadWait bounds a reload's wait for readiness (DefaultReloadWait
	// when zero).
	ReloadWait time.Duration
	// NewRenderer renders templates (agent/template plugs in here); nil
	// makes a config with templates a config error.
	NewRenderer RendererFactory
	// CheckTemplates, when set, checks cfg's templates as NewRenderer
	// would (sources read and parsed) without building a renderer: a reload
	// that keeps the running renderer is refused when it fails.
	CheckTemplates func(cfg *config.Config) error
	// DryRun builds auth methods that never consume a one-shot credential
	// (render -dry-run; see auth.Env.DryRun).
	DryRun bool
	// kept holds one-shot credentials across the instances of one Run.
	kept *auth.Keeper
	// reach tells when Vault stops and starts answering (log, STATUS=).
	reach *reach

	// OnReload, when set, is called with a configuration a SIGHUP loaded
	// and applied (the CLI applies its log_level).
	OnReload func(*config.Config)
	// ReopenLog, when set, is called at each SIGHUP before the
	// configuration is read, whether the reload is applied or refused: the
	// CLI opens log_file anew, so that after logrotate renamed it the
	// reload's lines and every later one go to the new file. An error is
	// logged; lines then go on to the file open before.
	ReopenLog func() error
}

// instance is one generation of the running agent (replaced on reload).
// build fills the fields above the line; launch the ones below.
type instance struct {
	cfg       *config.Config
	client    *vaultclient.Client
	method    auth.Method
	sinks     []*sink.File
	lifecycle *auth.Lifecycle
	parts     []*part

	// leftover are components a reload replaced with none (a config
	// without templates) that may still have work running (Finisher):
	// that work runs to its end, unless the agent stops first.
	leftover []Component

	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
	ready  chan struct{}

	mu     sync.Mutex
	secret *vaultclient.Secret // the current login, kept across reloads
	fatal  error               // a component's fatal error, if any
}

// fail ends the instance with err (a component gave up).
func (in *instance) fail(err error) {
	in.mu.Lock()
	if in.fatal == nil {
		in.fatal = err
	}
	in.mu.Unlock()
	in.cancel()
}

// Validate builds everything cfg describes, as a start would, without
// starting anything or contacting Vault: it returns the first config
// error, or nil.
func (r *Runner) Validate(cfg *config.Config) error {
	_, err := r.Build(cfg)
	return err
}

// Built is what the build of a config made, started by nothing: what
// `render` logs in with and renders through, so that it uses exactly what
// a start would.
type Built struct {
	// Client is the agent's Vault client (VaultClient).
	Client *vaultclient.Client
	// Method is the configured auth method.
	Method auth.Method
	// Tokens is what the components reach Vault through; it holds no
	// token and no client until the caller logs in (Holder().Set) and
	// calls SetClient.
	Tokens *Tokens
	// Renderer is the config's renderer, nil without templates.
	Renderer Renderer
}

// Build builds cfg as a start or a reload does (Vault client, auth method,
// sinks, components) without starting anything or contacting Vault; an
// error is a config error. Validate is Build without its result.
func (r *Runner) Build(cfg *config.Config) (*Built, error) {
	tokens := auth.NewTokens(auth.NewHolder())
	in, err := r.build(cfg, nil, tokens)
	if err != nil {
		return nil, err
	}
	b := &Built{Client: in.client, Method: in.method, Tokens: tokens}
	for _, p := range in.parts {
		if p.spec.fatal == ErrTemplate && p.comp != nil {
			b.Renderer = p.comp
		}
	}
	return b, nil
}

// Run runs cfg (loaded from Paths when nil) until a stop signal (nil),
// exit_after_auth completes (nil), or a fatal error: an error wrapping
// ErrConfig for a config that cannot be used at start, wrapping
// auth.ErrLogin with exit_on_err, or wrapping ErrTemplate when a component
// gave up.
func (r *Runner) Run(ctx context.Context, cfg *config.Config) error {
	if cfg == nil {
		var err error
		if cfg, err = config.Load(r.Paths...); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if r.CheckInterval == 0 {
		r.CheckInterval = DefaultCheckInterval
	}
	sigs := r.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	tokens := auth.NewTokens(auth.NewHolder())
	r.kept = &auth.Keeper{}
	r.reach = &reach{log: r.Logger, notify: r.notify, now: time.Now}
	cur, err := r.build(cfg, nil, tokens)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.PidFile != "" {
		if err := atomicfile.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), atomicfile.Options{Mode: 0o644, UID: -1, GID: -1}); err != nil {
			return fmt.Errorf("%w: pid_file: %w", ErrConfig, err)
		}
		defer os.Remove(cfg.PidFile)
	}
	r.launch(ctx, cur, nil, nil, tokens)
	// The watchdog is fed from this loop, so that a wedged agent (not just
	// a dead one) is restarted by systemd.
	var watchdog <-chan time.Time
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		watchdog = t.C
	}
	if r.ReloadWait == 0 {
		r.ReloadWait = DefaultReloadWait
	}
	readyCh := cur.ready
	// reloadDue fires when a reload has waited ReloadWait for readyCh;
	// readySent is whether READY=1 was sent once (the start is over).
	var reloadDue <-chan time.Time
	readySent := false
	for {
		select {
		case <-watchdog:
			r.notify("WATCHDOG=1")
		case <-reloadDue:
			reloadDue = nil
			// The reload is applied; what it waits for goes on being
			// tried (logins back off, templates retry) as after a start
			// whose Vault went away later. READY=1 is sent again once
			// it is there.
			r.Logger.Warn("reload applied, but the new configuration is not ready yet (no token, or a sink or template not written); telling systemd the reload is done, still trying",
				zap.Duration("waited", r.ReloadWait))
			r.status("reloaded; not ready yet: waiting for a token or a first render")
			r.notify("READY=1")
			readySent = true
		case <-readyCh:
			readyCh, reloadDue = nil, nil
			if cur.cfg.ExitAfterAuth {
				r.Logger.Info("exit_after_auth: logged in and wrote every sink; exiting")
				r.notify("STOPPING=1")
				cur.end()
				return nil
			}
			r.notify("READY=1")
			readySent = true
		case <-cur.done:
			// Only a fatal error (exit_on_err, a component's) ends an
			// instance by itself.
			r.notify("STOPPING=1")
			cur.end()
			return cur.err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				next := r.reload(ctx, cur, tokens)
				switch {
				case next != cur:
					cur = next
					readyCh = cur.ready
					// A start still waiting for its first READY=1 is
					// not bounded (TimeoutStartSec=infinity); a reload is.
					if readySent {
						reloadDue = time.After(r.ReloadWait)
					}
				case reloadDue != nil:
					// A refused reload during an earlier one's wait:
					// that wait's READY=1 ends both.
				case readySent:
					r.notify("READY=1")
				}
			default:
				r.Logger.Info("stopping", zap.String("signal", sig.String()))
				r.notify("STOPPING=1")
				cur.end()
				return nil
			}
		case <-ctx.Done():
			r.notify("STOPPING=1")
			cur.end()
			return nil
		}
	}
}

// reload re-reads the whole config and builds the instance it describes
// before touching the running one: a config that does not load or build is
// refused and leaves the running instance exactly as it is (nothing is
// restarted, issued or rewritten). Otherwise the running instance is
// replaced; its token is kept when neither the Vault client settings nor the
// auth method changed, and each component whose config is unchanged keeps
// running. reload returns the instance that runs afterwards.
func (r *Runner) reload(ctx context.Context, cur *instance, tokens *Tokens) *instance {
	r.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	if r.ReopenLog != nil {
		if err := r.ReopenLog(); err != nil {
			r.Logger.Error("SIGHUP: log_file not reopened; logging on to the file open before", zap.Error(err))
		}
	}
	r.Logger.Info("SIGHUP: reloading the configuration")
	cfg, err := config.Load(r.Paths...)
	if err == nil {
		var next *instance
		if next, err = r.build(cfg, cur, tokens); err == nil {
			return r.swap(ctx, cur, next, tokens)
		}
	}
	r.Logger.Error("reload refused; the running configuration is unchanged", zap.Error(err))
	r.status("reload failed, running the previous configuration: " + auth.OneLine(err))
	return cur
}

// swap stops cur and launches next in its place, handing over what next
// keeps of cur (the login, unchanged components, what each unchanged sink
// holds).
//
// What next keeps of cur's login is read only once cur has stopped, so
// that a login that ends while cur stops is not lost. When the auth config
// is unchanged, next goes on with the token, or with the login cur had not
// finished (auth.Pending: the request in flight is answered to next, the
// wait between attempts goes on), and never sends a one-shot credential a
// second time. When the auth config changed, a login cur had in flight is
// given up: a token Vault still answers it with is revoked in the
// background (auth.Lifecycle.Abandon).
func (r *Runner) swap(ctx context.Context, cur, next *instance, tokens *Tokens) *instance {
	var kept, restarted []string
	var replaced []Component // cur's component each of next's replaces, by part
	for i, p := range next.parts {
		var old Component
		if rc := cur.parts[i].running; rc != nil {
			old = rc.c
		}
		switch {
		case p.running != nil:
			cur.parts[i].running = nil // handed over: stopping cur leaves it running
			kept = append(kept, p.spec.name)
			old = nil
		case p.comp != nil:
			restarted = append(restarted, p.spec.name)
		}
		replaced = append(replaced, old)
	}
	cur.stop()
	var keep *vaultclient.Secret
	pending := cur.lifecycle.Pending()
	authKept := sameAuth(cur.cfg, next.cfg)
	switch {
	case !authKept:
		if pending.InFlight() {
			go cur.lifecycle.Abandon(pending, true)
		}
		pending = nil
	case pending == nil:
		cur.mu.Lock()
		keep = cur.secret
		cur.mu.Unlock()
		keep = timeLeft(keep, cur.lifecycle.Expiry())
	}
	// With a login under way, cur had given up the token it may still
	// hold (or had none): there is nothing to keep but the login.
	next.leftover = cur.leftover
	for i, p := range next.parts {
		switch s, ok := p.comp.(Successor); {
		case ok && replaced[i] != nil:
			s.Inherit(replaced[i])
		case replaced[i] != nil:
			if _, ok := replaced[i].(Finisher); ok {
				next.leftover = append(next.leftover, replaced[i])
			}
		case p.comp != nil && p.running == nil:
			// The kind comes back after a reload removed it.
			next.leftover = adopt(p.comp, next.leftover)
		}
	}
	for _, s := range next.sinks {
		for _, old := range cur.sinks {
			s.Inherit(old)
		}
	}
	if keep == nil {
		// The old token is no longer renewed: it ends at its expiry, and
		// with it the leases it created.
		tokens.Holder().Retire(cur.lifecycle.Expiry())
	}
	// Described before launch: from then on next's lifecycle owns pending.
	var login string
	if pending != nil {
		login = pending.String()
	}
	r.launch(ctx, next, keep, pending, tokens)
	if r.OnReload != nil {
		r.OnReload(next.cfg)
	}
	fields := []zap.Field{zap.Strings("kept_running", kept), zap.Strings("restarted", restarted)}
	switch {
	case keep != nil:
		r.Logger.Info("reloaded; auth unchanged, keeping the token", fields...)
	case pending != nil:
		r.Logger.Info("reloaded; auth unchanged, going on with the login under way", append(fields, zap.String("login", login))...)
	case authKept:
		r.Logger.Info("reloaded; auth unchanged but no token to keep (none yet, or about to expire): logging in", fields...)
	default:
		r.Logger.Info("reloaded; auth changed, logging in again", fields...)
	}
	return next
}

// timeLeft returns the kept login with the TTL its token has left at
// expiry (zero: it never expires), or nil when it has less than a second
// left: the login's TTL counts from the login, not from the reload. The
// lifecycle looks the TTL up in Vault too; this is what it goes by when
// Vault cannot answer.
func timeLeft(keep *vaultclient.Secret, expiry time.Time) *vaultclient.Secret {
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
// (positions in the files aside), keeping its pending command records in
// the same state_dir.
func sameTemplates(a, b *config.Config) bool {
	strip := func(ts []config.Template) []config.Template {
		out := make([]config.Template, len(ts))
		for i, t := range ts {
			t.Range, t.Keys = hclconf.Range{}, nil
			out[i] = t
		}
		return out
	}
	return reflect.DeepEqual(strip(a.Templates), strip(b.Templates)) &&
		reflect.DeepEqual(a.TemplateConfig, b.TemplateConfig) && reflect.DeepEqual(a.Vault, b.Vault) &&
		a.ExitAfterAuth == b.ExitAfterAuth && a.StateDir == b.StateDir
}

// sameAuth reports whether b logs in as a does: the token (and the auth
// method, with what it read once, such as an AppRole secret id) is kept.
func sameAuth(a, b *config.Config) bool {
	strip := func(m auth.MethodConfig) auth.MethodConfig {
		m.File, m.Line, m.Range, m.ConfigRange, m.Keys = "", 0, hclconf.Range{}, hclconf.Range{}, nil
		return m
	}
	return reflect.DeepEqual(a.Vault, b.Vault) && reflect.DeepEqual(strip(a.AutoAuth.Method), strip(b.AutoAuth.Method)) &&
		a.StateDir == b.StateDir
}

// VaultClient is the agent's Vault client for cfg: the vault stanza, under
// the environment, under flags; the retries vault { retry { num_retries } }
// means (config.NumRetries: 12 for unset or 0, none for -1) unless
// VAULT_MAX_RETRIES or a flag set a count; a request timeout of
// config.DefaultVaultTimeout unless vault { timeout } or
// VAULT_CLIENT_TIMEOUT set one; failover across vault { addresses }; and
// template_config's max_connections_per_host, shared by every clone
// (renderers included).
// Logins do not use its retries: auth.Lifecycle sends each attempt once.
func VaultClient(cfg *config.Config, getenv func(string) string, flags vaultclient.Config) (*vaultclient.Client, error) {
	env, err := vaultclient.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	vc := cfg.Vault.Client.Merge(env).Merge(flags)
	if vc.MaxRetries == nil {
		vc.MaxRetries = cfg.Vault.NumRetries
	}
	if vc.Timeout == 0 {
		vc.Timeout = config.DefaultVaultTimeout
	}
	client, err := vaultclient.New(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	vaultclient.LimitConnsPerHost(client, cfg.TemplateConfig.MaxConnectionsPerHost)
	return client, nil
}

// build makes the instance cfg describes without starting a goroutine or
// contacting Vault; an error is a config error, and nothing then needs
// undoing. prev, when set, is the running instance: the new one takes over
// its auth method when the auth config is unchanged (a method holds what it
// read once, such as an AppRole secret id whose file was removed), and each
// of its components whose config is unchanged — after the new component
// was checked as a build would (a template source that no longer parses
// refuses the reload).
func (r *Runner) build(cfg *config.Config, prev *instance, tokens *Tokens) (*instance, error) {
	client, err := VaultClient(cfg, r.Getenv, r.Flags)
	if err != nil {
		return nil, err
	}
	a := cfg.AutoAuth
	method, err := methods.New(a.Method, auth.Env{StateDir: cfg.StateDir, Logger: r.Logger, Getenv: r.Getenv, Kept: r.kept, DryRun: r.DryRun})
	if err != nil {
		return nil, err
	}
	if prev != nil && sameAuth(prev.cfg, cfg) {
		method = prev.method
	}
	in := &instance{cfg: cfg, client: client, method: method}
	for _, sc := range a.Sinks {
		s, err := sink.New(sc, client, r.Logger)
		if err != nil {
			return nil, err
		}
		if cfg.ExitAfterAuth {
			// A one-shot run ends: after as many attempts as a failing
			// template gets (1 + vault { retry { num_retries } }).
			s.Attempts = cfg.TemplateConfig.RetryAttempts
		}
		in.sinks = append(in.sinks, s)
	}
	for i, spec := range r.components() {
		p := &part{spec: spec}
		if prev != nil && prev.parts[i].running != nil && spec.same(prev.cfg, cfg) {
			if spec.check != nil {
				if err := spec.check(cfg); err != nil {
					return nil, err
				}
			}
			p.running = prev.parts[i].running
		} else if p.comp, err = spec.build(cfg, tokens, r.Logger); err != nil {
			return nil, err
		}
		in.parts = append(in.parts, p)
	}
	in.lifecycle = &auth.Lifecycle{
		Method: method, Client: client, Namespace: a.Method.Namespace, Holder: tokens.Holder(), Logger: r.Logger,
		MinBackoff: a.MinBackoff, MaxBackoff: a.MaxBackoff, ExitOnErr: a.ExitOnErr,
		Splay:         cfg.LoginSplay,
		CheckInterval: r.CheckInterval,
		Status:        r.status,
		OnLogin: func(s *vaultclient.Secret) {
			in.mu.Lock()
			in.secret = s
			in.mu.Unlock()
		},
	}
	return in, nil
}

// launch starts a built instance. keep, when set, is a login to go on
// with instead of logging in; pending, when set, is a login under way to
// go on with (see swap). The instance is ready (in.ready closed) once
// there is a token, every sink has written it and every component is
// ready; that wait ends with the instance, so nothing is left blocked.
func (r *Runner) launch(parent context.Context, in *instance, keep *vaultclient.Secret, pending *auth.Pending, tokens *Tokens) {
	ctx, cancel := context.WithCancel(parent)
	in.cancel, in.done, in.ready, in.secret = cancel, make(chan struct{}), make(chan struct{}), keep
	denied := in.lifecycle.PermissionDenied
	// Every clone of client (sinks, components, the renewal watcher)
	// reports 403 answers, so a revoked token is replaced as soon as it is
	// used.
	report403(in.client, denied)
	if r.reach != nil {
		watchReach(in.client, r.reach)
	}
	tokens.SetClient(in.client, denied)
	var readies []<-chan struct{}
	if keep == nil {
		readies = append(readies, tokens.Holder().Changed()) // before the lifecycle can Set
	}
	var wg sync.WaitGroup
	for _, s := range in.sinks {
		written := make(chan struct{})
		readies = append(readies, written)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx, tokens.Holder(), func() { close(written) }); err != nil {
				in.fail(fmt.Errorf("%w: %w", ErrSink, err))
			}
		}()
	}
	for _, p := range in.parts {
		switch {
		case p.running != nil:
			p.running.adopt(in)
		case p.comp != nil:
			// A running component outlives this instance's context when a
			// reload hands it over, so it runs under the Runner's.
			p.running = startComponent(parent, p.spec, p.comp, tokens.Holder(), in)
		default:
			continue
		}
		readies = append(readies, p.running.c.Ready())
	}
	go func() {
		for _, ch := range readies {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		close(in.ready)
	}()
	go func() {
		err := in.lifecycle.Run(ctx, keep, pending)
		cancel()
		wg.Wait()
		for _, p := range in.parts {
			if p.running != nil { // not handed to a next instance
				p.running.stop()
			}
		}
		in.mu.Lock()
		if err == nil {
			err = in.fatal
		}
		in.mu.Unlock()
		in.err = err
		close(in.done)
	}()
}

// adopt lets c, new in a slot an earlier reload emptied, take over the
// work its predecessor left running (Adopter), the newest first, and
// returns the leftovers it did not take.
func adopt(c Component, leftover []Component) []Component {
	a, ok := c.(Adopter)
	if !ok {
		return leftover
	}
	for j := len(leftover) - 1; j >= 0; j-- {
		if a.Adopt(leftover[j]) {
			return append(leftover[:j:j], leftover[j+1:]...)
		}
	}
	return leftover
}

// end stops the instance for good (the agent stops): a login it had in
// flight is cancelled at once, so that the stop is not delayed by a Vault
// that does not answer (auth.Lifecycle.Abandon).
//
// Then the work its stopped components left running (Finisher: a
// template's command) is ended, within its grace period.
func (in *instance) end() {
	in.stop()
	in.lifecycle.Abandon(in.lifecycle.Pending(), false)
	comps := in.leftover
	for _, p := range in.parts {
		if p.running != nil {
			comps = append(comps, p.running.c)
		}
	}
	for _, c := range comps {
		if f, ok := c.(Finisher); ok {
			f.Finish()
		}
	}
}

// stop ends the instance and waits for its goroutines.
func (in *instance) stop() {
	in.cancel()
	<-in.done
}

// status sends a STATUS= line (remembered, to be shown again once Vault
// answers after an outage).
func (r *Runner) status(s string) {
	if r.reach == nil {
		r.notify("STATUS=" + s)
		return
	}
	r.reach.status(s)
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
