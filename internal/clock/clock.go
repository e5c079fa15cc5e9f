// Package clock is the one clock of a component that schedules work: the
// time now and timers that fire at a given time. Real is the wall clock;
// tests pass a fake one (test/testkit.Clock) that moves only when told, so
// that they drive schedules without sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// TimerAt returns a timer that fires once the clock reaches at (at
	// once when at is not after Now). An absolute time, not a duration, so
	// that a schedule computed from Now fires when it says even if the
	// clock moved in between.
	TimerAt(at time.Time) Timer
}

// Timer is a timer made by a Clock.
type Timer interface {
	// C receives the time once the timer fires.
	C() <-chan time.Time
	// Stop stops the timer; false when it already fired or was stopped.
	Stop() bool
}

// Real is the wall clock. Its times carry no monotonic reading, so that
// every deadline computed from them is compared by the wall clock: Go's
// monotonic clock stops while the machine is suspended (EC2 or Spot
// hibernation, a paused or migrated VM) and the wall clock does not, and a
// lease renewal, a certificate's re-issue or a token renewal scheduled by
// the monotonic clock would come as late as the suspend was long — with
// the lease, the certificate or the token expired meanwhile. Leases and
// certificates expire by the wall clock, as Vault counts them. The price:
// a wall clock stepped back (NTP at boot) delays a deadline by the step; a
// step forward brings it early, which for renewals and re-renders is
// harmless.
var Real Clock = wall{}

// Test hooks: maxSleep bounds each sleep of Real's timers (a sleep runs on
// the monotonic clock, so a timer wakes at least this often to see whether
// the wall clock reached its time during a suspend); wallNow is the wall
// clock, which a test moves as a resume from suspend does.
var (
	maxSleep = time.Minute
	wallNow  = time.Now
)

type wall struct{}

func (wall) Now() time.Time { return wallNow().Round(0) }

func (wall) TimerAt(at time.Time) Timer {
	w := &wallTimer{c: make(chan time.Time, 1), at: at.Round(0)}
	w.mu.Lock()
	w.arm()
	w.mu.Unlock()
	return w
}

// wallTimer fires once the wall clock reaches at, sleeping at most
// maxSleep at a time.
type wallTimer struct {
	c  chan time.Time
	at time.Time

	mu   sync.Mutex
	t    *time.Timer
	done bool // fired or stopped
}

// arm sleeps until at or for maxSleep, whichever is shorter (w.mu held).
func (w *wallTimer) arm() {
	w.t = time.AfterFunc(max(min(w.at.Sub(wallNow().Round(0)), maxSleep), 0), w.wake)
}

func (w *wallTimer) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	now := wallNow().Round(0)
	if now.Before(w.at) {
		w.arm()
		return
	}
	w.done = true
	w.c <- now
}

func (w *wallTimer) C() <-chan time.Time { return w.c }

func (w *wallTimer) Stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	pending := !w.done
	w.done = true
	w.t.Stop()
	return pending
}
