package testkit

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Clients is the one settable-token client double (auth.Clients, what
// agent/template and any other component reach Vault through): the agent's
// own auth.Tokens over an auth.Holder, with clients of addr, whose token
// the test sets where the agent would log in. It counts the 403s reported.
type Clients struct {
	*auth.Tokens
	denied atomic.Int32
}

// NewClients returns Clients of addr holding token (a first login; ""
// for none yet).
func NewClients(t testing.TB, addr, token string) *Clients {
	t.Helper()
	c, err := vaultclient.New(vaultclient.Config{Address: addr})
	Must(t, err)
	cl := &Clients{Tokens: auth.NewTokens(auth.NewHolder())}
	cl.SetClient(c, func() { cl.denied.Add(1) })
	if token != "" {
		cl.SetToken(token)
	}
	return cl
}

// SetToken replaces the token, as a re-login does (a new generation; the
// previous token is not retired).
func (c *Clients) SetToken(token string) { c.Holder().Set(token) }

// Relogin retires the current token, which stops working at end (as the
// agent does when it gives a token up), then sets token.
func (c *Clients) Relogin(end time.Time, token string) {
	c.Holder().Retire(end)
	c.Holder().Set(token)
}

// Denied returns how many 403s were reported.
func (c *Clients) Denied() int { return int(c.denied.Load()) }
