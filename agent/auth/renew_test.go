package auth

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// The schedule's decisions, from fixed times (no clock is read).
func TestRenewSchedule(t *testing.T) {
	const ttl = time.Hour
	tests := map[string]struct {
		run func(s *renewSchedule) time.Time // returns "now" after the steps
		// renew: what the schedule says to do next; atMin/atMax bound
		// when, as offsets from now.
		renew        bool
		atMin, atMax time.Duration
	}{
		"fresh login: not renewed now, at 2/3 of the TTL plus a third of the grace": {
			func(s *renewSchedule) time.Time { return t0 }, true, ttl*2/3 + ttl/30, ttl*2/3 + ttl/15,
		},
		"renewed to a full TTL again": {
			func(s *renewSchedule) time.Time {
				now := s.At
				s.renewed(now, ttl, true)
				return now
			}, true, ttl*2/3 + ttl/30, ttl*2/3 + ttl/15,
		},
		"renewal capped by the max TTL near: stop now": {
			func(s *renewSchedule) time.Time {
				now := s.At
				s.renewed(now, 5*time.Minute, true)
				return now
			}, false, 0, 0,
		},
		"renewal says not renewable: kept, replaced at about 2/3 of what is left": {
			func(s *renewSchedule) time.Time {
				now := s.At
				s.renewed(now, ttl, false)
				return now
			}, false, ttl * 2 / 3, ttl*2/3 + ttl/15,
		},
		"renewal refused (403): kept, replaced before it expires": {
			func(s *renewSchedule) time.Time {
				now := s.At
				s.failed(now, errors.New("403"), true)
				return now
			}, false, 0, time.Hour / 3,
		},
		"renewal failed: retried within 5-15 s": {
			func(s *renewSchedule) time.Time {
				now := s.At
				s.failed(now, errors.New("503"), false)
				return now
			}, true, 5 * time.Second, 15 * time.Second,
		},
		"failed again: the wait doubles": {
			func(s *renewSchedule) time.Time {
				now := s.At
				s.failed(now, errors.New("503"), false)
				now = s.At
				s.failed(now, errors.New("503"), false)
				return now
			}, true, 10 * time.Second, 30 * time.Second,
		},
		"failing until the expiry is within the grace: stop with the error": {
			func(s *renewSchedule) time.Time {
				now := s.At
				for s.Renew {
					now = s.At
					s.failed(now, errors.New("503"), false)
				}
				return now
			}, false, 0, 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newRenewSchedule(t0, ttl, true)
			now := tc.run(s)
			if s.Renew != tc.renew {
				t.Fatalf("renew = %v, want %v", s.Renew, tc.renew)
			}
			if d := s.At.Sub(now); d < tc.atMin || d > tc.atMax {
				t.Fatalf("next action in %s, want %s–%s", d, tc.atMin, tc.atMax)
			}
		})
	}
}

// A not-renewable token is never renewed, and is replaced before it
// expires; a renewable one renewed again and again at a steady TTL keeps
// being renewed; one whose max TTL approaches stops before it expires.
func TestRenewScheduleOverALifetime(t *testing.T) {
	s := newRenewSchedule(t0, time.Hour, false)
	if s.Renew || !s.At.Before(t0.Add(time.Hour)) {
		t.Fatalf("not renewable: renew %v at %s", s.Renew, s.At.Sub(t0))
	}
	// Renewable, max TTL 3 h: each renewal gives min(1h, what is left).
	s = newRenewSchedule(t0, time.Hour, true)
	maxEnd := t0.Add(3 * time.Hour)
	renewals := 0
	for s.Renew {
		now := s.At
		renewals++
		s.renewed(now, min(time.Hour, maxEnd.Sub(now)), true)
		if renewals > 100 {
			t.Fatal("renewing forever")
		}
	}
	if left := maxEnd.Sub(s.At); left <= 0 {
		t.Fatalf("stopped %s after the max TTL", -left)
	}
	if renewals < 3 {
		t.Fatalf("%d renewals in 3 h of a 1 h token, want at least 3", renewals)
	}
}
