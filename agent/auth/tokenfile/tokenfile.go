// Package tokenfile is the auto_auth "token_file" method: a token read from
// a file, checked with lookup-self (for development and hosts that get a
// token by other means).
package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
)

// Method reads a token from a file.
type Method struct {
	path   string
	remove bool
	logger *zap.Logger

	mu    sync.Mutex
	token string // last token read, for when the file was removed
}

// New checks the config: token_file_path (required) and
// remove_token_file_after_reading (default false).
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	if err := cfg.CheckKeys("token_file_path", "remove_token_file_after_reading"); err != nil {
		return nil, err
	}
	m := &Method{logger: env.Logger}
	if m.logger == nil {
		m.logger = zap.NewNop()
	}
	var err error
	if m.path, err = cfg.String("token_file_path"); err != nil {
		return nil, err
	}
	if m.path == "" {
		return nil, cfg.Errorf("config: token_file_path is required")
	}
	if m.remove, err = cfg.Bool("remove_token_file_after_reading", false); err != nil {
		return nil, err
	}
	return m, nil
}

// Describe names the file.
func (m *Method) Describe() string { return "token_file " + m.path }

// Login reads the token and returns it with the auth info of lookup-self
// (TTL, renewable, policies): there is no login call. It fails when the
// file is missing or empty, or Vault refuses the token.
func (m *Method) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	token, err := m.read()
	if err != nil {
		return nil, err
	}
	tc, err := auth.Clone(c)
	if err != nil {
		return nil, err
	}
	tc.SetToken(token)
	self, err := tc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("lookup-self of the token in %s: %w", m.path, err)
	}
	if self == nil || self.Data == nil {
		return nil, fmt.Errorf("lookup-self of the token in %s: empty answer", m.path)
	}
	a := &api.SecretAuth{ClientToken: token}
	a.Accessor, _ = self.TokenAccessor()
	a.Policies, _ = self.TokenPolicies()
	a.TokenPolicies = a.Policies
	a.Metadata, _ = self.TokenMetadata()
	ttl, _ := self.TokenTTL()
	a.LeaseDuration = int(ttl.Seconds())
	a.Renewable, _ = self.TokenIsRenewable()
	if t, _ := self.Data["type"].(string); t == "batch" {
		a.Renewable = false
	}
	return &api.Secret{Auth: a}, nil
}

func (m *Method) read() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := os.ReadFile(m.path)
	if errors.Is(err, os.ErrNotExist) && m.token != "" {
		return m.token, nil
	}
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("read token: %s is empty", m.path)
	}
	if m.remove {
		if err := os.Remove(m.path); err != nil {
			m.logger.Warn("cannot remove the token file", zap.String("path", m.path), zap.Error(err))
		}
	}
	m.token = token
	return token, nil
}
