package appendfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withUmask runs f with the process umask set to mask, restoring it after.
// The umask is process-wide, so these tests do not run in parallel.
func withUmask(t *testing.T, mask int, f func()) {
	t.Helper()
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestNewFileGetsExactMode(t *testing.T) {
	for _, mask := range []int{0o077, 0o022, 0o000} {
		p := filepath.Join(t.TempDir(), "audit.log")
		withUmask(t, mask, func() {
			f, err := Open(p, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		})
		if got := mode(t, p); got != 0o640 {
			t.Errorf("umask %#o: new file mode %#o, want 0640", mask, got)
		}
	}
}

func TestExistingFileKeepsModeAndIsAppended(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	withUmask(t, 0o077, func() {
		f, err := Open(p, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("two\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	})
	if got := mode(t, p); got != 0o600 {
		t.Errorf("existing file mode %#o, want 0600 kept", got)
	}
	if b, _ := os.ReadFile(p); string(b) != "one\ntwo\n" {
		t.Errorf("content %q, want appended", b)
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, to := range map[string]string{"to a file": target, "dangling": filepath.Join(dir, "nothing")} {
		p := filepath.Join(dir, "link-"+name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		if f, err := Open(p, 0o640); err == nil {
			f.Close()
			t.Errorf("%s: a symlink was opened", name)
		}
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nothing")); err == nil {
		t.Error("a dangling symlink's target was created")
	}
}

// A FIFO planted at the path, read by nobody or by someone, and a device
// are refused at once: an audit or log write never blocks the caller.
func TestNonRegularRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(fifo, 0o640); err == nil {
		f.Close()
		t.Fatal("a FIFO nobody reads was opened")
	}
	// With a reader the open itself would succeed: the type check refuses.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if f, err := Open(fifo, 0o640); err == nil {
		f.Close()
		t.Fatal("a FIFO with a reader was opened")
	}
	if f, err := Open("/dev/null", 0o640); err == nil {
		f.Close()
		t.Fatal("a character device was opened")
	}
}
