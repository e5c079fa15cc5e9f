// Package tokenfile is the `token_file` auto-auth method: a token already
// issued, read from a file (development, or a token handed over by
// provisioning).
package tokenfile

import (
	"context"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Method reads the token from a file and looks it up.
type Method struct{ path string }

// New reads cfg: token_file_path (required).
func New(cfg auth.MethodConfig, _ auth.Env) (auth.Method, error) {
	s := auth.NewSettings(cfg)
	m := &Method{path: s.Required("token_file_path")}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string { return "token from " + m.path }

// Login reads the token and returns its lookup-self answer shaped as a
// login response: Auth carries the token, its policies, TTL and
// renewability, so that the lifecycle treats it like any other.
func (m *Method) Login(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error) {
	// A regular file only: a FIFO would block the login, and the agent's
	// stop, for ever.
	b, err := atomicfile.ReadRegular(m.path)
	if err != nil {
		return nil, fmt.Errorf("token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, fmt.Errorf("token_file %s is empty", m.path)
	}
	c, err := auth.Clone(client, tok, "")
	if err != nil {
		return nil, err
	}
	s, err := c.LookupSelf(ctx)
	if err != nil {
		return nil, fmt.Errorf("token_file %s: lookup-self: %w", m.path, err)
	}
	ttl, _ := s.TokenTTL()
	renewable, _ := s.TokenIsRenewable()
	policies, _ := s.TokenPolicies()
	acc, _ := s.Data["accessor"].(string)
	return &vaultclient.Secret{
		RequestID: s.RequestID,
		Auth: &vaultclient.SecretAuth{
			ClientToken: tok, Accessor: acc, Policies: policies,
			LeaseDuration: int(ttl.Seconds()), Renewable: renewable,
		},
	}, nil
}
