package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/hashicorp/vault/api"
)

// Token is the token the agent currently holds.
type Token struct {
	// Value is the Vault token; "" before the first login and when the
	// method response-wraps its login (then Wrapped is set).
	Value string
	// Wrapped is the wrap info of a response-wrapped login (method
	// wrap_ttl): the agent cannot use the token, sinks write this.
	Wrapped *api.SecretWrapInfo
	// Auth is the login's auth block (policies, metadata, TTL, renewable);
	// nil for a wrapped login.
	Auth *api.SecretAuth
	// Generation is 1 for the first login and grows by one on every login:
	// it changes exactly when the token does.
	Generation uint64
}

// Tokens holds the current token for every part of the agent that uses it
// (sinks, template renderers), and tells them when a new login replaced it.
// Users never restart on a new token: they read Current (or call Client)
// before each Vault request.
//
// It also collects 403 answers: the Vault client given to NewTokens reports
// every 403 it sees, so that a revoked token is noticed by whoever uses it
// first, and the auth loop can log in again at once.
type Tokens struct {
	mu      sync.Mutex
	cur     Token
	changed chan struct{}
	base    *api.Client
	// forbidden carries the token of the latest 403 answer (capacity 1:
	// one pending report is enough to trigger a check).
	forbidden chan string
}

// NewTokens returns an empty holder for clients derived from base. It wraps
// base's HTTP transport (shared by every clone of base) so that 403 answers
// are reported; base must not be used with another Tokens.
func NewTokens(base *api.Client) *Tokens {
	t := &Tokens{changed: make(chan struct{}), forbidden: make(chan string, 1)}
	t.SetClient(base)
	return t
}

// SetClient makes base the client that Client clones (after a reload that
// changed the vault stanza), and has it report its 403 answers. The report
// rides on the client's CheckRetry hook, which every clone of base shares
// and which sees every response with its request.
func (t *Tokens) SetClient(base *api.Client) {
	next := base.CheckRetry()
	if next == nil {
		next = api.DefaultRetryPolicy
	}
	base.SetCheckRetry(func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if resp != nil && resp.StatusCode == http.StatusForbidden && resp.Request != nil {
			t.ReportForbidden(resp.Request.Header.Get("X-Vault-Token"))
		}
		return next(ctx, resp, err)
	})
	t.mu.Lock()
	t.base = base
	t.mu.Unlock()
}

// Current returns the current token (Generation 0 before the first login)
// and a channel closed when it is replaced.
func (t *Tokens) Current() (Token, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur, t.changed
}

// Wait returns the current token once there is one. It returns ctx's error
// when ctx ends first.
func (t *Tokens) Wait(ctx context.Context) (Token, error) {
	for {
		tok, changed := t.Current()
		if tok.Generation > 0 {
			return tok, nil
		}
		select {
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-changed:
		}
	}
}

// Client returns a new client (a cheap clone of the agent's) holding the
// current token. Call it for each round of requests rather than keeping
// it: a re-login replaces the token. It fails only before the first login
// or with a wrapped login (no usable token).
func (t *Tokens) Client() (*api.Client, error) {
	t.mu.Lock()
	base, tok := t.base, t.cur
	t.mu.Unlock()
	if tok.Value == "" {
		return nil, errors.New("no Vault token yet")
	}
	c, err := Clone(base)
	if err != nil {
		return nil, err
	}
	c.SetToken(tok.Value)
	return c, nil
}

// Clone returns a copy of c sharing its HTTP client and hooks, with c's
// token, namespace and headers. api.Client.Clone alone would pick up
// VAULT_NAMESPACE and VAULT_HEADERS from the environment again, which
// vaultclient.New deliberately ignores.
func Clone(c *api.Client) (*api.Client, error) {
	n, err := c.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	n.SetToken(c.Token())
	n.ClearNamespace()
	if ns := c.Namespace(); ns != "" {
		n.SetNamespace(ns)
	}
	n.SetHeaders(c.Headers())
	return n, nil
}

// ReportForbidden tells the auth loop that Vault answered 403 to a request
// made with token. The loop checks the token (lookup-self) and logs in
// again if Vault no longer accepts it; a 403 for a path the policy does not
// allow changes nothing. Clients from Client report on their own.
func (t *Tokens) ReportForbidden(token string) {
	if token == "" {
		return
	}
	select {
	case t.forbidden <- token:
	default:
	}
}

// publish makes tok current and wakes everyone waiting on the old one.
func (t *Tokens) publish(tok Token) Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok.Generation = t.cur.Generation + 1
	t.cur = tok
	close(t.changed)
	t.changed = make(chan struct{})
	return tok
}
