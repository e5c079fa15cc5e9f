package fault

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// bigVal is a value of about n bytes that holds val(i).
func bigVal(i, n int) string {
	u := val(i) + ";"
	return strings.Repeat(u, n/len(u)+1)
}

// The agent's destination on a tmpfs that fills up, then turns read-only:
// the old file stays whole, the error is logged naming the destination
// (never the secret), and the new content arrives once space or write
// access returns — same process, no restart.
func TestFaultDisk(t *testing.T) {
	srv := vaulttest.StartT(t, vaulttest.Options{})
	c := srv.Client
	agentSetup(t, c)
	mnt := testkit.SmallTmpfs(t, 512<<10)
	a := startAgentTo(t, c, fmt.Sprintf("address = %q", srv.Addr), filepath.Join(mnt, "app.txt"))
	a.waitContent(t, val(1), 30*time.Second)

	tests := []struct {
		name, errText string
		fault         func() (undo func())
	}{
		{"disk full", "no space left on device", func() func() { return testkit.FillDisk(t, mnt) }},
		{"read-only", "read-only file system", func() func() {
			testkit.Remount(t, mnt, "ro")
			return func() { testkit.Remount(t, mnt, "rw") }
		}},
	}
	var parts []string
	for i, tc := range tests {
		gen := i + 2
		old := a.content()
		undo := tc.fault()
		failedBefore := strings.Count(a.log.String(), tc.errText)
		remember(val(gen))
		want := bigVal(gen, 64<<10)
		_, err := c.Logical().Write("kv/app", map[string]any{"v": want})
		testkit.Must(t, err)
		testkit.Eventually(t, tc.name+": the agent logging its failed write", func() bool {
			return strings.Count(a.log.String(), tc.errText) > failedBefore
		})
		var line string
		for _, l := range strings.Split(a.log.String(), "\n") {
			if strings.Contains(l, tc.errText) {
				line = l
			}
		}
		if !strings.Contains(line, a.dest) {
			t.Errorf("%s: the error line does not name %s: %s", tc.name, a.dest, line)
		}
		// Once, with the cause, and not by the temporary file's name
		// (".app.txt.tmp-…"), which was all some errors gave.
		if strings.Contains(line, "write "+a.dest+": write ") || strings.Contains(line, ".tmp-") {
			t.Errorf("%s: the error names the write twice or by its temporary file: %s", tc.name, line)
		}
		if strings.Contains(line, val(gen)) {
			t.Errorf("%s: the error line holds the secret", tc.name)
		}
		// A retry or two more while the fault lasts.
		time.Sleep(1500 * time.Millisecond)
		if got := a.content(); got != old {
			t.Fatalf("%s: the destination holds %d bytes, want the old %d bytes intact", tc.name, len(got), len(old))
		}
		undo()
		took := a.waitContent(t, want, 90*time.Second)
		parts = append(parts, fmt.Sprintf("%s: old file intact, error logged naming the destination, new content %.1f s after the fault cleared", tc.name, took.Seconds()))
	}
	report("disk: %s (same agent process, no restart)", strings.Join(parts, "; "))
}
