package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"
)

// LoginError is returned by Lifecycle.Run when a login failed and
// exit_on_err is set.
type LoginError struct{ Err error }

func (e *LoginError) Error() string { return "auto_auth login failed: " + e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

// Lifecycle logs in with Method, keeps the token alive and logs in again
// when it cannot, publishing every token in Tokens.
type Lifecycle struct {
	Method Method
	Tokens *Tokens
	// Client reaches Vault; it must hold no token. Namespace is the
	// method's own (applied to logins only).
	Client    *api.Client
	Namespace string
	// WrapTTL response-wraps logins (method wrap_ttl); such tokens are
	// handed to sinks and never renewed.
	WrapTTL time.Duration
	// MinBackoff and MaxBackoff bound the waits between failed logins.
	MinBackoff, MaxBackoff time.Duration
	// ExitOnErr ends Run at the first failed login.
	ExitOnErr bool
	Logger    *zap.Logger
	// Status, when set, receives one-line descriptions of what the loop is
	// doing, for systemd's STATUS=.
	Status func(string)
}

// Run logs in and keeps a valid token in Tokens until ctx ends. It returns
// nil when ctx ends, and a *LoginError when a login failed with ExitOnErr.
func (l *Lifecycle) Run(ctx context.Context) error {
	for {
		secret, err := l.login(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		tok := l.Tokens.publish(tokenOf(secret))
		reason := l.hold(ctx, tok, secret)
		if ctx.Err() != nil {
			return nil
		}
		l.Logger.Info("logging in again", zap.String("reason", reason))
	}
}

func tokenOf(s *api.Secret) Token {
	if s.WrapInfo != nil {
		return Token{Wrapped: s.WrapInfo}
	}
	return Token{Value: s.Auth.ClientToken, Auth: s.Auth}
}

// login tries until a login succeeds, waiting with jittered exponential
// backoff between attempts. It returns ctx's error when ctx ends, and a
// *LoginError at the first failure with ExitOnErr.
func (l *Lifecycle) login(ctx context.Context) (*api.Secret, error) {
	b := NewBackoff(l.MinBackoff, l.MaxBackoff)
	for {
		l.status("logging in with " + l.Method.Describe())
		secret, err := l.loginOnce(ctx)
		if err == nil {
			l.Logger.Info("logged in", zap.String("method", l.Method.Describe()), zap.Stringer("ttl", ttlOf(secret)))
			return secret, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if l.ExitOnErr {
			return nil, &LoginError{Err: err}
		}
		wait := b.Next()
		l.Logger.Warn("login failed", zap.String("method", l.Method.Describe()), zap.Error(err), zap.Duration("retry_in", wait))
		l.status(fmt.Sprintf("login failed, retrying in %s: %v", wait.Round(time.Second), err))
		if !Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// loginOnce runs the method once and checks that Vault's answer holds a
// token (or, wrapped, its wrap info).
func (l *Lifecycle) loginOnce(ctx context.Context) (*api.Secret, error) {
	c, err := Clone(l.Client)
	if err != nil {
		return nil, err
	}
	c.ClearToken()
	if l.Namespace != "" {
		c.SetNamespace(l.Namespace)
	}
	if l.WrapTTL > 0 {
		ttl := l.WrapTTL.String()
		c.SetWrappingLookupFunc(func(string, string) string { return ttl })
	}
	secret, err := l.Method.Login(ctx, c)
	switch {
	case err != nil:
		return nil, err
	case secret == nil:
		return nil, errors.New("login returned nothing")
	case l.WrapTTL > 0 && secret.WrapInfo == nil:
		return nil, errors.New("login response is not wrapped although wrap_ttl is set")
	case l.WrapTTL == 0 && (secret.Auth == nil || secret.Auth.ClientToken == ""):
		return nil, errors.New("login response holds no token")
	}
	return secret, nil
}

// hold keeps tok until it must be replaced and returns why. This is the one
// place that decides between renewing and logging in again:
//   - a wrapped login is kept until ctx ends (the agent cannot renew it);
//   - a renewable token is renewed by api.LifetimeWatcher until renewal
//     fails or the max TTL nears;
//   - a non-renewable (or batch) token is kept until 85% of its TTL;
//   - in every case a 403 answer that lookup-self confirms (a revoked
//     token) ends it at once.
func (l *Lifecycle) hold(ctx context.Context, tok Token, secret *api.Secret) string {
	if tok.Wrapped != nil {
		l.status("wrapped token written; waiting")
		<-ctx.Done()
		return ""
	}
	if secret.Auth.Renewable {
		return l.renew(ctx, tok, secret)
	}
	return l.untilExpiry(ctx, tok, time.Duration(secret.Auth.LeaseDuration)*time.Second)
}

// renew runs a LifetimeWatcher and returns when the token must be replaced.
func (l *Lifecycle) renew(ctx context.Context, tok Token, secret *api.Secret) string {
	w, err := l.Client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		return "cannot renew: " + err.Error()
	}
	go w.Start()
	defer w.Stop()
	// The watcher renews at about two thirds of the remaining TTL.
	l.authenticated(ttlOf(secret)*2/3, "renews")
	for {
		select {
		case <-ctx.Done():
			return ""
		case err := <-w.DoneCh():
			if err != nil {
				return "renewal failed: " + err.Error()
			}
			return "token reached its max TTL"
		case r := <-w.RenewCh():
			ttl := ttlOf(r.Secret)
			l.Logger.Debug("token renewed", zap.Duration("ttl", time.Duration(ttl)))
			l.authenticated(ttl*2/3, "renews")
		case t := <-l.Tokens.forbidden:
			if l.revoked(ctx, tok, t) {
				return "Vault no longer accepts the token (403)"
			}
		}
	}
}

// untilExpiry waits until a non-renewable token nears its end (ttl 0: it
// never expires).
func (l *Lifecycle) untilExpiry(ctx context.Context, tok Token, ttl time.Duration) string {
	var expire <-chan time.Time
	if ttl > 0 {
		t := time.NewTimer(time.Duration(float64(ttl) * 0.85))
		defer t.Stop()
		expire = t.C
	}
	l.authenticated(durationString(ttl), "is not renewable; next login")
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-expire:
			return "non-renewable token near its end"
		case t := <-l.Tokens.forbidden:
			if l.revoked(ctx, tok, t) {
				return "Vault no longer accepts the token (403)"
			}
		}
	}
}

// revoked reports whether a 403 seen with token reported means that tok is
// no longer valid: it must be the current token, and lookup-self must be
// refused too.
func (l *Lifecycle) revoked(ctx context.Context, tok Token, reported string) bool {
	if reported != tok.Value {
		return false
	}
	c, err := Clone(l.Client)
	if err != nil {
		return false
	}
	c.SetToken(tok.Value)
	_, err = c.Auth().Token().LookupSelfWithContext(ctx)
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		return true
	}
	l.Logger.Debug("403 for a request, but the token is valid (policy does not allow the path)")
	return false
}

func (l *Lifecycle) authenticated(ttl durationString, verb string) {
	when := "in " + ttl.String()
	if ttl == 0 {
		when = "never (no expiry)"
		if verb == "renews" {
			verb = "expires"
		}
	}
	l.status(fmt.Sprintf("authenticated with %s, token %s %s", l.Method.Describe(), verb, when))
}

func (l *Lifecycle) status(s string) {
	if l.Status != nil {
		l.Status(s)
	}
}

// durationString prints a TTL rounded to what a human reads in a status.
type durationString time.Duration

func (d durationString) String() string {
	t := time.Duration(d)
	switch {
	case t >= time.Hour:
		return t.Round(time.Minute).String()
	case t >= time.Minute:
		return t.Round(time.Second).String()
	}
	return t.String()
}

// ttlOf is the token's TTL in a login or renewal answer (0: none).
func ttlOf(s *api.Secret) durationString {
	if s == nil {
		return 0
	}
	if s.Auth != nil {
		return durationString(time.Duration(s.Auth.LeaseDuration) * time.Second)
	}
	if s.WrapInfo != nil {
		return durationString(time.Duration(s.WrapInfo.TTL) * time.Second)
	}
	return 0
}
