package auth

import "sync"

// Keeper holds, for the agent's whole life, the one-shot credentials a
// method read and cannot read again — an AppRole secret id whose file it
// removed after reading. A reload builds new methods; one whose key is
// unchanged finds the credential here, so that a reload that changes, say,
// the Vault address does not leave the agent unable to log in. A nil
// Keeper keeps nothing.
type Keeper struct {
	mu sync.Mutex
	m  map[string]string
}

// Get returns the credential kept under key, or "".
func (k *Keeper) Get(key string) string {
	if k == nil {
		return ""
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key]
}

// Set keeps v under key.
func (k *Keeper) Set(key, v string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]string{}
	}
	k.m[key] = v
}
