package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent reaches Vault through internal/vaultclient only: the vault/api
// package would bring ~36 packages (http2, hcl v1, go-jose, retryablehttp,
// ...) back into the binary, whose size is most of the agent's resident
// memory (its text is paged in), and whose init functions run at each start.
func TestNoVaultAPIDependency(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list the agent's dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/hashicorp/vault/api" || strings.HasPrefix(pkg, "github.com/hashicorp/vault/api/") {
			t.Errorf("latchkey-agent depends on %s; reach Vault through internal/vaultclient", pkg)
		}
	}
}
