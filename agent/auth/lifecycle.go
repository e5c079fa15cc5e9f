package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

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

	mu     sync.Mutex
	expiry time.Time // when the held token expires unless renewed (zero: never)
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
// its TTL is looked up again first.
func (l *Lifecycle) Run(ctx context.Context, initial *vaultclient.Secret) error {
	l.denials()
	secret := initial
	if secret != nil {
		secret = l.refresh(ctx, secret)
	} else if !l.splay(ctx) {
		return nil
	}
	for {
		fresh := secret == nil
		if fresh {
			var err error
			if secret, err = l.login(ctx); err != nil {
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

// splay waits a random part of Splay, saying so; it returns false when ctx
// ended first.
func (l *Lifecycle) splay(ctx context.Context) bool {
	if l.Splay <= 0 {
		return true
	}
	wait := time.Duration(rand.Int64N(int64(l.Splay)))
	l.Logger.Info("waiting before the first login (login_splay)", zap.Duration("wait", wait), zap.Duration("login_splay", l.Splay))
	l.status(fmt.Sprintf("waiting %s before logging in (login_splay %s)", wait.Round(time.Millisecond), l.Splay))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// login tries until it gets a token, one request per attempt, with
// Vault's own error logged (and in STATUS) after each failed one. It
// returns (nil, nil) when ctx ends, and an error only with ExitOnErr.
func (l *Lifecycle) login(ctx context.Context) (*vaultclient.Secret, error) {
	b := &Backoff{Min: l.MinBackoff, Max: l.MaxBackoff}
	for {
		l.status("logging in with " + l.Method.Describe())
		secret, err := LoginOnce(ctx, l.Method, l.Client, l.Namespace)
		if err == nil {
			l.Logger.Info("logged in", zap.String("method", l.Method.Describe()),
				zap.Strings("policies", secret.Auth.Policies), zap.Int("ttl_seconds", secret.Auth.LeaseDuration),
				zap.Bool("renewable", secret.Auth.Renewable), zap.String("accessor", secret.Auth.Accessor))
			return secret, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if l.ExitOnErr {
			return nil, fmt.Errorf("%w: %s: %w", ErrLogin, l.Method.Describe(), err)
		}
		wait := b.Next()
		l.Logger.Error("login failed", zap.String("method", l.Method.Describe()), zap.Error(err), zap.Duration("retry_in", wait))
		l.status(fmt.Sprintf("login failed, retrying in %s: %s", wait.Round(time.Second), OneLine(err)))
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(wait):
		}
	}
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
		l.Logger.Warn("kept token: lookup-self failed; going by its last known TTL", zap.Error(err))
		return secret
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		l.Logger.Warn("kept token: lookup-self ttl unreadable; going by its last known TTL", zap.Error(err))
		return secret
	}
	renewable, _ := s.TokenIsRenewable()
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
	var sched *renewSchedule
	var timer *time.Timer
	var renewC <-chan time.Time
	if ttl > 0 {
		sched = newRenewSchedule(time.Now(), ttl, secret.Auth.Renewable)
		timer = time.NewTimer(time.Until(sched.At))
		defer timer.Stop()
		renewC = timer.C
	}
	var check <-chan time.Time
	if l.CheckInterval > 0 {
		t := time.NewTicker(l.CheckInterval)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return "", time.Time{}
		case <-renewC:
			if !sched.Renew {
				if sched.err != nil {
					if revoked(ctx, client) {
						return "renewal failed, token revoked: " + sched.err.Error(), time.Now()
					}
					return "renewal failed: " + sched.err.Error(), l.Expiry()
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
			now := time.Now()
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
			timer.Reset(time.Until(sched.At))
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
		l.expiry = time.Now().Add(ttl)
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
