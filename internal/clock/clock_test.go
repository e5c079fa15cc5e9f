package clock

import (
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
