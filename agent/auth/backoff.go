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

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.cur = 0 }
