// Package clock is the one clock of a component that schedules work: the
// time now and timers that fire at a given time. Real is the wall clock;
// tests pass a fake one (test/testkit.Clock) that moves only when told, so
// that they drive schedules without sleeping.
package clock

import "time"

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

// Real is the wall clock.
var Real Clock = wall{}

type wall struct{}

func (wall) Now() time.Time { return time.Now() }

func (wall) TimerAt(at time.Time) Timer {
	return wallTimer{time.NewTimer(max(time.Until(at), 0))}
}

type wallTimer struct{ t *time.Timer }

func (w wallTimer) C() <-chan time.Time { return w.t.C }
func (w wallTimer) Stop() bool          { return w.t.Stop() }
