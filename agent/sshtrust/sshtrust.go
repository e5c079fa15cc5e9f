package sshtrust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/clock"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"go.uber.org/zap"
)

// Deps are what a Trust needs from the agent.
type Deps struct {
	// Vault returns a new client holding token ("" for none: the CA public
	// keys need none). Called per round.
	Vault func(token string) (*vaultclient.Client, error)
	// Token returns the agent's current token ("" before the first login).
	Token func() string
	// TokenChanged, when set, returns a channel closed at the next login,
	// so that a round waiting for the first token goes on at once.
	TokenChanged func() <-chan struct{}
	// Logger is required.
	Logger *zap.Logger
	// Status, when set, receives a line for systemd's STATUS=.
	Status func(string)
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// DefaultPrincipals, when set, replaces the hostname lookup of a host
	// certificate without principals (tests).
	DefaultPrincipals func() ([]string, error)
}

// Retry bounds: a failed round is tried again after MinRetry, doubling up
// to MaxRetry (and never later than the next planned round).
const (
	MinRetry = time.Second
	MaxRetry = time.Minute
	// RefusedRetry is how long files check_command refused are not put in
	// place again (unless they change).
	RefusedRetry = 5 * time.Minute
	// SourceTimeout bounds reading every user CA source once.
	SourceTimeout = 10 * time.Second
)

// Trust keeps one ssh block's files current.
type Trust struct {
	cfg  Config
	deps Deps
	log  *zap.Logger

	readyOnce sync.Once
	ready     chan struct{}

	principals []string // resolved at the first round
	// fqdnOnly, when the principals are the defaults and hold a short
	// hostname besides the FQDN, is the FQDN alone: what is signed when
	// the role refuses the short name (see hostChanges).
	fqdnOnly []string

	// refused is the last set of files check_command refused.
	refused struct {
		id  string
		at  time.Time
		err error
	}
}

// refusalID names a set of changes: the trust file's content and the
// certificates' paths (a certificate signed again is new bytes for the same
// request, which the check would refuse alike).
func refusalID(changes []change) string {
	h := sha256.New()
	for _, c := range changes {
		h.Write([]byte(c.Path))
		h.Write([]byte{0})
		if !c.Cert {
			h.Write(c.Data)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// New returns a Trust for cfg, or an error when cfg does not validate or a
// dependency is missing. It reads nothing and starts nothing.
func New(cfg Config, deps Deps) (*Trust, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Vault == nil || deps.Token == nil || deps.Logger == nil {
		return nil, errors.New("sshtrust: Deps.Vault, Deps.Token and Deps.Logger are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Trust{cfg: cfg, deps: deps, log: deps.Logger.Named("ssh"), ready: make(chan struct{})}, nil
}

// Ready is closed after the first round that left the trust file written
// from every source and every host certificate signed and current.
func (t *Trust) Ready() <-chan struct{} { return t.ready }

// Run keeps the files current until ctx ends, then returns nil. A failed
// round is logged, reported in STATUS= and tried again with backoff; it
// never ends Run: sshd goes on with the files it has.
func (t *Trust) Run(ctx context.Context) error {
	retry := MinRetry
	for {
		var login <-chan struct{}
		if t.deps.TokenChanged != nil {
			login = t.deps.TokenChanged() // before Round reads the token
		}
		wait, err := t.Round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && login != nil && onlyNoToken(err) {
			// Not a failure: the first login is under way.
			t.log.Info("ssh: waiting for the first login to sign host certificates")
			select {
			case <-ctx.Done():
				return nil
			case <-login:
				continue
			}
		}
		if err != nil {
			t.log.Warn("ssh: round failed; will retry", zap.Error(err), zap.Duration("retry_in", retry))
			t.status("ssh: " + err.Error())
			wait = min(wait, retry)
			retry = min(retry*2, MaxRetry)
		} else {
			retry = MinRetry
			t.readyOnce.Do(func() {
				close(t.ready)
				t.status("ssh: trust file and host certificates current")
			})
		}
		// By the wall clock: a host certificate due for renewal during a
		// suspend is renewed right after the resume (clock.Real).
		timer := clock.Real.TimerAt(clock.Real.Now().Add(wait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		}
	}
}

// onlyNoToken reports whether every error joined in err is errNoToken.
func onlyNoToken(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyNoToken(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, errNoToken)
}

func (t *Trust) status(s string) {
	if t.deps.Status != nil {
		t.deps.Status(s)
	}
}

// Round brings every file up to date once. It returns how long to wait
// before the next round and nil when everything is current; or an error
// saying what is not (the files in place are then kept).
func (t *Trust) Round(ctx context.Context) (time.Duration, error) {
	wait := t.cfg.RefreshInterval
	var changes []change
	var errs []error
	if t.cfg.TrustedUserCAKeys != "" {
		c, err := t.trustChange(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		if c != nil {
			changes = append(changes, *c)
		}
	}
	var certChanges []change
	if t.cfg.Host != nil {
		cs, next, err := t.hostChanges(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		certChanges = cs
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(t.deps.Now()), time.Second))
		}
	}
	all := append(changes, certChanges...)
	if len(all) > 0 {
		// The same files check_command refused are not put in place again
		// (briefly live, then rolled back) at every retry: the refusal
		// needs a person, so they are tried again only after RefusedRetry.
		id := refusalID(all)
		if t.refused.id == id && t.deps.Now().Before(t.refused.at.Add(RefusedRetry)) {
			return wait, errors.Join(append(errs, fmt.Errorf("%w (the same files as at %s; tried again after %s)",
				t.refused.err, t.refused.at.UTC().Format(time.RFC3339), RefusedRetry))...)
		}
		if err := apply(ctx, all, t.cfg.CheckCommand); err != nil {
			t.log.Error("ssh: new files refused; the previous ones are back in place", zap.Error(err))
			if errors.Is(err, ErrCheck) {
				t.refused.id, t.refused.at, t.refused.err = id, t.deps.Now(), err
			}
			return wait, errors.Join(append(errs, err)...)
		}
		t.refused.id = ""
		for _, c := range all {
			t.log.Info("ssh: file updated", zap.String("path", c.Path))
		}
		if len(certChanges) > 0 && len(t.cfg.ReloadCommand) > 0 {
			if out, err := runCommand(ctx, t.cfg.ReloadCommand); err != nil {
				err = fmt.Errorf("reload_command %s: %w; output: %s", strings.Join(t.cfg.ReloadCommand, " "), err, out)
				t.log.Error("ssh: reload failed; sshd serves its previous host certificates until reloaded", zap.Error(err))
				errs = append(errs, err)
			} else {
				t.log.Info("ssh: sshd reloaded for new host certificates", zap.Strings("command", t.cfg.ReloadCommand))
			}
		}
	}
	return wait, errors.Join(errs...)
}
