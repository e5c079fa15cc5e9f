package template

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/template/command"
	"github.com/latchkey/latchkey/agent/template/renderer"
	"github.com/latchkey/latchkey/internal/clock"
)

// Clients is how the manager reaches Vault with the agent's current token
// (auth.Clients, implemented by auth.Tokens; test/testkit.Clients is the
// tests' double, with a token they set).
type Clients = auth.Clients

// Options configure a Manager.
type Options struct {
	Templates []config.Template
	Config    config.TemplateConfig
	Clients   Clients
	Logger    *zap.Logger
	// OneShot makes Run give up (with an error) on a template that still
	// fails after Config.RetryAttempts, as exit_after_auth needs.
	OneShot bool
	// Clock is the one clock of renders, fetches, schedules and the timers
	// of the render loop (clock.Real when nil; tests pass a fake one).
	Clock clock.Clock
	// AllowIssue lets a dry run (Render) send what issues or writes in
	// Vault (render -dry-run -issue).
	AllowIssue bool
	// Settle, when set, is called when the render loop goes quiet after a
	// burst of renders, at most once per SettleEvery (the agent returns
	// freed memory to the OS there).
	Settle func()
}

// ErrRetriesExhausted wraps the error of a template that kept failing when
// exit_on_retry_failure (or one-shot mode) makes that fatal.
var ErrRetriesExhausted = errors.New("template failed after its retries")

// Manager renders templates and keeps them current. It is used by one
// goroutine at a time — Run's, or the caller of Render or of Inherit (on a
// manager not yet running, from one that stopped) — and starts none that
// touch its state, so it holds no lock.
type Manager struct {
	o      Options
	units  []*unit
	brain  *brain
	mounts *mounts
	ready  chan struct{}

	deps  map[string]*dep
	state []unitState
	// watcher, when file watching works; a destination directory made by
	// create_dest_dirs is added after the first render.
	watcher *fsnotify.Watcher
	// preview is set during a dry run (Render); issued lists what it sent
	// that issues or writes.
	preview bool
	issued  []string
	// retried is the login whose token failing templates were last
	// retried with (retryNow).
	retried uint64
	// byPath lists the units whose source or destination is a path.
	byPath map[string][]int

	// settled is what the last Options.Settle call saw.
	settled settled
}

type unitState struct {
	rendered bool
	dirty    bool
	fails    int
	retryAt  time.Time
	lastErr  error
	// firstChange and holdUntil implement wait { min, max }: after a
	// change the render waits for min of quiet, but no longer than max
	// after the first change.
	firstChange time.Time
	holdUntil   time.Time
	// files are those the template read with `file` at its last
	// execution: a change to one re-renders it, as in consul-template.
	files []string
	// reloadAt, when set, is when to read the edited source again: an
	// edit is read once the file has been quiet for SourceQuiet, so that an
	// in-place write (truncate, then write) is not loaded half-written.
	reloadAt time.Time
	// written is the destination as the last render left it: an event
	// for the destination in that state is the render's own.
	written destID
}

// dep is a fetched query, its users and when it needs attention.
type dep struct {
	q     *query
	users map[int]bool
	next  time.Time
}

// New parses every template; a template that cannot be read or parsed is
// a config error naming its file.
func New(o Options) (*Manager, error) {
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	// Every setting comes finalized from agent/config (config.Load, or
	// config.DefaultTemplateConfig): the manager has no defaults of its own.
	if c := o.Config; c.LeaseRenewalThreshold <= 0 || c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.RetryAttempts <= 0 || c.SourceQuiet <= 0 {
		return nil, errors.New("template: Options.Config is not finalized (config.Load or config.DefaultTemplateConfig)")
	}
	m := &Manager{o: o, brain: newBrain(), mounts: &mounts{threshold: o.Config.LeaseRenewalThreshold},
		ready: make(chan struct{}), deps: map[string]*dep{}}
	for _, t := range o.Templates {
		u, err := newUnit(t)
		if err != nil {
			return nil, err
		}
		if _, _, err := renderer.Owner(t); err != nil {
			return nil, err
		}
		m.units = append(m.units, u)
	}
	m.state = make([]unitState, len(m.units))
	if len(m.units) == 0 {
		close(m.ready)
	}
	return m, nil
}

// Ready is closed once every template has been rendered once.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// Run renders every template, then keeps them current until ctx ends
// (it returns nil). It returns an error wrapping ErrRetriesExhausted when a
// template keeps failing and exit_on_retry_failure (or OneShot) is set.
func (m *Manager) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		m.o.Logger.Warn("file watching unavailable; sources and destinations are checked only on refresh", zap.Error(err))
	} else {
		defer w.Close()
		m.watcher = w
		defer func() { m.watcher = nil }()
		m.watch(w)
	}
	var events <-chan fsnotify.Event
	if w != nil {
		events = w.Events
	}
	for i := range m.state {
		m.state[i].dirty = true
	}
	// Taken again before each look at the leases, so that a login or
	// retirement while they are looked at closes the channel next waited on.
	logins := m.loginEvents()
	for {
		m.reloadSources()
		if err := m.renderDirty(ctx); err != nil {
			return err
		}
		if m.o.OneShot && m.isReady() {
			return nil
		}
		m.settle()
		timer := m.o.Clock.TimerAt(m.nextWake())
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev := <-events:
			timer.Stop()
			m.onFileEvents(ev, events)
		case <-logins:
			timer.Stop()
			logins = m.loginEvents()
			m.orphanLeases()
			m.retryNow()
		case <-timer.C():
			m.refreshDue(ctx)
		}
	}
}

func (m *Manager) isReady() bool {
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

// renderDirty renders the templates marked dirty whose retry time has come.
func (m *Manager) renderDirty(ctx context.Context) error {
	now := m.o.Clock.Now()
	for i, u := range m.units {
		st := &m.state[i]
		if !st.dirty || now.Before(st.retryAt) || now.Before(st.holdUntil) {
			continue
		}
		st.firstChange, st.holdUntil = time.Time{}, time.Time{}
		err := m.renderUnit(ctx, i, u)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			st.fails++
			st.lastErr = err
			wait := backoff(m.o.Config.RetryMin, m.o.Config.RetryMax, st.fails)
			st.retryAt = m.o.Clock.Now().Add(wait)
			m.o.Logger.Error("template failed; other templates are unaffected", zap.String("template", u.name),
				zap.Error(err), zap.Int("failures", st.fails), zap.Duration("retry_in", wait))
			if st.fails >= m.o.Config.RetryAttempts && (m.o.Config.ExitOnRetryFailure || m.o.OneShot) {
				return fmt.Errorf("%w: %s: %w", ErrRetriesExhausted, u.name, err)
			}
			continue
		}
		st.dirty, st.fails, st.lastErr, st.retryAt = false, 0, nil, time.Time{}
		if !st.rendered {
			st.rendered = true
			m.maybeReady()
		}
	}
	return nil
}

func (m *Manager) maybeReady() {
	for _, st := range m.state {
		if !st.rendered {
			return
		}
	}
	if !m.isReady() {
		close(m.ready)
	}
}

// renderUnit executes u, fetching what it misses, and writes it.
func (m *Manager) renderUnit(ctx context.Context, i int, u *unit) error {
	ex, err := m.complete(ctx, u, false, func(ex execution) {
		m.use(i, ex.used)
		m.state[i].files = ex.files
		if m.watcher != nil {
			for _, f := range ex.files {
				m.watcher.Add(filepath.Dir(f)) // idempotent
			}
		}
	})
	if err != nil {
		return err
	}
	wrote, changed, err := renderer.Write(u.cfg, ex.out)
	if err != nil {
		return err
	}
	m.state[i].written = identify(u.cfg.Destination)
	if m.watcher != nil {
		m.watcher.Add(filepath.Dir(u.cfg.Destination)) // idempotent
	}
	if wrote && !changed {
		m.o.Logger.Info("restored mode and owner", zap.String("template", u.name))
	}
	if changed {
		m.o.Logger.Info("rendered", zap.String("template", u.name))
		if u.cfg.Exec != nil && len(u.cfg.Exec.Command) > 0 {
			// A failing command is logged and runs again on the next
			// change; it never fails the template or stops the agent.
			if err := command.Run(ctx, u.cfg.Exec); err != nil {
				m.o.Logger.Error("template command failed", zap.String("template", u.name), zap.Error(err))
			}
		}
	}
	return nil
}

// complete executes u, fetching what it misses, until nothing is missing
// (consul-template's two-phase render), and returns that execution. seen,
// when set, is told of every execution (what it used, which files it read).
func (m *Manager) complete(ctx context.Context, u *unit, mask bool, seen func(execution)) (execution, error) {
	for pass := 0; pass < 16; pass++ {
		ex := u.execute(m.brain, m.o.Clock.Now, mask)
		if seen != nil {
			seen(ex)
		}
		if len(ex.missing) == 0 {
			return ex, ex.err
		}
		for _, q := range ex.missing {
			if err := m.fetch(ctx, q); err != nil {
				return ex, err
			}
		}
	}
	return execution{}, fmt.Errorf("template %s: still missing secrets after 16 rounds", u.name)
}
