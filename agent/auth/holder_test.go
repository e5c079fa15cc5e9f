package auth

import (
	"testing"
	"time"
)

func TestHolderRetire(t *testing.T) {
	h := NewHolder()
	events := h.Events()
	h.Retire(time.Now()) // no token yet: nothing to retire
	if _, ok := h.Ended(0); ok {
		t.Fatal("retired a token before the first login")
	}
	h.Set("one")
	select {
	case <-events:
	default:
		t.Fatal("Set did not wake Events")
	}
	_, gen := h.Get()
	if _, ok := h.Ended(gen); ok {
		t.Fatal("the current token has an end before Retire")
	}
	events = h.Events()
	h.Retire(time.Time{}) // never expires: nothing recorded
	if _, ok := h.Ended(gen); ok {
		t.Fatal("a zero end was recorded")
	}
	end := time.Now().Add(time.Minute)
	h.Retire(end)
	select {
	case <-events:
	default:
		t.Fatal("Retire did not wake Events")
	}
	h.Retire(end.Add(time.Hour)) // a later end does not move it
	earlier := end.Add(-30 * time.Second)
	h.Retire(earlier) // an earlier one (revoked meanwhile) does
	if got, ok := h.Ended(gen); !ok || !got.Equal(earlier) {
		t.Fatalf("Ended(%d) = %v, %v; want %v", gen, got, ok, earlier)
	}
	h.Set("two")
	if _, ok := h.Ended(gen + 1); ok {
		t.Fatal("the new token inherited an end")
	}
	if got, _ := h.Ended(gen); !got.Equal(earlier) {
		t.Fatal("the old token's end was lost at the next login")
	}
}
