package fault

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// smallTmpfs mounts a tmpfs of size bytes at a new directory, unmounted
// when the test ends. It skips the test when this process may not mount
// (not root, or a sandbox that refuses it); CI runs as root.
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the destination directory; CI runs as root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("mount tmpfs on %s not permitted here (%v); CI runs as root", dir, err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file into dir until the file system is full and returns a
// function that frees the space again.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	testkit.Must(t, err)
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	f.Close()
	return func() { testkit.Must(t, os.Remove(p)) }
}

// remount remounts dir's tmpfs with flags ("ro" or "rw").
func remount(t *testing.T, dir, flags string) {
	t.Helper()
	var fl uintptr = syscall.MS_REMOUNT
	if flags == "ro" {
		fl |= syscall.MS_RDONLY
	}
	testkit.Must(t, syscall.Mount("tmpfs", dir, "tmpfs", fl, ""))
}

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
	mnt := smallTmpfs(t, 512<<10)
	a := startAgentTo(t, c, fmt.Sprintf("address = %q", srv.Addr), filepath.Join(mnt, "app.txt"))
	a.waitContent(t, val(1), 30*time.Second)

	tests := []struct {
		name, errText string
		fault         func() (undo func())
	}{
		{"disk full", "no space left on device", func() func() { return fill(t, mnt) }},
		{"read-only", "read-only file system", func() func() {
			remount(t, mnt, "ro")
			return func() { remount(t, mnt, "rw") }
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
