package template

import (
	"context"
	"math/rand/v2"
	"reflect"
	"time"

	"go.uber.org/zap"
)

// The schedule: when each fetched query needs attention again (renewal at
// two thirds of a renewable lease, refetch at lease_renewal_threshold of a
// non-renewable lease or a certificate's life, static_secret_render_interval
// otherwise), the wait { min, max } timers, and leases orphaned by a
// replaced token.

// schedule decides when a fetched query needs attention again.
func (m *Manager) schedule(key string, r result) {
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
	next := m.o.Clock.Now().Add(time.Hour)
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
	now := m.o.Clock.Now()
	var due []*dep
	for _, d := range m.deps {
		if len(d.users) > 0 && !d.next.IsZero() && !now.Before(d.next) {
			due = append(due, d)
		}
	}
	for _, d := range due {
		old, _ := m.brain.get(d.q.key)
		if old.renewable && old.leaseID != "" && !old.orphaned && m.renew(ctx, d, old) {
			continue
		}
		r, err := m.ask(ctx, d.q, false)
		if err != nil {
			m.o.Logger.Warn("refresh postponed: no token", zap.Error(err))
			d.next = now.Add(time.Second)
			continue
		}
		if r.err != nil {
			m.o.Logger.Error("refresh failed", zap.String("query", d.q.String()), zap.Error(r.err))
			// The users' retries (with their backoff) fetch it again and
			// reschedule it once it is back; until then it is not due.
			d.next = time.Time{}
			m.markUsers(d)
			continue
		}
		m.schedule(d.q.key, r)
		if !sameValue(old.value, r.value) {
			m.markUsers(d)
			continue
		}
		m.checkDestinations(d)
	}
}

// checkDestinations marks for rendering the users of d whose destination
// is not as their last render left it, as Vault Agent rewrites a file at
// each refresh: a change no event told of (a watch that could not be
// added, at fs.inotify.max_user_watches; a directory moved away and made
// anew) is put right by the next refresh instead of never.
func (m *Manager) checkDestinations(d *dep) {
	for i := range d.users {
		st := &m.state[i]
		if st.dirty || st.written == (destID{}) || identify(m.units[i].cfg.Destination) == st.written {
			continue
		}
		m.o.Logger.Info("destination changed without a file event; rendering it again", zap.String("template", m.units[i].name))
		st.dirty = true
	}
}

// renew extends a renewable lease; false means fetch it again instead.
func (m *Manager) renew(ctx context.Context, d *dep, old result) bool {
	c, err := m.o.Clients.Client()
	if err != nil {
		return false
	}
	s, err := c.RenewLease(ctx, old.leaseID, int(old.lease.Seconds()))
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
	old.lease, old.fetched = got, m.o.Clock.Now()
	m.brain.set(d.q.key, old)
	m.schedule(d.q.key, old)
	m.o.Logger.Debug("lease renewed", zap.String("query", d.q.String()), zap.Duration("lease", got))
	return true
}

// orphanLeases makes every lease created by a token that was given up for
// a newer one due now: it is fetched again under the new token (not
// renewed: renewing does not move a lease to another token), before Vault
// revokes it with its token.
func (m *Manager) orphanLeases() {
	l := m.o.Clients
	cur := l.Login()
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
		d.next = m.o.Clock.Now()
		m.o.Logger.Info("the token that created this lease was replaced; fetching it again",
			zap.String("query", d.q.String()), zap.Time("old_token_ends", end))
	}
}

func (m *Manager) markUsers(d *dep) {
	now := m.o.Clock.Now()
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

func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
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
