package auth

import (
	"errors"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Clients is what a component needs of the agent's token to reach Vault
// (agent/template's Clients). Tokens implements it; test/testkit.Clients is
// a double whose token the test sets. It lives here, beside Holder, so that
// a test kit can provide the double without importing the component.
//
// A lease belongs to the token that created it: Vault revokes it when that
// token expires or is revoked, however often it was renewed. So a component
// also asks which login a token belongs to, and fetches leases of a token
// the agent gave up again under the new token; secrets without a lease (KV,
// certificates) are not touched by a re-login.
type Clients interface {
	// Client returns a client holding the current token.
	Client() (*vaultclient.Client, error)
	// PermissionDenied reports a 403 answer to the auth loop.
	PermissionDenied()
	// Login returns the current token's generation (one more per login).
	Login() uint64
	// Ended returns when the token of generation gen stops working, and
	// false while that is unknown (in use, or never expires).
	Ended(gen uint64) (time.Time, bool)
	// LoginEvents returns a channel closed at the next login or token
	// retirement (nil: never).
	LoginEvents() <-chan struct{}
}

var _ Clients = (*Tokens)(nil)

// Tokens is how everything that uses the agent's token (templates, and
// any other component) reaches Vault: the current token from the Holder,
// the running instance's client, and its auth loop for 403 reports. It
// stays valid across re-logins and reloads.
type Tokens struct {
	holder *Holder

	mu     sync.Mutex
	client *vaultclient.Client
	denied func()
}

// NewTokens returns Tokens over h, without a client until SetClient.
func NewTokens(h *Holder) *Tokens { return &Tokens{holder: h} }

// SetClient points Tokens at the running instance's client and auth loop
// (denied is called for a 403).
func (t *Tokens) SetClient(client *vaultclient.Client, denied func()) {
	t.mu.Lock()
	t.client, t.denied = client, denied
	t.mu.Unlock()
}

// Holder is the token holder: Get/Token for the current token ("" before
// the first login), Changed for a channel closed at the next login.
func (t *Tokens) Holder() *Holder { return t.holder }

// Client returns a new client holding the current token. Call it per round
// of requests, not once: a re-login replaces the token. A 403 answer to any
// request of this client is reported to the auth loop by itself.
func (t *Tokens) Client() (*vaultclient.Client, error) {
	tok := t.holder.Token()
	if tok == "" {
		return nil, errors.New("no Vault token yet")
	}
	t.mu.Lock()
	client := t.client
	t.mu.Unlock()
	return Clone(client, tok, "")
}

// Login returns the generation of the current token (one more per login).
func (t *Tokens) Login() uint64 {
	_, gen := t.holder.Get()
	return gen
}

// Ended returns when the token of generation gen stops working, once it
// has been given up (see Holder.Retire).
func (t *Tokens) Ended(gen uint64) (time.Time, bool) { return t.holder.Ended(gen) }

// LoginEvents returns a channel closed at the next login or token
// retirement.
func (t *Tokens) LoginEvents() <-chan struct{} { return t.holder.Events() }

// PermissionDenied tells the auth loop that Vault answered 403 with the
// current token (for requests made without Client). The loop checks the
// token with lookup-self and logs in again at once if it was revoked.
func (t *Tokens) PermissionDenied() {
	t.mu.Lock()
	denied := t.denied
	t.mu.Unlock()
	denied()
}
