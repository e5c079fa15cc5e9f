package packaging_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// exposure returns systemd-analyze's overall exposure figure for a unit
// file (offline: no running systemd needed).
func exposure(t *testing.T, unit string) float64 {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure figure in:\n%s", out)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The shipped unit's sandbox: at most 2.0 by systemd's own measure.
func TestUnitExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze missing (package systemd): %v", err)
	}
	root, err := vaulttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	got := exposure(t, filepath.Join(root, "systemd/latchkey-agent.service"))
	t.Logf("systemd-analyze security: exposure %.1f", got)
	if got > 2.0 {
		t.Errorf("exposure %.1f, want at most 2.0", got)
	}
}
