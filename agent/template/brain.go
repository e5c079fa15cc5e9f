package template

// brain holds every fetched query's result, shared by all templates.
type brain struct {
	m map[string]*result
}

func newBrain() *brain { return &brain{m: map[string]*result{}} }

func (b *brain) get(key string) (result, bool) {
	r, ok := b.m[key]
	if !ok {
		return result{}, false
	}
	return *r, true
}

func (b *brain) set(key string, r result) {
	b.m[key] = &r
}
