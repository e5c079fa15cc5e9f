// Package approle is the auto_auth "approle" method: role_id and secret_id
// read from files, as Vault Agent does.
package approle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
)

// Method logs in with an AppRole.
type Method struct {
	mount                string
	roleIDFile           string
	secretIDFile         string
	removeSecretID       bool
	secretIDWrappingPath string
	logger               *zap.Logger

	mu sync.Mutex
	// secretID is the last secret_id read: the file is removed after
	// reading by default, and a later login reuses it.
	secretID string
	roleName string
}

// New checks the method's config: role_id_file_path (required),
// secret_id_file_path, remove_secret_id_file_after_reading (default true)
// and secret_id_response_wrapping_path. It reads no file.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	if err := cfg.CheckKeys("role_id_file_path", "secret_id_file_path", "remove_secret_id_file_after_reading", "secret_id_response_wrapping_path"); err != nil {
		return nil, err
	}
	m := &Method{mount: strings.Trim(cfg.MountPath, "/"), logger: env.Logger}
	if m.mount == "" {
		m.mount = "auth/approle"
	}
	if m.logger == nil {
		m.logger = zap.NewNop()
	}
	var err error
	if m.roleIDFile, err = cfg.String("role_id_file_path"); err != nil {
		return nil, err
	}
	if m.roleIDFile == "" {
		return nil, cfg.Errorf("config: role_id_file_path is required")
	}
	if m.secretIDFile, err = cfg.String("secret_id_file_path"); err != nil {
		return nil, err
	}
	if m.removeSecretID, err = cfg.Bool("remove_secret_id_file_after_reading", true); err != nil {
		return nil, err
	}
	if m.secretIDWrappingPath, err = cfg.String("secret_id_response_wrapping_path"); err != nil {
		return nil, err
	}
	m.secretIDWrappingPath = strings.Trim(m.secretIDWrappingPath, "/")
	if m.secretIDWrappingPath != "" && m.secretIDFile == "" {
		return nil, cfg.Errorf("config: secret_id_response_wrapping_path needs secret_id_file_path")
	}
	return m, nil
}

// Describe names the role once a login told its name, else the role_id file.
func (m *Method) Describe() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.roleName != "" {
		return fmt.Sprintf("approle role %q", m.roleName)
	}
	return "approle (role_id from " + m.roleIDFile + ")"
}

// Login reads the role_id and secret_id and logs in at <mount>/login.
func (m *Method) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	roleID, err := readTrimmed(m.roleIDFile)
	if err != nil {
		return nil, fmt.Errorf("role_id: %w", err)
	}
	if roleID == "" {
		return nil, fmt.Errorf("role_id: %s is empty", m.roleIDFile)
	}
	data := map[string]any{"role_id": roleID}
	if m.secretIDFile != "" {
		secretID, err := m.readSecretID(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("secret_id: %w", err)
		}
		data["secret_id"] = secretID
	}
	secret, err := c.Logical().WriteWithContext(ctx, m.mount+"/login", data)
	if err != nil {
		return nil, err
	}
	if secret != nil && secret.Auth != nil {
		if name := secret.Auth.Metadata["role_name"]; name != "" {
			m.mu.Lock()
			m.roleName = name
			m.mu.Unlock()
		}
	}
	return secret, nil
}

// readSecretID reads (and unwraps) the secret_id file, removing it when so
// configured; with no file it falls back to the secret_id read last time.
func (m *Method) readSecretID(ctx context.Context, c *api.Client) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	raw, err := readTrimmed(m.secretIDFile)
	if errors.Is(err, os.ErrNotExist) || (err == nil && raw == "") {
		if m.secretID != "" {
			return m.secretID, nil
		}
		if err == nil {
			return "", fmt.Errorf("%s is empty", m.secretIDFile)
		}
	}
	if err != nil {
		return "", err
	}
	secretID := raw
	if m.secretIDWrappingPath != "" {
		if secretID, err = m.unwrap(ctx, c, raw); err != nil {
			return "", err
		}
	}
	if m.removeSecretID {
		if err := os.Remove(m.secretIDFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.logger.Warn("cannot remove the secret_id file", zap.String("path", m.secretIDFile), zap.Error(err))
		}
	}
	m.secretID = secretID
	return secretID, nil
}

// unwrap checks that the wrapping token was made at the expected path (so
// that a token wrapped elsewhere cannot be slipped in) and unwraps it.
func (m *Method) unwrap(ctx context.Context, c *api.Client, wrapToken string) (string, error) {
	look, err := c.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": wrapToken})
	if err != nil {
		return "", fmt.Errorf("look up the wrapping token: %w", err)
	}
	if look == nil || look.Data == nil {
		return "", errors.New("look up the wrapping token: empty answer")
	}
	created, _ := look.Data["creation_path"].(string)
	if strings.Trim(created, "/") != m.secretIDWrappingPath {
		return "", fmt.Errorf("wrapping token was created at %q, want %q", created, m.secretIDWrappingPath)
	}
	uc, err := auth.Clone(c)
	if err != nil {
		return "", err
	}
	uc.SetToken(wrapToken)
	s, err := uc.Logical().UnwrapWithContext(ctx, "")
	if err != nil {
		return "", fmt.Errorf("unwrap: %w", err)
	}
	if s == nil || s.Data == nil {
		return "", errors.New("unwrap: empty answer")
	}
	id, _ := s.Data["secret_id"].(string)
	if id == "" {
		return "", errors.New("unwrap: no secret_id in the wrapped answer")
	}
	return id, nil
}

func readTrimmed(p string) (string, error) {
	b, err := os.ReadFile(path.Clean(p))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
