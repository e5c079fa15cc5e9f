// Package approle is the `approle` auto-auth method: a role id and a secret
// id read from files, for hosts outside the clouds.
package approle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Method logs in with AppRole.
type Method struct {
	mount              string
	roleIDPath         string
	secretIDPath       string
	removeSecretIDFile bool
	// wrappingPath, when set, means the secret id file holds a response-
	// wrapping token created at this path (e.g.
	// auth/approle/role/web/secret-id), to be unwrapped at login.
	wrappingPath string
	log          *zap.Logger
	// dryRun keeps the secret id file and refuses a wrapped secret id.
	dryRun bool
	// secretID is kept after the file was removed, so that re-logins work
	// until it expires (as Vault Agent does); kept keeps it for the next
	// method a reload builds with the same mount and files.
	secretID string
	kept     *auth.Keeper
	// roleID is the last role id read, used when its file is later
	// removed or emptied (as Vault Agent does: re-logins go on).
	roleID string
	// unwrapped is a hash of the wrapping token the secret id came from:
	// with the file kept (remove_secret_id_file_after_reading = false) it
	// still holds that spent token, which a second unwrap is refused.
	unwrapped string
}

// New reads cfg: role_id_file_path (required), secret_id_file_path,
// remove_secret_id_file_after_reading (default true),
// secret_id_response_wrapping_path.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	env = env.WithDefaults()
	s := auth.NewSettings(cfg)
	m := &Method{
		mount:              cfg.MountPath,
		roleIDPath:         s.Required("role_id_file_path"),
		secretIDPath:       s.String("secret_id_file_path", ""),
		removeSecretIDFile: s.Bool("remove_secret_id_file_after_reading", true),
		wrappingPath:       strings.Trim(s.String("secret_id_response_wrapping_path", ""), "/"),
		log:                env.Logger,
		dryRun:             env.DryRun,
		kept:               env.Kept,
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if m.wrappingPath != "" && m.secretIDPath == "" {
		return nil, fmt.Errorf("%s: method %q: config key \"secret_id_response_wrapping_path\" needs secret_id_file_path", cfg.KeyAt("secret_id_response_wrapping_path"), cfg.Type)
	}
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string { return fmt.Sprintf("approle at %s", m.mount) }

// Login implements auth.Method.
func (m *Method) Login(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error) {
	roleID, err := m.readRoleID()
	if err != nil {
		return nil, err
	}
	data := map[string]any{"role_id": roleID}
	if m.secretIDPath != "" {
		sid, err := readTrimmed(m.secretIDPath)
		switch {
		case err == nil && sid != "" && m.wrappingPath != "" && m.spent(sid):
			// The wrapping token this method (or the one a reload
			// replaced) already unwrapped: its secret id is known.
		case err == nil && sid != "":
			wrapHash := ""
			if m.wrappingPath != "" {
				if m.dryRun {
					return nil, fmt.Errorf("approle secret id: %s holds a response-wrapped secret id, which a dry run cannot use without consuming it", m.secretIDPath)
				}
				wrapHash = hash(sid)
				if sid, err = m.unwrap(ctx, client, sid); err != nil {
					return nil, fmt.Errorf("approle secret id: %w", err)
				}
			}
			m.secretID, m.unwrapped = sid, wrapHash
			m.kept.Set(m.keptKey(), sid)
			m.kept.Set(m.keptKey()+"\x00unwrapped", wrapHash)
			if m.removeSecretIDFile && !m.dryRun {
				if err := os.Remove(m.secretIDPath); err != nil {
					m.log.Warn("could not remove the secret id file", zap.String("path", m.secretIDPath), zap.Error(err))
				}
			}
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("approle secret id: %w", err)
		}
		if m.secretID == "" {
			m.secretID = m.kept.Get(m.keptKey())
		}
		if m.secretID == "" {
			// The file is removed after reading (remove_secret_id_file_after_reading);
			// the secret id lives on only in this method, which a reload
			// keeps while the auth config is unchanged.
			return nil, fmt.Errorf("approle secret id file %s is missing or empty and no earlier secret id is known: write a new secret id there (a changed auth config, or a restart, needs one)", m.secretIDPath)
		}
		data["secret_id"] = m.secretID
	}
	return client.Write(ctx, strings.Trim(m.mount, "/")+"/login", data)
}

// readRoleID reads the role id file; once one was read, a file removed or
// emptied since leaves the role id as it was (Vault Agent's behaviour), so
// that a re-login still works.
func (m *Method) readRoleID() (string, error) {
	id, err := readTrimmed(m.roleIDPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("approle role id: %w", err)
	}
	if id != "" {
		m.roleID = id
		m.kept.Set(m.keptKey()+"\x00role", id)
		return id, nil
	}
	if m.roleID == "" {
		m.roleID = m.kept.Get(m.keptKey() + "\x00role")
	}
	if m.roleID != "" {
		return m.roleID, nil
	}
	if err != nil {
		return "", fmt.Errorf("approle role id: %w", err)
	}
	return "", fmt.Errorf("approle role id file %s is empty", m.roleIDPath)
}

// spent reports whether wrapToken is the wrapping token the known secret
// id was unwrapped from.
func (m *Method) spent(wrapToken string) bool {
	if m.secretID == "" {
		m.secretID = m.kept.Get(m.keptKey())
		m.unwrapped = m.kept.Get(m.keptKey() + "\x00unwrapped")
	}
	return m.secretID != "" && m.unwrapped != "" && m.unwrapped == hash(wrapToken)
}

// hash is how a spent wrapping token is remembered: never the token.
func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// keptKey names the secret id among kept credentials: the same mount and
// files read the same secret id.
func (m *Method) keptKey() string {
	return "approle\x00" + m.mount + "\x00" + m.roleIDPath + "\x00" + m.secretIDPath
}

// unwrap checks that the wrapping token was created at wrappingPath (so a
// token wrapping something else cannot be slipped in) and returns the
// secret_id it wraps.
func (m *Method) unwrap(ctx context.Context, client *vaultclient.Client, wrapToken string) (string, error) {
	look, err := client.Write(ctx, "sys/wrapping/lookup", map[string]any{"token": wrapToken})
	if err != nil {
		return "", fmt.Errorf("look up the wrapping token: %w", err)
	}
	if look == nil || look.Data == nil {
		return "", errors.New("look up the wrapping token: empty answer")
	}
	if created, _ := look.Data["creation_path"].(string); strings.Trim(created, "/") != m.wrappingPath {
		return "", fmt.Errorf("the wrapping token was created at %q, want %q", created, m.wrappingPath)
	}
	// Unwrap on a clone holding the wrapping token: Logical().Unwrap would
	// set it on the login client itself.
	uc, err := auth.Clone(client, wrapToken, "")
	if err != nil {
		return "", err
	}
	s, err := uc.Unwrap(ctx)
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

// readTrimmed reads a credential file: a regular file only (a FIFO would
// block the login, and the agent's stop, for ever).
func readTrimmed(p string) (string, error) {
	b, err := atomicfile.ReadRegular(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
