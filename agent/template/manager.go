package template

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	gotemplate "text/template"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/template/funcs"
	"github.com/latchkey/latchkey/agent/template/renderer"
	"github.com/latchkey/latchkey/internal/atomicfile"
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
	// StateDir is latchkey { state_dir }: where a command that has not run
	// to its end is recorded (see commands.go). Empty: in memory only.
	StateDir string
}

// ErrRetriesExhausted wraps the error of a template that kept failing when
// exit_on_retry_failure (or one-shot mode) makes that fatal.
var ErrRetriesExhausted = errors.New("template failed after its retries")

// Manager renders templates and keeps them current. It is used by one
// goroutine at a time — Run's, or the caller of Render or of Inherit (on a
// manager not yet running, from one that stopped) — and starts none that
// touch its state, so it holds no lock: the goroutines of a render round
// (renderUnits) send requests and write files with copies of what they
// need, and the mount cache they share has a lock of its own.
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
	preview *preview
	issued  []string
	// retried is the login whose token failing templates were last
	// retried with (retryNow).
	retried uint64
	// byPath lists the units whose source or destination is a path.
	byPath map[string][]int
	// helpers are the template functions that need no Vault, on the
	// manager's clock, shared by every unit (helperFuncs).
	helpers gotemplate.FuncMap
	// cmds are the template commands pending and running, handed from
	// manager to manager by Inherit.
	cmds *commands
}

// helperFuncs returns m.helpers, built at the first call.
func (m *Manager) helperFuncs() gotemplate.FuncMap {
	if m.helpers == nil {
		m.helpers = funcs.Helpers(m.o.Clock.Now)
	}
	return m.helpers
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
		ready: make(chan struct{}), deps: map[string]*dep{}, cmds: newCommands(o.StateDir, o.Logger)}
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
// A template command running when ctx ends is left running: see Inherit
// and Finish.
func (m *Manager) Run(ctx context.Context) error {
	m.cmds.load(m.units)
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
	var watchErrs <-chan error
	if w != nil {
		events, watchErrs = w.Events, w.Errors
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
		timer := m.o.Clock.TimerAt(m.nextWake())
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev := <-events:
			timer.Stop()
			m.onFileEvents(ev, events)
		case err := <-watchErrs:
			// Read, or fsnotify's reader blocks on sending it and no event
			// comes again: after the first overflow of the kernel's queue
			// (a tar or rsync into a watched directory while a command
			// ran) no edit or deletion was seen for the agent's life.
			timer.Stop()
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				m.o.Logger.Warn("file watch lost events (its queue overflowed); rendering every template again and reading changed sources", zap.Error(err))
				m.rescan()
			} else {
				m.o.Logger.Warn("file watch error", zap.Error(err))
			}
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

// renderDirty renders the templates marked dirty whose retry time has come,
// together (renderUnits).
func (m *Manager) renderDirty(ctx context.Context) error {
	now := m.o.Clock.Now()
	var due []int
	for i := range m.units {
		st := &m.state[i]
		if !st.dirty || now.Before(st.retryAt) || now.Before(st.holdUntil) {
			continue
		}
		st.firstChange, st.holdUntil = time.Time{}, time.Time{}
		due = append(due, i)
	}
	if len(due) == 0 {
		return nil
	}
	due = m.withSharers(due, now)
	errs := m.renderUnits(ctx, due)
	if ctx.Err() != nil {
		return nil
	}
	for _, i := range due {
		u, st := m.units[i], &m.state[i]
		if err := errs[i]; err != nil {
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
		st.rendered = true
	}
	m.maybeReady()
	return nil
}

// withSharers adds to due (sorted, config order) the templates that share
// a destination with one in it, so that they are written together, one
// after the other: rendered alone, one overwrote the other's file, whose
// watch then rendered that one alone, which overwrote the first's, and so
// on for ever — the file flipping between the two hundreds of times a
// second. The last in config order wins, as in Vault Agent, which writes
// every template at each run. A sharer failing (in backoff) or waiting for
// quiet (wait { min }) is left to its own time.
func (m *Manager) withSharers(due []int, now time.Time) []int {
	in := map[int]bool{}
	dests := map[string]bool{}
	for _, i := range due {
		in[i] = true
		dests[filepath.Clean(m.units[i].cfg.Destination)] = true
	}
	for j, u := range m.units {
		st := &m.state[j]
		if in[j] || !dests[filepath.Clean(u.cfg.Destination)] || st.fails > 0 || now.Before(st.holdUntil) {
			continue
		}
		st.dirty = true // so that a failure now is retried
		due = append(due, j)
	}
	sort.Ints(due)
	return due
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

// workers bounds the goroutines of one render round: the fetches sent at
// once (Vault Agent's max_connections_per_host is 10) and the destinations
// written at once (concurrent fsyncs share the file system's journal
// commits: 51 files took a sixth of the time written 8 at a time).
const workers = 8

// renderUnit renders unit i alone (latchkey-agent render).
func (m *Manager) renderUnit(ctx context.Context, i int) error {
	return m.renderUnits(ctx, []int{i})[i]
}

// renderUnits executes the units idx, fetching what they miss (each
// distinct query once, the fetches of a round concurrently), writes those
// that executed (concurrently, one goroutine per destination at a time),
// and then runs their commands one by one in config order, as Vault Agent
// runs them after its templates are written. It returns each failed
// unit's error by index.
//
// Only the manager's goroutine touches the units and the manager's state:
// a write goroutine sees its destination's config and output, copied, and
// nothing else.
func (m *Manager) renderUnits(ctx context.Context, idx []int) map[int]error {
	exs, errs := m.completeAll(ctx, idx, false, func(i int, ex execution) {
		m.use(i, ex.used)
		m.state[i].files = ex.files
		if m.watcher != nil {
			for _, f := range ex.files {
				m.watcher.Add(filepath.Dir(f)) // idempotent
			}
		}
	})
	type write struct {
		unit    int
		cfg     config.Template
		out     []byte
		wrote   bool
		changed bool
		err     error
	}
	// One job per destination: two templates with the same destination
	// are written one after the other, in config order, as before.
	var jobs [][]*write
	byDest := map[string]int{}
	var writes []*write
	for _, i := range idx {
		if errs[i] != nil {
			continue
		}
		w := &write{unit: i, cfg: m.units[i].cfg, out: exs[i].out}
		writes = append(writes, w)
		d := filepath.Clean(w.cfg.Destination)
		k, ok := byDest[d]
		if !ok {
			k = len(jobs)
			byDest[d] = k
			jobs = append(jobs, nil)
		}
		jobs[k] = append(jobs[k], w)
	}
	// Each file is fsynced before its rename; the directories are fsynced
	// once each after every rename into them has happened (dirs.Sync): one
	// directory fsync covers all the renames done before it. A file counts
	// as rendered (command, Ready) only after that.
	var dirs atomicfile.Dirs
	parallel(len(jobs), workers, func(k int) {
		for _, w := range jobs[k] {
			w.wrote, w.changed, w.err = renderer.WriteDeferred(w.cfg, w.out, &dirs)
		}
	})
	failed := dirs.Sync()
	for _, w := range writes {
		i, u := w.unit, m.units[w.unit]
		dest := filepath.Clean(u.cfg.Destination)
		if err := failed[filepath.Dir(dest)]; w.err == nil && w.wrote && err != nil {
			w.err = fmt.Errorf("write %s: %w", dest, err)
		}
		if w.err != nil {
			errs[i] = w.err
			continue
		}
		m.state[i].written = identify(u.cfg.Destination)
		if m.watcher != nil {
			m.watcher.Add(filepath.Dir(u.cfg.Destination)) // idempotent
		}
		if w.wrote && !w.changed {
			m.o.Logger.Info("restored mode and owner", zap.String("template", u.name))
		}
		if w.changed {
			m.o.Logger.Info("rendered", zap.String("template", u.name))
		}
	}
	// A failing command is logged and runs again on the next change; it
	// never fails the template or stops the agent. A command pending from
	// before (see commands.go) runs once its destination is current,
	// changed or not — unless it is the one still running.
	var cmds []int
	for _, w := range writes {
		u := m.units[w.unit]
		if w.err != nil || !hasCommand(u.cfg) {
			continue
		}
		pending, running, adopted := m.cmds.isPending(pendingName(u.cfg))
		switch {
		case w.changed:
		case pending && !running:
			m.o.Logger.Info("template command did not run to its end (interrupted by a stop, a crash or a reload); running it now",
				zap.String("template", u.name))
		case adopted:
			// Left running by a killed agent: runCommands waits for it
			// (never two at once), then runs it, how it ended unknown.
		default:
			continue
		}
		cmds = append(cmds, w.unit)
	}
	m.runCommands(ctx, cmds)
	return errs
}

// complete executes unit i, fetching what it misses, until nothing is
// missing, and returns that execution (see completeAll).
func (m *Manager) complete(ctx context.Context, i int, mask bool) (execution, error) {
	exs, errs := m.completeAll(ctx, []int{i}, mask, nil)
	return exs[i], errs[i]
}

// completeAll executes the units idx, fetching what they miss, until
// nothing is missing (consul-template's two-phase render), and returns
// their last executions and the errors of those that failed, by index.
// Each round fetches every query missed by any of them once, concurrently
// (fetchAll). seen, when set, is told of every execution (what it used,
// which files it read).
func (m *Manager) completeAll(ctx context.Context, idx []int, mask bool, seen func(int, execution)) (map[int]execution, map[int]error) {
	exs, errs := map[int]execution{}, map[int]error{}
	pending := idx
	for pass := 0; pass < 16 && len(pending) > 0; pass++ {
		var missed []int
		var qs []*query
		queued := map[string]bool{}
		for _, i := range pending {
			ex := m.units[i].execute(m.brain, m.helperFuncs(), mask)
			if seen != nil {
				seen(i, ex)
			}
			exs[i] = ex
			if len(ex.missing) == 0 {
				if ex.err != nil {
					errs[i] = ex.err
				}
				continue
			}
			missed = append(missed, i)
			for _, k := range sortedKeys(ex.missing) {
				if !queued[k] {
					queued[k] = true
					qs = append(qs, ex.missing[k])
				}
			}
		}
		ferrs := m.fetchAll(ctx, qs)
		pending = nil
		for _, i := range missed {
			errs[i] = nil
			for _, k := range sortedKeys(exs[i].missing) {
				if err := ferrs[k]; err != nil {
					errs[i] = err
					break
				}
			}
			if errs[i] == nil {
				delete(errs, i)
				pending = append(pending, i)
			}
		}
	}
	for _, i := range pending {
		errs[i] = fmt.Errorf("template %s: still missing secrets after 16 rounds", m.units[i].name)
	}
	return exs, errs
}

func sortedKeys(qs map[string]*query) []string {
	ks := make([]string, 0, len(qs))
	for k := range qs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// parallel runs f(0) … f(n-1) on at most max goroutines and returns once
// every call has returned.
func parallel(n, max int, f func(int)) {
	if n == 1 {
		f(0)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, max) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
				f(k)
			}
		}()
	}
	wg.Wait()
}
