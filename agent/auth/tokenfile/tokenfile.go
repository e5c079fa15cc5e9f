// Package tokenfile is the `token_file` auto-auth method: a token already
// issued, read from a file (development, or a token handed over by
// provisioning).
package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// PollInterval is how often the file is read to see a new token in it.
var PollInterval = 2 * time.Second

// Method reads the token from a file and looks it up.
type Method struct{ path string }

var (
	_ auth.CredentialWatcher = (*Method)(nil)
	_ auth.Borrower          = (*Method)(nil)
)

// Borrowed implements auth.Borrower: the file's token is whoever wrote
// it's, never the agent's to revoke.
func (m *Method) Borrowed() bool { return true }

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

// read returns the file's token ("" for an empty file).
func (m *Method) read() (string, error) {
	// A regular file only: a FIFO would block the login, and the agent's
	// stop, for ever.
	b, err := atomicfile.ReadRegular(m.path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Login reads the token and returns its lookup-self answer shaped as a
// login response: Auth carries the token, its policies, TTL and
// renewability, so that the lifecycle treats it like any other.
func (m *Method) Login(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error) {
	tok, err := m.read()
	if err != nil {
		return nil, fmt.Errorf("token_file: %w", err)
	}
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
	ttl, renewable, err := auth.LookupTTL(s)
	if errors.Is(err, auth.ErrExpiring) {
		return nil, fmt.Errorf("token_file %s: %w: write a new token there", m.path, err)
	}
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

// CredentialChanged implements auth.CredentialWatcher: the channel is
// closed once the file holds a token other than token (an empty, missing
// or unreadable file is a write under way, not a change).
func (m *Method) CredentialChanged(ctx context.Context, token string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t := time.NewTicker(PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if tok, err := m.read(); err == nil && tok != "" && tok != token {
				close(ch)
				return
			}
		}
	}()
	return ch
}
