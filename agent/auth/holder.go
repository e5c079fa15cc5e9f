package auth

import "sync"

// Holder holds the current token for everything that uses it. Users read
// Token at request time, so a re-login replaces the token everywhere without
// restarting anything.
type Holder struct {
	mu      sync.Mutex
	token   string
	gen     uint64
	changed chan struct{}
}

// NewHolder returns an empty holder.
func NewHolder() *Holder { return &Holder{changed: make(chan struct{})} }

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

// Set replaces the token and wakes every Changed waiter.
func (h *Holder) Set(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token = token
	h.gen++
	close(h.changed)
	h.changed = make(chan struct{})
}

// Changed returns a channel closed at the next Set.
func (h *Holder) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}
