package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent reads its config with internal/hclconf's own reader: hcl/v2 and
// go-cty (and what only they bring) were about 1.5 MB of the binary, and so
// of its resident memory, to read literals. They stay in tests only, as
// the oracle (internal/hclconf/hcloracle).
func TestBinaryDoesNotLinkHCL2OrCty(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool to list the dependencies with")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/hashicorp/hcl/v2", "github.com/zclconf/go-cty", "github.com/agext/levenshtein",
			"github.com/apparentlymart/go-textseg", "github.com/mitchellh/go-wordwrap", "internal/hclconf/hcloracle"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") || strings.HasSuffix(pkg, banned) {
				t.Errorf("latchkey-agent links %s", pkg)
			}
		}
	}
}
