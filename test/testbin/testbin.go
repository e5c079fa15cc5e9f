// Package testbin builds latchkey's commands for tests that run them as
// real processes (exec tests, the sshd end-to-end test).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// Build compiles each package (e.g. "./cmd/latchkey-ssh-helper", relative to
// the repository root) into dir, named after the package's last element, and
// returns the paths in the same order. Call it once from TestMain.
func Build(dir string, pkgs ...string) ([]string, error) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(pkgs))
	for _, pkg := range pkgs {
		bin := filepath.Join(dir, path.Base(pkg))
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		out = append(out, bin)
	}
	return out, nil
}
