package auth

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is jittered exponential backoff between Min and Max: each Next
// doubles the base wait (capped at Max) and returns it reduced by up to a
// quarter, so that a fleet of instances restarted together does not retry
// in step. The zero value is not usable; use NewBackoff.
type Backoff struct {
	min, max, cur time.Duration
}

// NewBackoff returns a Backoff starting at min. A min of 0 means 1s; a max
// below min is raised to min.
func NewBackoff(min, max time.Duration) *Backoff {
	if min <= 0 {
		min = time.Second
	}
	if max < min {
		max = min
	}
	return &Backoff{min: min, max: max, cur: min}
}

// Next returns the wait before the next attempt and grows the base.
func (b *Backoff) Next() time.Duration {
	d := b.cur
	b.cur *= 2
	if b.cur > b.max {
		b.cur = b.max
	}
	jitter := time.Duration(rand.Int64N(int64(d)/4 + 1))
	if d-jitter < b.min {
		return b.min
	}
	return d - jitter
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.cur = b.min }

// Sleep waits d or until ctx is done; it reports whether the whole wait
// passed (false: ctx was cancelled).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
