package template

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Fetching: which template uses which query, and the one sequence that
// asks Vault and stores the answer (fetch at a render, refreshDue on
// schedule).

// use records that unit i uses queries, and no others: a query a template
// stopped using (its source was edited) is no longer refreshed for it.
func (m *Manager) use(i int, used map[string]*query) {
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

// retryNow makes every failing template due for a retry at once: called
// at a login, whose new token is what a template refused with the old one
// (a restarted Vault, a revoked token) needed. Its next failure backs off
// from where it was.
func (m *Manager) retryNow() {
	gen := m.login()
	if gen == m.retried {
		return // a retirement, not a login: the token is the same
	}
	m.retried = gen
	for i := range m.state {
		if st := &m.state[i]; st.dirty && st.fails > 0 {
			st.retryAt = time.Time{}
		}
	}
}

// fetchAll gets the queries qs from Vault, concurrently (at most workers
// at a time), stores the answers in the brain and returns the error of
// each query that has one, by key. A query already fetched (by another
// template) is not fetched again; one that failed is fetched again only by
// a retry of a template that needs it, and not within RetryMin of the
// failure unless that was under an older token, so that templates sharing
// a failing secret do not each ask for it.
//
// Only the requests run on other goroutines, each with its own client;
// what they share is the mount cache, which has its own lock. Everything
// else (brain, schedule, dry-run bookkeeping) is done here, on the
// manager's goroutine.
func (m *Manager) fetchAll(ctx context.Context, qs []*query) map[string]error {
	errs := map[string]error{}
	type ask struct {
		q     *query
		c     *vaultclient.Client
		first bool
		r     result
	}
	var asks []*ask
	login := m.login()
	now := m.o.Clock.Now()
	for _, q := range qs {
		prev, seen := m.brain.get(q.key)
		if seen && prev.err == nil {
			continue
		}
		if seen && now.Sub(prev.fetched) < m.o.Config.RetryMin && prev.login >= login {
			errs[q.key] = prev.err
			continue
		}
		if err := m.previewCheck(ctx, q); err != nil {
			errs[q.key] = err
			continue
		}
		c, err := m.o.Clients.Client()
		if err != nil {
			errs[q.key] = err // no token yet: nothing stored
			continue
		}
		asks = append(asks, &ask{q: q, c: c, first: !seen})
	}
	parallel(len(asks), workers, func(k int) {
		a := asks[k]
		a.r = a.q.fetch(ctx, a.c, m.mounts, a.first, now)
	})
	for _, a := range asks {
		a.r.login = login
		m.brain.set(a.q.key, a.r)
		if a.r.err != nil {
			m.report403(a.r.err)
			errs[a.q.key] = a.r.err
			continue
		}
		m.schedule(a.q.key, a.r)
	}
	return errs
}

// ask sends q with the current token and stores the result in the brain,
// reporting a 403 to the auth loop; first is true for a query never
// fetched in this process. It returns the result (whose err is Vault's
// answer), or an error, with nothing stored, when there is no token yet.
func (m *Manager) ask(ctx context.Context, q *query, first bool) (result, error) {
	login := m.login()
	c, err := m.o.Clients.Client()
	if err != nil {
		return result{}, err
	}
	r := q.fetch(ctx, c, m.mounts, first, m.o.Clock.Now())
	r.login = login
	m.brain.set(q.key, r)
	if r.err != nil {
		m.report403(r.err)
	}
	return r, nil
}

func (m *Manager) report403(err error) {
	if auth.IsForbidden(err) {
		m.o.Clients.PermissionDenied()
	}
}

// login returns the current token's generation.
func (m *Manager) login() uint64 { return m.o.Clients.Login() }

// loginEvents returns a channel closed at the next login or token
// retirement.
func (m *Manager) loginEvents() <-chan struct{} { return m.o.Clients.LoginEvents() }
