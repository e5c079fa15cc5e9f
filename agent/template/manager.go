package template

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/template/command"
	"github.com/latchkey/latchkey/agent/template/renderer"
)

// Clients gives the manager a Vault client holding the agent's current
// token, and takes reports of 403 answers (agent/runner.Tokens does both).
type Clients interface {
	Client() (*api.Client, error)
	PermissionDenied()
}

// Logins is implemented by Clients that know which login a token belongs to
// (agent/runner.Tokens does). A lease belongs to the token that created it:
// Vault revokes it when that token expires or is revoked, however often it
// was renewed. With Logins, leases of a token the agent gave up are fetched
// again under the new token; secrets without a lease (KV, certificates) are
// not touched by a re-login.
type Logins interface {
	// Login returns the current token's generation (one more per login).
	Login() uint64
	// Ended returns when the token of generation gen stops working, and
	// false while that is unknown (in use, or never expires).
	Ended(gen uint64) (time.Time, bool)
	// LoginEvents returns a channel closed at the next login or token
	// retirement.
	LoginEvents() <-chan struct{}
}

// Options configure a Manager.
type Options struct {
	Templates []config.Template
	Config    config.TemplateConfig
	Clients   Clients
	Logger    *zap.Logger
	// OneShot makes Run give up (with an error) on a template that still
	// fails after RetryAttempts, as exit_after_auth needs.
	OneShot bool
	// RetryMin and RetryMax bound the wait before a failed template is
	// tried again (defaults 250ms and 1m, as Vault Agent); RetryAttempts is
	// how many failures in a row count as "retries exhausted" (default 12).
	RetryMin, RetryMax time.Duration
	RetryAttempts      int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// AllowIssue lets a dry run (Render) send what issues or writes in
	// Vault (render -dry-run -issue).
	AllowIssue bool
	// SourceQuiet is how long an edited template source must stay
	// unchanged before it is read again (default 250ms).
	SourceQuiet time.Duration
}

// ErrRetriesExhausted wraps the error of a template that kept failing when
// exit_on_retry_failure (or one-shot mode) makes that fatal.
var ErrRetriesExhausted = errors.New("template failed after its retries")

// Manager renders templates and keeps them current.
type Manager struct {
	o      Options
	units  []*unit
	brain  *brain
	mounts *mounts
	ready  chan struct{}

	mu    sync.Mutex
	deps  map[string]*dep
	state []unitState
	// watcher, when file watching works; a destination directory made by
	// create_dest_dirs is added after the first render.
	watcher *fsnotify.Watcher
	// preview is set during a dry run (Render); issued lists what it sent
	// that issues or writes.
	preview bool
	issued  []string
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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryMin == 0 {
		o.RetryMin = 250 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = time.Minute
	}
	if o.SourceQuiet == 0 {
		o.SourceQuiet = 250 * time.Millisecond
	}
	if o.RetryAttempts == 0 {
		o.RetryAttempts = 12
	}
	if o.Config.LeaseRenewalThreshold == 0 {
		o.Config = config.DefaultTemplateConfig()
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
		wait := time.Until(m.nextWake())
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev := <-events:
			timer.Stop()
			m.onFileEvent(ev)
		case <-logins:
			timer.Stop()
			logins = m.loginEvents()
			m.orphanLeases()
		case <-timer.C:
			m.refreshDue(ctx)
		}
	}
}

// RenderOnce renders every template once (exit_after_auth): it returns nil
// when all rendered, or the first template's error once its retries are
// exhausted.
func (m *Manager) RenderOnce(ctx context.Context) error {
	o := m.o
	m.o.OneShot = true
	defer func() { m.o = o }()
	return m.Run(ctx)
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
	now := m.o.Now()
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
			wait := backoff(m.o.RetryMin, m.o.RetryMax, st.fails)
			st.retryAt = m.o.Now().Add(wait)
			m.o.Logger.Error("template failed; other templates are unaffected", zap.String("template", u.name),
				zap.Error(err), zap.Int("failures", st.fails), zap.Duration("retry_in", wait))
			if st.fails >= m.o.RetryAttempts && (m.o.Config.ExitOnRetryFailure || m.o.OneShot) {
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
		ex := u.execute(m.brain, m.o.Now, mask)
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

// use records that unit i uses queries, and no others: a query a template
// stopped using (its source was edited) is no longer refreshed for it.
func (m *Manager) use(i int, used map[string]*query) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, d := range m.deps {
		if _, ok := used[k]; !ok {
			delete(d.users, i)
		}
	}
	for k, q := range used {
		d := m.deps[k]
		if d == nil {
			d = &dep{q: q, users: map[int]bool{}}
			m.deps[k] = d
		}
		d.users[i] = true
	}
}

// fetch gets q from Vault and stores it in the brain. A query already
// fetched (by another template) is not fetched again; one that failed is
// fetched again only by a retry of a template that needs it, and not
// within RetryMin of the failure, so that templates sharing a failing
// secret do not each ask for it.
func (m *Manager) fetch(ctx context.Context, q *query) error {
	prev, seen := m.brain.get(q.key)
	if seen && prev.err == nil {
		return nil
	}
	if seen && m.o.Now().Sub(prev.fetched) < m.o.RetryMin {
		return prev.err
	}
	if err := m.previewCheck(q); err != nil {
		return err
	}
	login := m.login()
	c, err := m.o.Clients.Client()
	if err != nil {
		return err
	}
	r := q.fetch(ctx, c, m.mounts, !seen)
	r.login = login
	m.brain.set(q.key, r)
	if r.err != nil {
		m.report403(r.err)
		return r.err
	}
	m.schedule(q.key, r)
	return nil
}

func (m *Manager) report403(err error) {
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		m.o.Clients.PermissionDenied()
	}
}

// schedule decides when a fetched query needs attention again.
func (m *Manager) schedule(key string, r result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.deps[key]
	if d == nil {
		return
	}
	d.next = m.nextFor(r)
}

func (m *Manager) nextFor(r result) time.Time {
	c := m.o.Config
	switch {
	case !r.notAfter.IsZero():
		return jitterBefore(renewAt(r.notBefore, r.notAfter, c.LeaseRenewalThreshold), r.notAfter.Sub(r.notBefore)/20)
	case r.leaseID != "" && r.lease > 0 && r.renewable:
		return r.fetched.Add(r.lease * 2 / 3)
	case r.leaseID != "" && r.lease > 0:
		life := time.Duration(float64(r.lease) * c.LeaseRenewalThreshold)
		return jitterBefore(r.fetched.Add(life), r.lease/20)
	}
	interval := c.StaticSecretRenderInterval
	if r.ttl > 0 && r.ttl < interval {
		interval = r.ttl
	}
	return r.fetched.Add(interval)
}

// jitterBefore moves t earlier by up to j, so that a fleet does not renew
// in step.
func jitterBefore(t time.Time, j time.Duration) time.Time {
	if j <= 0 {
		return t
	}
	return t.Add(-time.Duration(rand.Int64N(int64(j))))
}

func (m *Manager) nextWake() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.o.Now().Add(time.Hour)
	for _, d := range m.deps {
		if len(d.users) > 0 && !d.next.IsZero() && d.next.Before(next) {
			next = d.next
		}
	}
	for _, st := range m.state {
		if !st.reloadAt.IsZero() && st.reloadAt.Before(next) {
			next = st.reloadAt
		}
		at := st.retryAt
		if st.holdUntil.After(at) {
			at = st.holdUntil
		}
		if st.dirty && at.Before(next) {
			next = at
		}
	}
	return next
}

// refreshDue renews or fetches again every query whose time has come and
// marks the templates using a changed one for rendering.
func (m *Manager) refreshDue(ctx context.Context) {
	now := m.o.Now()
	m.mu.Lock()
	var due []*dep
	for _, d := range m.deps {
		if len(d.users) > 0 && !d.next.IsZero() && !now.Before(d.next) {
			due = append(due, d)
		}
	}
	m.mu.Unlock()
	for _, d := range due {
		old, _ := m.brain.get(d.q.key)
		if old.renewable && old.leaseID != "" && !old.orphaned && m.renew(ctx, d, old) {
			continue
		}
		login := m.login()
		c, err := m.o.Clients.Client()
		if err != nil {
			m.o.Logger.Warn("refresh postponed: no token", zap.Error(err))
			m.mu.Lock()
			d.next = now.Add(time.Second)
			m.mu.Unlock()
			continue
		}
		r := d.q.fetch(ctx, c, m.mounts, false)
		r.login = login
		if r.err != nil {
			m.report403(r.err)
			m.o.Logger.Error("refresh failed", zap.String("query", d.q.String()), zap.Error(r.err))
			m.brain.set(d.q.key, r)
			// The users' retries (with their backoff) fetch it again and
			// reschedule it once it is back; until then it is not due.
			m.mu.Lock()
			d.next = time.Time{}
			m.mu.Unlock()
			m.markUsers(d)
			continue
		}
		m.brain.set(d.q.key, r)
		m.schedule(d.q.key, r)
		if !sameValue(old.value, r.value) {
			m.markUsers(d)
		}
	}
}

// renew extends a renewable lease; false means fetch it again instead.
func (m *Manager) renew(ctx context.Context, d *dep, old result) bool {
	c, err := m.o.Clients.Client()
	if err != nil {
		return false
	}
	s, err := c.Sys().RenewWithContext(ctx, old.leaseID, int(old.lease.Seconds()))
	if err != nil || s == nil || s.LeaseDuration <= 0 {
		if err != nil {
			m.report403(err)
		}
		m.o.Logger.Info("lease renewal failed; fetching the secret again", zap.String("query", d.q.String()), zap.Error(err))
		return false
	}
	got := time.Duration(s.LeaseDuration) * time.Second
	if got < old.lease {
		// Vault capped the renewal (max_ttl ahead): renewing again would
		// only shrink it further, so treat what is left like a
		// non-renewable lease — fetched again at lease_renewal_threshold
		// of it, before the credentials expire under the application.
		old.renewable = false
	}
	old.lease, old.fetched = got, m.o.Now()
	m.brain.set(d.q.key, old)
	m.schedule(d.q.key, old)
	m.o.Logger.Debug("lease renewed", zap.String("query", d.q.String()), zap.Duration("lease", got))
	return true
}

// login returns the current token's generation (0 without Logins).
func (m *Manager) login() uint64 {
	if l, ok := m.o.Clients.(Logins); ok {
		return l.Login()
	}
	return 0
}

// loginEvents returns a channel closed at the next login or token
// retirement (nil, never closed, without Logins).
func (m *Manager) loginEvents() <-chan struct{} {
	if l, ok := m.o.Clients.(Logins); ok {
		return l.LoginEvents()
	}
	return nil
}

// orphanLeases makes every lease created by a token that was given up for
// a newer one due now: it is fetched again under the new token (not
// renewed: renewing does not move a lease to another token), before Vault
// revokes it with its token.
func (m *Manager) orphanLeases() {
	l, ok := m.o.Clients.(Logins)
	if !ok {
		return
	}
	cur := l.Login()
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, d := range m.deps {
		r, ok := m.brain.get(key)
		if !ok || r.err != nil || r.leaseID == "" || r.orphaned || r.login >= cur {
			continue
		}
		end, ok := l.Ended(r.login)
		if !ok {
			continue
		}
		r.orphaned = true
		m.brain.set(key, r)
		d.next = m.o.Now()
		m.o.Logger.Info("the token that created this lease was replaced; fetching it again",
			zap.String("query", d.q.String()), zap.Time("old_token_ends", end))
	}
}

func (m *Manager) markUsers(d *dep) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	for i := range d.users {
		st := &m.state[i]
		st.dirty = true
		w := m.units[i].cfg.Wait
		if w.Min <= 0 || !st.rendered {
			continue
		}
		// consul-template's quiescence: max defaults to 4 × min.
		maxWait := w.Max
		if maxWait <= 0 {
			maxWait = 4 * w.Min
		}
		if st.firstChange.IsZero() {
			st.firstChange = now
		}
		st.holdUntil = now.Add(w.Min)
		if limit := st.firstChange.Add(maxWait); st.holdUntil.After(limit) {
			st.holdUntil = limit
		}
	}
}

// watch adds the directories of sources and destinations to w (watching a
// directory sees a file replaced by rename, which watching the file would
// not).
func (m *Manager) watch(w *fsnotify.Watcher) {
	dirs := map[string]bool{}
	for _, u := range m.units {
		for _, p := range []string{u.cfg.Source, u.cfg.Destination} {
			if p != "" {
				dirs[filepath.Dir(p)] = true
			}
		}
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			m.o.Logger.Debug("cannot watch directory (yet)", zap.String("dir", d), zap.Error(err))
		}
	}
}

func (m *Manager) onFileEvent(ev fsnotify.Event) {
	for i, u := range m.units {
		if slices.Contains(m.state[i].files, ev.Name) {
			m.state[i].dirty = true
		}
		switch ev.Name {
		case u.cfg.Source:
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
				continue
			}
			m.state[i].reloadAt = m.o.Now().Add(m.o.SourceQuiet)
		case u.cfg.Destination:
			// Deleted or altered by someone else: render puts it back (and
			// does nothing when it is already right).
			m.state[i].dirty = true
		}
	}
}

// reloadSources reads again the edited sources that have been quiet long
// enough; one that does not load keeps the previous template.
func (m *Manager) reloadSources() {
	now := m.o.Now()
	for i, u := range m.units {
		st := &m.state[i]
		if st.reloadAt.IsZero() || now.Before(st.reloadAt) {
			continue
		}
		st.reloadAt = time.Time{}
		if err := u.load(); err != nil {
			m.o.Logger.Error("template source changed but does not load; keeping the previous one", zap.String("template", u.name), zap.Error(err))
			continue
		}
		m.o.Logger.Info("template source changed", zap.String("template", u.name))
		st.dirty = true
	}
}

// sameValue compares what templates can see of two results; a Secret's
// request id changes at every read and is not a change.
func sameValue(a, b any) bool {
	sa, okA := a.(*Secret)
	sb, okB := b.(*Secret)
	if okA && okB {
		return reflect.DeepEqual(sa.Data, sb.Data) && sa.LeaseID == sb.LeaseID && sa.LeaseDuration == sb.LeaseDuration
	}
	return reflect.DeepEqual(a, b)
}

func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}
