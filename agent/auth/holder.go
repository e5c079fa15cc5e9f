package auth

import (
	"sync"
	"time"
)

// Holder holds the current token for everything that uses it. Users read
// Token at request time, so a re-login replaces the token everywhere without
// restarting anything.
//
// It also remembers when each replaced token stops working (Retire): Vault
// revokes the leases a token created when that token expires or is revoked,
// so whoever holds such leases (templates) must fetch them again in time.
type Holder struct {
	mu      sync.Mutex
	token   string
	gen     uint64
	changed chan struct{}
	events  chan struct{}
	ends    map[uint64]time.Time
}

// NewHolder returns an empty holder.
func NewHolder() *Holder {
	return &Holder{changed: make(chan struct{}), events: make(chan struct{}), ends: map[uint64]time.Time{}}
}

// Token returns the current token ("" before the first login).
func (h *Holder) Token() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.token
}

// Get returns the token and its generation, which grows by one per Set.
func (h *Holder) Get() (string, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.token, h.gen
}

// Set replaces the token and wakes every Changed and Events waiter.
func (h *Holder) Set(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token = token
	h.gen++
	close(h.changed)
	h.changed = make(chan struct{})
	h.wake()
}

// Changed returns a channel closed at the next Set.
func (h *Holder) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Retire records that the current token is being given up and stops
// working at end (now when it was revoked), and wakes every Events waiter.
// A zero end (a token that never expires, abandoned) records nothing; a
// second call for the same token keeps the earlier end.
func (h *Holder) Retire(end time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if end.IsZero() || h.token == "" {
		return
	}
	if prev, ok := h.ends[h.gen]; ok && !end.Before(prev) {
		return
	}
	h.ends[h.gen] = end
	h.wake()
}

// Ended returns when the token of generation gen stops working, and false
// while that is not known (the token is in use, or never expires).
func (h *Holder) Ended(gen uint64) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	end, ok := h.ends[gen]
	return end, ok
}

// Events returns a channel closed at the next Set or Retire.
func (h *Holder) Events() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.events
}

func (h *Holder) wake() {
	close(h.events)
	h.events = make(chan struct{})
}
