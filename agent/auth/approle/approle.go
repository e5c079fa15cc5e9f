// Package approle is the `approle` auto-auth method: a role id and a secret
// id read from files, for hosts outside the clouds.
package approle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
)

// Method logs in with AppRole.
type Method struct {
	mount              string
	roleIDPath         string
	secretIDPath       string
	removeSecretIDFile bool
	log                *zap.Logger
	// secretID is kept after the file was removed, so that re-logins work
	// until it expires (as Vault Agent does).
	secretID string
}

// New reads cfg: role_id_file_path (required), secret_id_file_path,
// remove_secret_id_file_after_reading (default true).
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	s := auth.NewSettings(cfg)
	m := &Method{
		mount:              cfg.MountPath,
		roleIDPath:         s.Required("role_id_file_path"),
		secretIDPath:       s.String("secret_id_file_path", ""),
		removeSecretIDFile: s.Bool("remove_secret_id_file_after_reading", true),
		log:                env.Logger,
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string { return fmt.Sprintf("approle at %s", m.mount) }

// Login implements auth.Method.
func (m *Method) Login(ctx context.Context, client *api.Client) (*api.Secret, error) {
	roleID, err := readTrimmed(m.roleIDPath)
	if err != nil {
		return nil, fmt.Errorf("approle role id: %w", err)
	}
	if roleID == "" {
		return nil, fmt.Errorf("approle role id file %s is empty", m.roleIDPath)
	}
	data := map[string]any{"role_id": roleID}
	if m.secretIDPath != "" {
		sid, err := readTrimmed(m.secretIDPath)
		switch {
		case err == nil && sid != "":
			m.secretID = sid
			if m.removeSecretIDFile {
				if err := os.Remove(m.secretIDPath); err != nil {
					m.log.Warn("could not remove the secret id file", zap.String("path", m.secretIDPath), zap.Error(err))
				}
			}
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("approle secret id: %w", err)
		}
		if m.secretID == "" {
			return nil, fmt.Errorf("approle secret id file %s is missing or empty and no earlier secret id is known", m.secretIDPath)
		}
		data["secret_id"] = m.secretID
	}
	return client.Logical().WriteWithContext(ctx, strings.Trim(m.mount, "/")+"/login", data)
}

func readTrimmed(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
