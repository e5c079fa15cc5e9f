package auth

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait between failed attempts: it starts at Min, doubles
// after each failure up to Max, and is jittered by ±25% so that a fleet
// restarted together does not retry in step. The jittered wait stays within
// [Min, Max]: those are the operator's min_backoff and max_backoff. The zero
// value is not usable.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the wait before the next attempt and lengthens the following.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	}
	d := b.cur
	b.cur = min(b.cur*2, b.Max)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return min(max(d+jitter, b.Min, time.Millisecond), max(b.Max, time.Millisecond))
}

// After returns the wait before the next attempt when the server asked
// for retryAfter (a 429's or 503's Retry-After; 0: it asked for nothing),
// and lengthens the following as Next does. The wait is Next's when that
// is longer, else retryAfter plus a jitter of up to a quarter of it, and
// of up to a second at least: Vault's Retry-After counts whole seconds to
// the same reset for every client of a quota, and a fleet must not come
// back in the same second. It is never longer than Max: capped reports
// that retryAfter itself was, so that the wait is shorter than asked.
func (b *Backoff) After(retryAfter time.Duration) (wait time.Duration, capped bool) {
	wait = b.Next()
	if retryAfter <= 0 {
		return wait, false
	}
	hi := max(b.Max, time.Millisecond)
	wait = max(wait, retryAfter+rand.N(max(retryAfter/4, time.Second)))
	return min(wait, hi), retryAfter > hi
}

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.cur = 0 }
