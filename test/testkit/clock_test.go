package testkit

import (
	"testing"
	"time"
)

// The fake clock fires a timer when it is advanced to it, never before,
// at once for a time already reached, and never once stopped.
func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fired := func(c <-chan time.Time) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	tests := map[string]struct {
		at      time.Duration // from t0
		advance time.Duration
		stop    bool
		want    bool
	}{
		"not reached":       {at: time.Second, advance: 999 * time.Millisecond, want: false},
		"reached":           {at: time.Second, advance: time.Second, want: true},
		"passed":            {at: time.Second, advance: time.Hour, want: true},
		"already reached":   {at: -time.Second, want: true},
		"stopped":           {at: time.Second, advance: time.Hour, stop: true, want: false},
		"now, not advanced": {at: 0, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewClock(t0)
			tm := c.TimerAt(t0.Add(tc.at))
			if tc.stop {
				tm.Stop()
			}
			c.Advance(tc.advance)
			if got := fired(tm.C()); got != tc.want {
				t.Errorf("fired = %v, want %v", got, tc.want)
			}
			if got := c.Now(); !got.Equal(t0.Add(tc.advance)) {
				t.Errorf("Now = %v, want %v", got, t0.Add(tc.advance))
			}
		})
	}
}

// Step waits for the loop that waited on the fired timer to make its next
// one.
func TestClockStep(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	turns := make(chan int, 10)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			tm := c.TimerAt(c.Now().Add(time.Minute))
			turns <- n
			select {
			case <-tm.C():
			case <-stop:
				return
			}
		}
	}()
	<-turns
	for want := 1; want <= 3; want++ {
		c.Step(t, time.Minute)
		if got := <-turns; got != want {
			t.Fatalf("turn %d after step %d", got, want)
		}
	}
	c.Step(t, time.Second) // fires nothing: returns at once
	close(stop)
	<-done
}
