package template

import "sync"

// brain holds every fetched query's result, shared by all templates.
type brain struct {
	mu sync.Mutex
	m  map[string]*result
}

func newBrain() *brain { return &brain{m: map[string]*result{}} }

func (b *brain) get(key string) (result, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.m[key]
	if !ok {
		return result{}, false
	}
	return *r, true
}

func (b *brain) set(key string, r result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[key] = &r
}
