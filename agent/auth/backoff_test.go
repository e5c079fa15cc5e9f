package auth

import (
	"testing"
	"time"
)

func TestBackoffStaysBetweenMinAndMaxAndResets(t *testing.T) {
	b := NewBackoff(time.Second, 10*time.Second)
	var last time.Duration
	for i := 0; i < 20; i++ {
		d := b.Next()
		if d < time.Second || d > 10*time.Second {
			t.Fatalf("attempt %d: %s outside [1s, 10s]", i, d)
		}
		last = d
	}
	if last < 7500*time.Millisecond {
		t.Errorf("after 20 attempts the wait is %s, want near the max", last)
	}
	b.Reset()
	if d := b.Next(); d > time.Second {
		t.Errorf("after Reset: %s, want 1s", d)
	}
}
