package testkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallTmpfs mounts a tmpfs of size bytes at a new directory, unmounted
// when the test ends: a file system a test can fill (FillDisk) or turn
// read-only (Remount). It skips the test when this process may not mount
// (not root, or a sandbox that refuses it); CI runs as root.
func SmallTmpfs(t testing.TB, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs; CI runs as root")
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

// FillDisk writes a file into dir until its file system is full and
// returns a function that frees the space again.
func FillDisk(t testing.TB, dir string) func() {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	Must(t, err)
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// The last partial block: a write of one byte more must fail.
	for {
		if _, err := f.Write([]byte{0}); err != nil {
			break
		}
	}
	f.Close()
	return func() { Must(t, os.Remove(p)) }
}

// Remount remounts dir's tmpfs (SmallTmpfs) with flags ("ro" or "rw").
func Remount(t testing.TB, dir, flags string) {
	t.Helper()
	var fl uintptr = syscall.MS_REMOUNT
	if flags == "ro" {
		fl |= syscall.MS_RDONLY
	}
	Must(t, syscall.Mount("tmpfs", dir, "tmpfs", fl, ""))
}
