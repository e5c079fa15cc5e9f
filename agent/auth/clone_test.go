package auth

import (
	"testing"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

func TestCloneKeepsTheConfiguredNamespaceAndIgnoresTheEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "from-env")
	t.Setenv("VAULT_NAMESPACE", "from-env")
	base, err := vaultclient.New(vaultclient.Config{Address: "http://127.0.0.1:1", Namespace: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ token, ns, wantNS string }{
		"no token, vault namespace": {"", "", "team-a"},
		"token, method namespace":   {"s.x", "team-b", "team-b"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Clone(base, tc.token, tc.ns)
			if err != nil {
				t.Fatal(err)
			}
			if c.Token() != tc.token || c.Namespace() != tc.wantNS {
				t.Errorf("token %q namespace %q, want %q %q", c.Token(), c.Namespace(), tc.token, tc.wantNS)
			}
		})
	}
	if base.Namespace() != "team-a" || base.Token() != "" {
		t.Errorf("base changed: %q %q", base.Namespace(), base.Token())
	}
}
