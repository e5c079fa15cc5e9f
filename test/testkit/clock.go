package testkit

import (
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/clock"
)

// Clock is a fake clock.Clock that moves only when a test tells it to
// (Advance, Step): timers fire when the clock reaches them, never by
// themselves, so that a test drives a schedule without sleeping and
// without depending on how fast the machine is.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
	made   int
	// madeCh is closed (and replaced) whenever a timer is made.
	madeCh chan struct{}
}

// NewClock returns a fake clock showing start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: map[*fakeTimer]bool{}, madeCh: make(chan struct{})}
}

var _ clock.Clock = (*Clock)(nil)

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// TimerAt returns a timer firing once the clock reaches at (at once when
// it already has).
func (c *Clock) TimerAt(at time.Time) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{c: c, at: at, ch: make(chan time.Time, 1)}
	c.made++
	close(c.madeCh)
	c.madeCh = make(chan struct{})
	if !at.After(c.now) {
		ft.ch <- c.now
		return ft
	}
	c.timers[ft] = true
	return ft
}

// Advance moves the clock by d and fires every timer it reaches; it
// returns how many fired. It does not wait for anyone to act on them.
func (c *Clock) Advance(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	fired := 0
	for ft := range c.timers {
		if !ft.at.After(c.now) {
			delete(c.timers, ft)
			ft.ch <- c.now
			fired++
		}
	}
	return fired
}

// Timers returns how many timers have been made so far.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made
}

// WaitTimers waits until at least n timers have been made, failing the
// test after EventuallyTimeout. A scheduling loop makes one timer per
// turn, so this tells that it came round again.
func (c *Clock) WaitTimers(t testing.TB, n int) {
	t.Helper()
	deadline := time.NewTimer(EventuallyTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		made, ch := c.made, c.madeCh
		c.mu.Unlock()
		if made >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for timer %d (%d made)", n, made)
		}
	}
}

// Step advances the clock by d and, when that fired a timer, waits until
// the next timer is made: the loop that waited on the timer has done its
// turn and waits again.
func (c *Clock) Step(t testing.TB, d time.Duration) {
	t.Helper()
	before := c.Timers()
	if c.Advance(d) > 0 {
		c.WaitTimers(t, before+1)
	}
}

// StepUntil steps the clock by d until cond holds, failing the test naming
// what it waited for when it still does not after EventuallyTimeout. A step
// that fires nothing is followed by a 10 ms pause, for work that does not
// wait on the clock (a file event, a request in flight) to get done.
func (c *Clock) StepUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (clock stepped by %s)", what, d)
		}
		before := c.Timers()
		if c.Advance(d) > 0 {
			c.WaitTimers(t, before+1)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

type fakeTimer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (f *fakeTimer) C() <-chan time.Time { return f.ch }

func (f *fakeTimer) Stop() bool {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	pending := f.c.timers[f]
	delete(f.c.timers, f)
	return pending
}
