package clock

import (
	"sync"
	"testing"
	"time"
)

// The wall clock's timer fires at its time: at once for a time passed,
// within a generous bound for one just ahead.
func TestRealTimerAt(t *testing.T) {
	tests := map[string]time.Duration{"passed": -time.Hour, "now": 0, "ahead": 20 * time.Millisecond}
	for name, d := range tests {
		t.Run(name, func(t *testing.T) {
			at := Real.Now().Add(d)
			tm := Real.TimerAt(at)
			select {
			case got := <-tm.C():
				if got.Before(at) {
					t.Errorf("fired at %v, before %v", got, at)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the timer never fired")
			}
			if tm.Stop() {
				t.Error("Stop of a fired timer reported it pending")
			}
		})
	}
}

// A resume from suspend: the wall clock jumps ahead (here, a test hook
// moves it two hours on) while Go's monotonic clock, which timers sleep
// on, stood still. A timer due in an hour fires within one short sleep
// (maxSleep) of the jump, not an hour later; one due after the jump's end
// waits on. Before, a token renewal or certificate re-issue scheduled
// before a hibernation came as late as the hibernation was long.
func TestRealTimerAtFiresAfterSuspend(t *testing.T) {
	oldSleep, oldNow := maxSleep, wallNow
	t.Cleanup(func() { maxSleep, wallNow = oldSleep, oldNow })
	maxSleep = 20 * time.Millisecond
	var mu sync.Mutex
	var skew time.Duration
	wallNow = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(skew)
	}
	start := Real.Now()
	if start.Round(0) != start {
		t.Fatal("Real.Now carries a monotonic reading: deadlines from it would ignore a suspend")
	}
	soon := Real.TimerAt(start.Add(time.Hour))
	later := Real.TimerAt(start.Add(3 * time.Hour))
	defer later.Stop()
	select {
	case <-soon.C():
		t.Fatal("fired before the jump")
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	skew = 2 * time.Hour
	mu.Unlock()
	select {
	case got := <-soon.C():
		if got.Before(start.Add(time.Hour)) {
			t.Errorf("fired at %v, before its time by the wall clock", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the timer due an hour in did not fire after the wall clock jumped two hours")
	}
	select {
	case <-later.C():
		t.Error("the timer due three hours in fired after a two-hour jump")
	case <-time.After(100 * time.Millisecond):
	}
	if !later.Stop() {
		t.Error("Stop of a pending timer reported it done")
	}
}
