package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	tests := map[string]struct {
		mode os.FileMode
		want os.FileMode
	}{
		"world readable despite umask 077": {mode: 0o644, want: 0o644},
		"group readable":                   {mode: 0o640, want: 0o640},
		"zero means private":               {mode: 0, want: 0o600},
		"executable":                       {mode: 0o755, want: 0o755},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if err := WriteFile(p, []byte("x"), Owner(tc.mode)); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Fatalf("mode = %o, want %o", got, tc.want)
			}
		})
	}
}

func TestWriteReplacesContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"first", "second, longer", "3"} {
		if err := WriteFile(p, []byte(content), Owner(0o600)); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, p); got != content {
			t.Fatalf("content = %q, want %q", got, content)
		}
	}
	assertNoTemp(t, filepath.Dir(p))
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	errMidway := errors.New("disk on fire")
	tests := map[string]func(t *testing.T, path string) error{
		"fill fails after writing half": func(t *testing.T, path string) error {
			return Write(path, Owner(0o600), func(w io.Writer) error {
				if _, err := io.WriteString(w, "half of the new"); err != nil {
					return err
				}
				return errMidway
			})
		},
		"rename onto a busy destination": func(t *testing.T, path string) error {
			// rename(2) cannot replace a non-empty directory with a file.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(path, "child"), 0o700); err != nil {
				t.Fatal(err)
			}
			return WriteFile(path, []byte("new"), Owner(0o600))
		},
	}
	if os.Getuid() != 0 {
		// An unprivileged chown to root fails after the content was written.
		tests["chown refused"] = func(t *testing.T, path string) error {
			return WriteFile(path, []byte("new"), Options{Mode: 0o600, UID: 0, GID: 0})
		}
	}
	for name, write := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "secret.txt")
			if err := WriteFile(path, []byte("old content"), Owner(0o640)); err != nil {
				t.Fatal(err)
			}
			err := write(t, path)
			if err == nil {
				t.Fatal("write succeeded, want an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if fi, statErr := os.Stat(path); statErr == nil && fi.Mode().IsRegular() {
				if got := readFile(t, path); got != "old content" {
					t.Errorf("content = %q, want the old content", got)
				}
				if fi.Mode().Perm() != 0o640 {
					t.Errorf("mode changed to %o", fi.Mode().Perm())
				}
			}
			assertNoTemp(t, dir)
		})
	}
}

func TestWriteOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file to another user; CI runs as root")
	}
	p := filepath.Join(t.TempDir(), "owned")
	if err := WriteFile(p, []byte("x"), Options{Mode: 0o640, UID: 65534, GID: 65534}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("owner = %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %o, want 640", fi.Mode().Perm())
	}
}

func TestMkdirAllMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	d := filepath.Join(t.TempDir(), "var", "lib", "latchkey")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	// An existing directory with a loose mode is tightened.
	if err := MkdirAll(d, Options{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode = %o, want 700", fi.Mode().Perm())
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// bindMounted makes path a bind mount of a file elsewhere, as a container
// runtime mounts a secret into place: rename(2) onto it fails with EBUSY.
func bindMounted(t *testing.T, path string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to bind-mount; CI runs as root")
	}
	if out, err := exec.Command("mount", "--bind", path, path).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", path).Run() })
}

// A bind-mounted destination: without InPlaceFallback the write fails and
// the old file is intact; with it, the file is rewritten in place with the
// asked mode — set before the new content goes in.
func TestBindMountedDestination(t *testing.T) {
	tests := map[string]struct {
		fallback bool
		want     string
		mode     os.FileMode
	}{
		"refused, old file kept": {false, "old content", 0o644},
		"rewritten in place":     {true, "new content", 0o600},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "secret.txt")
			if err := WriteFile(path, []byte("old content"), Owner(0o644)); err != nil {
				t.Fatal(err)
			}
			bindMounted(t, path)
			err := WriteFile(path, []byte("new content"), Options{Mode: 0o600, UID: -1, GID: -1, InPlaceFallback: tc.fallback})
			if tc.fallback && err != nil {
				t.Fatal(err)
			}
			if !tc.fallback && (err == nil || !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), path)) {
				t.Fatalf("error %v, want EBUSY naming %s", err, path)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path); got != tc.want || fi.Mode().Perm() != tc.mode {
				t.Errorf("%s with mode %o, want %q with %o", got, fi.Mode().Perm(), tc.want, tc.mode)
			}
			assertNoTemp(t, dir)
		})
	}
}

// A temporary file whose writer died (no lock held) is removed once past
// the grace, however recent; one a live writer holds locked is kept
// whatever its age.
func TestRemoveStaleLocks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.txt")
	old := time.Now().Add(-time.Hour)
	dead := filepath.Join(dir, tempPrefix(path)+"dead")
	live := filepath.Join(dir, tempPrefix(path)+"live")
	fresh := filepath.Join(dir, tempPrefix(path)+"fresh")
	for _, p := range []string{dead, live, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{dead, live} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveStale(path, StaleGrace)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %q, want only %s", removed, dead)
	}
	for _, p := range []string{live, fresh} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

// Writes with a deferred directory fsync (Options.Dirs), run concurrently
// into two directories, are each in place with their mode when they
// return; Sync then fsyncs each directory once and reports a directory it
// cannot fsync by name.
func TestDeferredDirSync(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	var dirs Dirs
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		dir := a
		if i%2 == 1 {
			dir = b
		}
		go func() {
			errs <- WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), []byte(strconv.Itoa(i)), Options{Mode: 0o640, UID: -1, GID: -1, Dirs: &dirs})
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(dirs.dirs) != 2 {
		t.Fatalf("dirs to fsync = %q, want the two directories once each", dirs.dirs)
	}
	for i := 0; i < 20; i++ {
		dir := a
		if i%2 == 1 {
			dir = b
		}
		p := filepath.Join(dir, "f"+strconv.Itoa(i))
		got, err := os.ReadFile(p)
		if err != nil || string(got) != strconv.Itoa(i) {
			t.Fatalf("%s = %q, %v", p, got, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
			t.Errorf("%s mode = %o", p, fi.Mode().Perm())
		}
	}
	if failed := dirs.Sync(); failed != nil {
		t.Fatalf("Sync = %v", failed)
	}
	if len(dirs.dirs) != 0 {
		t.Errorf("Sync kept %q", dirs.dirs)
	}
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(gone, "f"), []byte("x"), Options{Dirs: &dirs, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	if failed := dirs.Sync(); failed[gone] == nil || len(failed) != 1 {
		t.Errorf("Sync after the directory was removed = %v, want its error", failed)
	}
}

// A read-only file system under systemd (INVOCATION_ID set) says where to
// look: the unit's sandbox (test/e2e/systemd sees the line in the journal).
func TestSandboxHint(t *testing.T) {
	tests := map[string]struct {
		err        error
		invocation string
		wantHinted bool
	}{
		"read-only under systemd":  {&fs.PathError{Op: "open", Path: "/opt/x", Err: syscall.EROFS}, "0123abcd", true},
		"read-only by hand":        {syscall.EROFS, "", false},
		"permission under systemd": {syscall.EACCES, "0123abcd", false},
		"disk full under systemd":  {syscall.ENOSPC, "0123abcd", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("INVOCATION_ID", tc.invocation)
			if got := sandboxHint(tc.err); (got != "") != tc.wantHinted || (tc.wantHinted && !strings.Contains(got, "ReadWritePaths=")) {
				t.Errorf("sandboxHint = %q, want hinted %v", got, tc.wantHinted)
			}
		})
	}
}

// The directories MkdirParents makes get the mode asked for whatever the
// umask (the agent's unit runs with UMask=0077, which made them 0700: a
// template's user could not reach its file); existing ones keep theirs.
func TestMkdirParentsModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	root := t.TempDir()
	existing := filepath.Join(root, "existing")
	if err := os.Mkdir(existing, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(existing, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := MkdirParents(filepath.Join(existing, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		existing:                          0o750,
		filepath.Join(existing, "a"):      0o755,
		filepath.Join(existing, "a", "b"): 0o755,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
}
