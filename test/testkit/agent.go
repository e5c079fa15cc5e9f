package testkit

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// AppRole enables AppRole at mount (disabled again when the test ends)
// with a role "web" created with role's settings (token_ttl and friends),
// and writes its role id and a fresh secret id into dir/role-id and
// dir/secret-id, whose paths it returns. c must hold a token that may do
// all of that (a dev server's root token).
func AppRole(t testing.TB, c *api.Client, mount, dir string, role map[string]any) (roleIDFile, secretIDFile string) {
	t.Helper()
	Must(t, c.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "approle"}))
	t.Cleanup(func() { c.Sys().DisableAuth(mount) })
	_, err := c.Logical().Write("auth/"+mount+"/role/web", role)
	Must(t, err)
	rid, err := c.Logical().Read("auth/" + mount + "/role/web/role-id")
	Must(t, err)
	roleIDFile, secretIDFile = filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	WriteFile(t, roleIDFile, rid.Data["role_id"].(string))
	NewSecretID(t, c, mount, secretIDFile)
	return roleIDFile, secretIDFile
}

// NewSecretID writes a fresh secret id of mount's role "web" into path.
func NewSecretID(t testing.TB, c *api.Client, mount, path string) {
	t.Helper()
	sid, err := c.Logical().Write("auth/"+mount+"/role/web/secret-id", nil)
	Must(t, err)
	secretscan.Remember(sid.Data["secret_id"].(string))
	WriteFile(t, path, sid.Data["secret_id"].(string))
}
