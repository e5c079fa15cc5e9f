package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
)

// The agent's requests are bounded by 10 s unless vault { timeout } or
// VAULT_CLIENT_TIMEOUT say otherwise; vault { addresses } fails over.
func TestVaultClientTimeoutAndAddresses(t *testing.T) {
	const auth = "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/nonexistent\" }\n  }\n}\n"
	tests := map[string]struct {
		vault   string
		env     map[string]string
		timeout time.Duration
		addrs   []string // nil: no failover
	}{
		"default":          {`address = "http://127.0.0.1:1"`, nil, config.DefaultVaultTimeout, nil},
		"configured":       {`address = "http://127.0.0.1:1"` + "\n" + `timeout = "3s"`, nil, 3 * time.Second, nil},
		"environment wins": {`timeout = "3s"` + "\n" + `address = "http://127.0.0.1:1"`, map[string]string{"VAULT_CLIENT_TIMEOUT": "7"}, 7 * time.Second, nil},
		"addresses alone":  {`addresses = ["http://127.0.0.1:1", "http://127.0.0.1:2"]`, nil, config.DefaultVaultTimeout, []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}},
		"VAULT_ADDR first": {`addresses = ["http://127.0.0.1:1", "http://127.0.0.1:2"]`, map[string]string{"VAULT_ADDR": "http://127.0.0.1:2"}, config.DefaultVaultTimeout, []string{"http://127.0.0.1:2", "http://127.0.0.1:1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.Must(t, os.WriteFile(p, []byte(auth+"vault {\n"+tc.vault+"\n}\n"), 0o600))
			cfg, err := config.Load(p)
			testkit.Must(t, err)
			c, err := VaultClient(cfg, func(k string) string { return tc.env[k] }, vaultclient.Config{})
			testkit.Must(t, err)
			if c.Timeout() != tc.timeout {
				t.Errorf("timeout %s, want %s", c.Timeout(), tc.timeout)
			}
			f := c.Failover()
			ok := f != nil
			if ok != (tc.addrs != nil) {
				t.Fatalf("failover %v, want %v", ok, tc.addrs != nil)
			}
			if ok {
				var got []string
				for _, u := range f.Addrs {
					got = append(got, u.String())
				}
				if len(got) != len(tc.addrs) || got[0] != tc.addrs[0] || got[1] != tc.addrs[1] {
					t.Errorf("addresses %v, want %v", got, tc.addrs)
				}
			}
		})
	}
}
