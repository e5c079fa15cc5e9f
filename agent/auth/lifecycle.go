package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/clock"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"go.uber.org/zap"
)

// Lifecycle logs in, keeps the token alive and logs in again when it must.
// One place decides "renew or log in again": watch.
type Lifecycle struct {
	Method Method
	// Client carries the Vault address and TLS; its token is never used.
	Client *vaultclient.Client
	// Namespace is the method's namespace ("" keeps the client's).
	Namespace string
	Holder    *Holder
	Logger    *zap.Logger
	// MinBackoff and MaxBackoff bound the wait between failed logins.
	MinBackoff, MaxBackoff time.Duration
	// ExitOnErr makes Run return after the first failed login.
	ExitOnErr bool
	// Splay, when positive, makes Run wait a random time in [0, Splay)
	// before its first login (not before going on with an initial token),
	// so that a fleet started at once does not log in as one herd.
	Splay time.Duration
	// CheckInterval is how often the token is looked up to notice a
	// revocation between renewals (0: never).
	CheckInterval time.Duration
	// Status, when set, receives a line for systemd's STATUS=.
	Status func(string)
	// OnLogin, when set, is called with each new login response (before
	// the token is published), so that a reload can keep it.
	OnLogin func(*vaultclient.Secret)

	deniedOnce sync.Once
	denied     chan struct{}

	mu      sync.Mutex
	expiry  time.Time // when the held token expires unless renewed (zero: never)
	pending *Pending  // the login left unfinished when Run's context ended
}

// ErrLogin wraps a login failure that ended Run (exit_on_err).
var ErrLogin = errors.New("login failed")

// PermissionDenied tells the lifecycle that a user of the token got a 403.
// The lifecycle checks the token and logs in again if it was revoked. It
// never blocks.
func (l *Lifecycle) PermissionDenied() {
	select {
	case l.denials() <- struct{}{}:
	default:
	}
}

// denials makes the channel on first use: PermissionDenied may come from
// other goroutines (renderers, the client's CheckRetry hook) before Run.
func (l *Lifecycle) denials() chan struct{} {
	l.deniedOnce.Do(func() { l.denied = make(chan struct{}, 1) })
	return l.denied
}

// Run logs in and keeps a valid token in Holder until ctx ends (it then
// returns nil) or, with ExitOnErr, a login fails (it returns an error
// wrapping ErrLogin). initial, when non-nil, is a token to start with
// instead of logging in (a reload that kept the token), already in Holder;
// its TTL is looked up again first. pending, when non-nil, is the login a
// previous lifecycle with the same auth config left unfinished (Pending):
// Run goes on with it instead of starting one. A login Run leaves
// unfinished when ctx ends is then Pending's.
func (l *Lifecycle) Run(ctx context.Context, initial *vaultclient.Secret, pending *Pending) error {
	l.denials()
	secret := initial
	if secret != nil {
		secret = l.refresh(ctx, secret)
		if ctx.Err() != nil {
			// Replaced (a newer reload) or stopped during the lookup:
			// the next lifecycle goes on with the token, and no
			// STATUS= of this one may follow its own.
			return nil
		}
	}
	// login_splay is for an agent's first login only: not before going on
	// with a kept token or a handed-over login, nor before a re-login.
	splay := initial == nil && pending == nil
	for {
		fresh := secret == nil
		if fresh {
			p := pending
			pending = nil
			if p == nil {
				p = l.newPending(splay)
			} else {
				p.adjust(l.MinBackoff, l.MaxBackoff)
			}
			splay = false
			var err error
			if secret, err = l.login(ctx, p); err != nil {
				return err
			}
			if secret == nil { // ctx ended
				return nil
			}
		}
		// STATUS before the token is published: READY=1 follows the sinks'
		// writes, and must never come before "authenticated".
		l.status(l.held(secret))
		if fresh {
			if l.OnLogin != nil {
				l.OnLogin(secret)
			}
			l.Holder.Set(secret.Auth.ClientToken)
		}
		reason, end := l.watch(ctx, secret)
		if ctx.Err() != nil {
			return nil
		}
		// Leases the old token created die with it: say when, so that
		// templates fetch theirs again under the next token.
		l.Holder.Retire(end)
		l.Logger.Info("logging in again", zap.String("reason", reason))
		secret = nil
	}
}

// Pending is a login a lifecycle had not finished when its Run ended: an
// attempt in flight — Vault may already have consumed a one-shot
// credential (a single-use secret id) and be issuing a token — or the wait
// before the next attempt (login_splay, the backoff after a failure).
//
// A reload that keeps the auth config hands it to the next lifecycle
// (Run's pending), which reads the attempt's answer, or keeps the wait and
// the backoff, instead of logging in anew: a second login with the same
// single-use credential is refused forever, one with a reusable credential
// leaves the first login's token live with nobody holding it, and a wait
// started again from min_backoff at every SIGHUP would turn a reload loop
// into a login loop. Anything else gives it up with Abandon.
type Pending struct {
	attempt *attempt  // nil: none in flight
	at      time.Time // when the next attempt is due (zero: at once)
	backoff Backoff
}

// attempt is one login request, sent on a context of its own: ending the
// lifecycle's context does not cancel it, so that its answer is not lost
// when a reload hands it over.
type attempt struct {
	done   chan struct{}
	secret *vaultclient.Secret // set before done is closed
	err    error
	cancel context.CancelFunc
}

// String says what the login is doing, for the log.
func (p *Pending) String() string {
	if p.attempt != nil {
		return "a login request is in flight"
	}
	if wait := time.Until(p.at); wait > 0 {
		return "next login attempt in " + wait.Round(time.Millisecond).String()
	}
	return "logging in"
}

// InFlight reports whether a login request has been sent and not yet
// answered (or its answer not yet read).
func (p *Pending) InFlight() bool { return p != nil && p.attempt != nil }

// newPending starts a login: at once, or after a random part of Splay for
// the first login of an agent (splay true).
func (l *Lifecycle) newPending(splay bool) *Pending {
	p := &Pending{backoff: Backoff{Min: l.MinBackoff, Max: l.MaxBackoff}}
	if splay && l.Splay > 0 {
		wait := time.Duration(rand.Int64N(int64(l.Splay)))
		l.Logger.Info("waiting before the first login (login_splay)", zap.Duration("wait", wait), zap.Duration("login_splay", l.Splay))
		l.status(fmt.Sprintf("waiting %s before logging in (login_splay %s)", wait.Round(time.Millisecond), l.Splay))
		p.at = time.Now().Add(wait)
	}
	return p
}

// adjust applies the bounds of the lifecycle p is handed to (a reload may
// change min_backoff and max_backoff while keeping the auth method): the
// backoff goes on where it was, within the new bounds, and a wait is never
// longer than the new max_backoff from now.
func (p *Pending) adjust(lo, hi time.Duration) {
	p.backoff.Min, p.backoff.Max = lo, hi
	if p.backoff.cur != 0 {
		p.backoff.cur = min(max(p.backoff.cur, lo), hi)
	}
	if latest := time.Now().Add(hi); hi > 0 && p.at.After(latest) {
		p.at = latest
	}
}

// Pending returns the login Run left unfinished when its context ended,
// or nil; it is meant for after Run returned.
func (l *Lifecycle) Pending() *Pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending
}

func (l *Lifecycle) setPending(p *Pending) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = p
}

// Abandon gives up p, a login of this lifecycle that no lifecycle goes on
// with. With revoke (a reload changed the auth config), an attempt in
// flight is left to finish — each request is bounded by the client's
// timeout — and a token Vault answers it with is revoked (revoke-self), so
// that the login given up leaves no live token nobody holds; Abandon then
// returns once that is done, and is meant to run in its own goroutine.
// A borrowed token (token_file's, see Borrower) is never revoked. Without revoke (the agent stops), the attempt is cancelled at once, so
// that the stop is not delayed: a token Vault may already have issued for
// it is held by nobody and ends at its TTL, as after a kill.
func (l *Lifecycle) Abandon(p *Pending, revoke bool) {
	if p == nil || p.attempt == nil {
		return
	}
	a := p.attempt
	if !revoke {
		a.cancel()
		<-a.done
		return
	}
	<-a.done
	defer a.cancel()
	if a.err != nil {
		l.Logger.Info("a login given up by a reload failed", zap.String("method", l.Method.Describe()), zap.Error(a.err))
		return
	}
	accessor := a.secret.Auth.Accessor
	if Borrowed(l.Method) {
		l.Logger.Info("a login given up by a reload read a token that is not the agent's; left as it is", zap.String("method", l.Method.Describe()), zap.String("accessor", accessor))
		return
	}
	c, err := Clone(l.Client, a.secret.Auth.ClientToken, l.Namespace)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), max(l.Client.Timeout(), time.Second))
		_, err = c.Write(ctx, "auth/token/revoke-self", nil)
		cancel()
	}
	if err != nil {
		l.Logger.Warn("a login given up by a reload brought a token that could not be revoked; it ends at its TTL",
			zap.String("accessor", accessor), zap.Int("ttl_seconds", a.secret.Auth.LeaseDuration), zap.Error(err))
		return
	}
	l.Logger.Info("a login given up by a reload brought a token; revoked it", zap.String("accessor", accessor))
}

// send starts one login attempt (LoginOnce) on a context that ctx's end
// does not cancel (see attempt).
func (l *Lifecycle) send(ctx context.Context) *attempt {
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &attempt{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(a.done)
		a.secret, a.err = LoginOnce(actx, l.Method, l.Client, l.Namespace)
	}()
	return a
}

// login goes on with p until it gets a token, one request per attempt,
// with Vault's own error logged (and in STATUS) after each failed one, and
// the next attempt no sooner than a Retry-After Vault sent with it, within
// max_backoff (Backoff.After). It
// returns (nil, nil) when ctx ends, leaving p in Pending, and an error
// only with ExitOnErr.
func (l *Lifecycle) login(ctx context.Context, p *Pending) (*vaultclient.Secret, error) {
	for {
		if p.attempt == nil {
			if wait := time.Until(p.at); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					l.setPending(p)
					return nil, nil
				case <-t.C:
				}
			}
			l.status("logging in with " + l.Method.Describe())
			p.attempt = l.send(ctx)
		}
		select {
		case <-ctx.Done():
			l.setPending(p)
			return nil, nil
		case <-p.attempt.done:
		}
		secret, err := p.attempt.secret, p.attempt.err
		p.attempt.cancel()
		p.attempt = nil
		if err == nil {
			l.Logger.Info("logged in", zap.String("method", l.Method.Describe()),
				zap.Strings("policies", secret.Auth.Policies), zap.Int("ttl_seconds", secret.Auth.LeaseDuration),
				zap.Bool("renewable", secret.Auth.Renewable), zap.String("accessor", secret.Auth.Accessor))
			return secret, nil
		}
		if l.ExitOnErr {
			return nil, fmt.Errorf("%w: %s: %w", ErrLogin, l.Method.Describe(), err)
		}
		// A rate limit quota's 429 says when to come back: not before.
		asked := retryAfter(err)
		wait, capped := p.backoff.After(asked)
		p.at = time.Now().Add(wait)
		fields := []zap.Field{zap.String("method", l.Method.Describe()), zap.Error(err), zap.Duration("retry_in", wait)}
		if asked > 0 {
			fields = append(fields, zap.Duration("retry_after", asked))
		}
		l.Logger.Error("login failed", fields...)
		if capped {
			l.Logger.Warn("vault asked to wait longer than max_backoff before the next login; retrying after max_backoff",
				zap.Duration("retry_after", asked), zap.Duration("max_backoff", p.backoff.Max))
		}
		l.status(fmt.Sprintf("login failed, retrying in %s: %s", wait.Round(time.Second), OneLine(err)))
	}
}

// retryAfter returns the wait Vault's answer in err asked for before the
// next request (Retry-After on a 429 or 503, see
// vaultclient.ResponseError), or 0 when it asked for none.
func retryAfter(err error) time.Duration {
	var re *vaultclient.ResponseError
	if errors.As(err, &re) {
		return re.RetryAfter
	}
	return 0
}

// LoginOnce makes one login attempt with method on a token-less clone of
// client (in namespace, "" keeping client's) and returns Vault's response,
// which holds a token; or the error of the attempt. The attempt is sent
// once: the client's retries (vault { retry }, meant for templates) would
// replay a signed login that cloud STS refuses the second time, and hide
// Vault's answer for minutes. A next attempt signs anew.
func LoginOnce(ctx context.Context, method Method, client *vaultclient.Client, namespace string) (*vaultclient.Secret, error) {
	c, err := Clone(client, "", namespace)
	if err != nil {
		return nil, err
	}
	c.SetMaxRetries(0)
	secret, err := method.Login(ctx, c)
	if err == nil && (secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "") {
		err = errors.New("vault's login response holds no token")
	}
	if err != nil {
		return nil, err
	}
	return secret, nil
}

// refresh returns the kept login secret with the TTL and renewability
// Vault reports now (lookup-self). The login response's TTL counts from
// the login: a watcher started later with it would outlive a token it
// cannot renew, and the agent would hold an expired token. It returns nil
// (log in again) when Vault refuses the token, and secret itself when
// Vault cannot be asked: the caller passes it with the time it has left.
// A lookup that ctx's end cut short (a newer reload, a stop) is no
// failure of Vault's and is not logged: it returns secret.
func (l *Lifecycle) refresh(ctx context.Context, secret *vaultclient.Secret) *vaultclient.Secret {
	client, err := Clone(l.Client, secret.Auth.ClientToken, l.Namespace)
	if err != nil {
		l.Logger.Warn("kept token: cannot look it up; going by its last known TTL", zap.Error(err))
		return secret
	}
	s, err := client.LookupSelf(ctx)
	if IsForbidden(err) {
		l.Logger.Info("logging in again", zap.String("reason", "the kept token no longer works (lookup-self: permission denied)"))
		l.Holder.Retire(time.Now())
		return nil
	}
	if err == nil && (s == nil || s.Data == nil) {
		err = errors.New("empty lookup-self response")
	}
	if err != nil {
		if ctx.Err() == nil {
			l.Logger.Warn("kept token: lookup-self failed; going by its last known TTL", zap.Error(err))
		}
		return secret
	}
	ttl, renewable, err := LookupTTL(s)
	if errors.Is(err, ErrExpiring) {
		l.Logger.Info("logging in again", zap.String("reason", "the kept token "+err.Error()))
		l.Holder.Retire(time.Now())
		return nil
	}
	if err != nil {
		l.Logger.Warn("kept token: lookup-self ttl unreadable; going by its last known TTL", zap.Error(err))
		return secret
	}
	return WithTTL(secret, int(ttl.Seconds()), renewable)
}

// WithTTL returns a copy of the login secret whose token has seconds left
// and is (or is not) renewable; secret itself is not changed.
func WithTTL(secret *vaultclient.Secret, seconds int, renewable bool) *vaultclient.Secret {
	a := *secret.Auth
	a.LeaseDuration, a.Renewable = seconds, renewable
	out := *secret
	out.Auth = &a
	return &out
}

// watch keeps secret's token alive and returns why a new login is needed —
// renewal ended (max TTL reached, renewal failed, token expiring) or the
// token was revoked — and when the token stops working: now when it was
// revoked, its expiry otherwise (zero for a token that never expires). It
// returns "" when ctx ends.
func (l *Lifecycle) watch(ctx context.Context, secret *vaultclient.Secret) (string, time.Time) {
	client, err := Clone(l.Client, secret.Auth.ClientToken, l.Namespace)
	if err != nil {
		return err.Error(), l.Expiry()
	}
	ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second
	l.setExpiry(ttl)
	// A token that expires is renewed (never right after its login) or,
	// when it cannot be, replaced: sched says when.
	// By the wall clock (clock.Real): a renewal due during a suspend comes
	// right after the resume, not as late as the suspend was long.
	var sched *renewSchedule
	var timer clock.Timer
	var renewC <-chan time.Time
	if ttl > 0 {
		sched = newRenewSchedule(clock.Real.Now(), ttl, secret.Auth.Renewable)
		timer = clock.Real.TimerAt(sched.At)
		defer func() { timer.Stop() }()
		renewC = timer.C()
	}
	var check <-chan time.Time
	if l.CheckInterval > 0 {
		t := time.NewTicker(l.CheckInterval)
		defer t.Stop()
		check = t.C
	}
	var credChanged <-chan struct{}
	if w, ok := l.Method.(CredentialWatcher); ok {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		credChanged = w.CredentialChanged(wctx, secret.Auth.ClientToken)
	}
	holding := false // held to its end: a login would give the same token
	for {
		select {
		case <-ctx.Done():
			return "", time.Time{}
		case <-credChanged:
			return "the credential changed (" + l.Method.Describe() + " gives another token)", l.Expiry()
		case <-renewC:
			if holding {
				return "token expired, and " + l.Method.Describe() + " gave no other", l.Expiry()
			}
			if !sched.Renew {
				if sched.err != nil {
					if revoked(ctx, client) {
						return "renewal failed, token revoked: " + sched.err.Error(), time.Now()
					}
					return "renewal failed: " + sched.err.Error(), l.Expiry()
				}
				if end := l.Expiry(); credChanged != nil && !end.IsZero() {
					holding = true
					l.Logger.Warn("the token cannot be renewed further and a new login would give the same one; holding it until it expires (replace the credential to log in again)",
						zap.String("method", l.Method.Describe()), zap.Time("expires", end))
					l.status(fmt.Sprintf("authenticated with %s%s, token expires at %s and cannot be renewed: replace it to go on",
						l.Method.Describe(), roleOf(secret), end.UTC().Format(time.RFC3339)))
					timer = clock.Real.TimerAt(end)
					renewC = timer.C()
					continue
				}
				return "token reached its max TTL or stopped being renewable", l.Expiry()
			}
			s, err := client.RenewSelf(ctx, 0)
			if ctx.Err() != nil {
				return "", time.Time{}
			}
			if err == nil && (s == nil || s.Auth == nil) {
				err = errors.New("empty renewal response")
			}
			now := clock.Real.Now()
			if err != nil {
				if IsForbidden(err) && revoked(ctx, client) {
					return "renewal failed, token revoked: " + err.Error(), time.Now()
				}
				sched.failed(now, err, IsForbidden(err))
				l.Logger.Warn("token renewal failed", zap.Error(err), zap.Duration("retry_in", sched.At.Sub(now)))
			} else {
				next := time.Duration(s.Auth.LeaseDuration) * time.Second
				l.setExpiry(next)
				sched.renewed(now, next, s.Auth.Renewable)
				l.Logger.Debug("token renewed", zap.Duration("ttl", next))
				l.status(l.authenticated(secret, next, "token renewed for "+next.String()+", "))
			}
			timer = clock.Real.TimerAt(sched.At)
			renewC = timer.C()
		case <-check:
			if revoked(ctx, client) {
				return "token revoked (lookup-self: permission denied)", time.Now()
			}
		case <-l.denials():
			if revoked(ctx, client) {
				return "token revoked (a user of the token got permission denied)", time.Now()
			}
		}
	}
}

// Expiry returns when the token held now expires unless renewed (zero for
// one that never expires, or before the first login).
func (l *Lifecycle) Expiry() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiry
}

func (l *Lifecycle) setExpiry(ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expiry = time.Time{}
	if ttl > 0 {
		l.expiry = clock.Real.Now().Add(ttl) // by the wall clock, as Vault counts it
	}
}

// held is the STATUS line of a token just obtained (or kept by a reload).
func (l *Lifecycle) held(secret *vaultclient.Secret) string {
	if ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second; ttl > 0 {
		return l.authenticated(secret, ttl, "")
	}
	return fmt.Sprintf("authenticated with %s%s, token does not expire", l.Method.Describe(), roleOf(secret))
}

// revoked reports whether Vault refuses the token's own lookup: revoked or
// expired. Network errors are not a revocation.
func revoked(ctx context.Context, c *vaultclient.Client) bool {
	_, err := c.LookupSelf(ctx)
	return IsForbidden(err)
}

// authenticated is the STATUS line of a held token, e.g. `authenticated
// with approle at auth/approle as role "web", token renews in 40m0s`. The
// renewSchedule renews at about two thirds of the TTL; a non-renewable
// token is replaced shortly before it expires.
func (l *Lifecycle) authenticated(secret *vaultclient.Secret, ttl time.Duration, renewed string) string {
	when := "renews in " + (ttl * 2 / 3).Round(time.Second).String()
	if !secret.Auth.Renewable {
		when = "expires in " + ttl.Round(time.Second).String() + " (not renewable: logging in again before)"
	}
	return fmt.Sprintf("authenticated with %s%s, %stoken %s", l.Method.Describe(), roleOf(secret), renewed, when)
}

// roleOf names the Vault role the login response reports (approle's
// role_name, aws's and alicloud's role), or "".
func roleOf(secret *vaultclient.Secret) string {
	for _, k := range []string{"role_name", "role"} {
		if r := secret.Auth.Metadata[k]; r != "" {
			return fmt.Sprintf(" as role %q", r)
		}
	}
	return ""
}

func (l *Lifecycle) status(s string) {
	if l.Status != nil {
		l.Status(s)
	}
}
