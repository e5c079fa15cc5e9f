package auth

import (
	"math/rand/v2"
	"time"
)

// renewSchedule decides when the held token is renewed, and when the
// lifecycle stops renewing and logs in again. It keeps the timing Vault's
// LifetimeWatcher had — renew at about two thirds of the time left, plus a
// third of a grace period of 10–20% of the TTL as jitter so that a fleet
// does not renew in step; stop once the time left after the next wait
// would fall within the grace — but does not renew right after a login (a
// wasted request: the login's TTL is fresh). It is a pure function of the
// times it is given; watch owns the timer and the requests.
type renewSchedule struct {
	expiry    time.Time
	grace     time.Duration
	prior     time.Duration // the time left after the last renewal
	renewable bool
	backoff   time.Duration // the wait after a failed renewal (0: none failed)
	err       error         // the last renewal's error
	// At is when to act; Renew says what: renew, or stop (and log in again).
	At    time.Time
	Renew bool
}

// Bounds of the wait after a failed renewal (the LifetimeWatcher's).
const (
	renewRetryMin = 10 * time.Second
	renewRetryMax = 5 * time.Minute
)

// newRenewSchedule starts a schedule for a token with ttl left at now.
func newRenewSchedule(now time.Time, ttl time.Duration, renewable bool) *renewSchedule {
	s := &renewSchedule{expiry: now.Add(ttl), prior: ttl, renewable: renewable}
	s.grace = graceOf(ttl)
	s.plan(now)
	return s
}

// graceOf is 10–20% of ttl, drawn anew for each token.
func graceOf(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	tenth := ttl / 10
	if tenth <= 0 {
		return 0
	}
	return tenth + rand.N(tenth)
}

// renewed records a successful renewal at now that left ttl.
func (s *renewSchedule) renewed(now time.Time, ttl time.Duration, renewable bool) {
	s.expiry, s.renewable, s.backoff, s.err = now.Add(ttl), renewable, 0, nil
	// A renewal that extends the token resets the grace; one capped by
	// the max TTL keeps it, so that the end comes into view.
	if ttl > s.prior {
		s.grace = graceOf(ttl)
	}
	s.prior = ttl
	s.plan(now)
}

// failed records a failed renewal at now. A refusal (forbidden: the
// token may not renew itself) makes the token one to keep until it must
// be replaced; another error is retried with backoff until the expiry
// comes within the grace.
func (s *renewSchedule) failed(now time.Time, err error, forbidden bool) {
	s.err = err
	if forbidden {
		s.renewable = false
		s.plan(now)
		return
	}
	switch {
	case s.backoff == 0:
		s.backoff = renewRetryMin
	case s.backoff < renewRetryMax:
		s.backoff = min(2*s.backoff, renewRetryMax)
	}
	// ±50% jitter, as the LifetimeWatcher's backoff.
	wait := s.backoff/2 + rand.N(s.backoff)
	s.At, s.Renew = now.Add(wait), true
	if s.expiry.Sub(s.At) <= s.grace {
		s.At, s.Renew = now, false
	}
}

// plan sets At and Renew from the time left at now.
func (s *renewSchedule) plan(now time.Time) {
	left := s.expiry.Sub(now)
	wait := left*2/3 + s.grace/3
	if left <= s.grace || left-wait <= s.grace {
		s.At, s.Renew = now, false
		return
	}
	s.At, s.Renew = now.Add(wait), s.renewable
}
