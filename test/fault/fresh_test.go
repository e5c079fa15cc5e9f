package fault

import (
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// Vault is replaced by a fresh one at the same address (a rebuilt
// cluster: every token the agent holds is unknown there) with auth
// configured again — the same AppRole role id and secret id — and a
// different secret: the real agent logs in again and renders the new
// secret, without a restart.
func TestFaultFreshVaultReauth(t *testing.T) {
	old := vaulttest.StartT(t, vaulttest.Options{})
	agentSetup(t, old.Client)
	proxy := vaulttest.NewCountingProxy(t, old.Addr)
	a := startAgent(t, old.Client, "address = \""+proxy.URL+"\"")
	a.waitContent(t, val(1), 30*time.Second)
	rid, err := old.Client.Logical().Read("auth/approle/role/web/role-id")
	testkit.Must(t, err)
	roleID := rid.Data["role_id"].(string)
	secretID := a.secretID

	fresh := vaulttest.StartT(t, vaulttest.Options{})
	agentSetup(t, fresh.Client)
	_, err = fresh.Client.Logical().Write("auth/approle/role/web/role-id", map[string]any{"role_id": roleID})
	testkit.Must(t, err)
	_, err = fresh.Client.Logical().Write("auth/approle/role/web/custom-secret-id", map[string]any{"secret_id": secretID})
	testkit.Must(t, err)
	remember(val(20))
	_, err = fresh.Client.Logical().Write("kv/app", map[string]any{"v": val(20)})
	testkit.Must(t, err)
	loginsBefore := strings.Count(a.log.String(), `"msg":"logged in"`)
	testkit.Must(t, proxy.Retarget(fresh.Addr))
	took := a.waitContent(t, val(20), 60*time.Second)
	logins := strings.Count(a.log.String(), `"msg":"logged in"`) - loginsBefore
	if logins < 1 {
		t.Errorf("the new secret rendered with no new login")
	}
	report("fresh vault: the agent logged in again (%d logins) and rendered the fresh Vault's secret %.1f s after the switch, no restart",
		logins, took.Seconds())
}
