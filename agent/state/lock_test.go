package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

func TestLock(t *testing.T) {
	tests := map[string]struct {
		setup   func(t *testing.T, dir string)
		wantErr string
	}{
		"missing directory: created 0700": {},
		"a symlinked lock file": {setup: func(t *testing.T, dir string) {
			testkit.Must(t, os.MkdirAll(dir, 0o700))
			testkit.Must(t, os.Symlink("/etc/passwd", filepath.Join(dir, LockName)))
		}, wantErr: "state lock"},
		"a lock file of another user": {setup: func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the file away") // CI runs as root
			}
			testkit.Must(t, os.MkdirAll(dir, 0o700))
			p := filepath.Join(dir, LockName)
			testkit.WriteFile(t, p, "")
			testkit.Must(t, os.Chown(p, 65534, 65534))
		}, wantErr: "owned by uid 65534"},
		"a FIFO": {setup: func(t *testing.T, dir string) {
			testkit.Must(t, os.MkdirAll(dir, 0o700))
			testkit.Must(t, syscall.Mkfifo(filepath.Join(dir, LockName), 0o600))
		}, wantErr: "not a regular file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			release, err := Dir{Path: dir}.Lock()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			testkit.Must(t, err)
			fi, err := os.Stat(dir)
			testkit.Must(t, err)
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("state dir mode %v", fi.Mode().Perm())
			}
			if got := testkit.ReadFile(filepath.Join(dir, LockName)); got != fmt.Sprintf("%d\n", os.Getpid()) {
				t.Errorf("lock file holds %q", got)
			}
			// A second lock (another open file description, as another
			// process has) is refused while the first is held...
			_, err = Dir{Path: dir}.Lock()
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
				t.Errorf("second lock: %v, want ErrLocked naming the pid", err)
			}
			// ...and taken once it is released.
			release()
			again, err := Dir{Path: dir}.Lock()
			testkit.Must(t, err)
			again()
		})
	}
}
