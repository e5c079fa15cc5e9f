package renderer

// Attacks by a user who can write the destination's directory (issue 15).

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
)

// writeBounded runs Write and fails the test if it blocks (a FIFO read).
func writeBounded(t *testing.T, c config.Template, content string) (bool, bool, error) {
	t.Helper()
	type res struct {
		wrote, changed bool
		err            error
	}
	ch := make(chan res, 1)
	go func() {
		w, c, err := Write(c, []byte(content))
		ch <- res{w, c, err}
	}()
	select {
	case r := <-ch:
		return r.wrote, r.changed, r.err
	case <-time.After(30 * time.Second): // a bound against hanging, not a speed check
		t.Fatal("Write blocked")
		return false, false, nil
	}
}

// Things that are not regular files at the destination: refused, left as
// they are, and never read.
func TestNonRegularDestinationRefused(t *testing.T) {
	tests := map[string]func(t *testing.T, p string){
		"FIFO": func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"character device (like /dev/null)": func(t *testing.T, p string) {
			if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(mkdev(1, 3))); err != nil {
				t.Skipf("mknod: %v (needs root)", err)
			}
		},
		"directory": func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, plant := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.conf")
			plant(t, p)
			before, _ := os.Lstat(p)
			_, _, err := writeBounded(t, config.Template{Destination: p, Backup: true}, "secret=1")
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("error = %v, want the destination refused", err)
			}
			after, err := os.Lstat(p)
			if err != nil || after.Mode() != before.Mode() {
				t.Errorf("destination changed: %v -> %v (%v)", before.Mode(), after, err)
			}
			if _, err := os.Lstat(p + ".bak"); err == nil {
				t.Error("a backup was made")
			}
		})
	}
}

func mkdev(major, minor uint32) uint64 {
	return uint64(major)<<8 | uint64(minor)
}

// The destination swapped for a symlink to a root-only file: its content
// is never copied into the backup; the symlink is replaced, the target
// left alone.
func TestBackupThroughSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:HASH"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "app.conf")
	c := config.Template{Destination: dest, Backup: true}
	if _, _, err := writeBounded(t, c, "one"); err != nil {
		t.Fatal(err)
	}
	// The attacker: rm app.conf; ln -s /etc/shadow app.conf.
	os.Remove(dest)
	if err := os.Symlink(secret, dest); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writeBounded(t, c, "two"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest + ".bak"); strings.Contains(string(b), "HASH") {
		t.Errorf("backup holds the symlink target's content: %q", b)
	}
	if b, _ := os.ReadFile(secret); string(b) != "root:HASH" {
		t.Errorf("the symlink's target was changed: %q", b)
	}
	fi, err := os.Lstat(dest)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("destination is %v (%v), want a regular file", fi, err)
	}
}

// A backup is made only of a file the agent owns: one another user put in
// the directory is not copied.
func TestBackupOnlyOfOwnFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file owned by another user")
	}
	dest := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(dest, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dest, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writeBounded(t, config.Template{Destination: dest, Backup: true}, "ours"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dest + ".bak"); err == nil {
		t.Error("another user's file was backed up")
	}
}

// A destination with ".." and "." renders (directories made and the
// temporary file opened on the same, cleaned path).
func TestUncleanDestination(t *testing.T) {
	dir := t.TempDir()
	c := config.Template{Destination: dir + "/a/../b/./out", CreateDestDirs: true}
	if _, _, err := writeBounded(t, c, "x"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "b", "out")); err != nil || string(b) != "x" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error(`"a" was created`)
	}
}

// A parent directory that is a symlink planted by another user is not
// followed when create_dest_dirs creates the rest.
func TestSymlinkedParentOfOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own a symlink as another user")
	}
	dir := t.TempDir()
	elsewhere := t.TempDir()
	link := filepath.Join(dir, "conf")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	c := config.Template{Destination: filepath.Join(link, "sub", "out"), CreateDestDirs: true}
	_, _, err := writeBounded(t, c, "x")
	if err == nil || !strings.Contains(err.Error(), "not followed") {
		t.Fatalf("error = %v, want the symlink refused", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "sub")); err == nil {
		t.Error("a directory was created through the symlink")
	}
	// The agent's own symlink is followed.
	if err := os.Lchown(link, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writeBounded(t, c, "x"); err != nil {
		t.Fatal(err)
	}
}

// Temporary files of writes killed midway are removed; a fresh one (a
// write in flight) and other files are kept.
func TestStaleTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out")
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{".out.tmp-111", ".out.tmp-222"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	fresh := filepath.Join(dir, ".out.tmp-333")
	other := filepath.Join(dir, ".other.tmp-444")
	for _, p := range []string{fresh, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chtimes(other, old, old)
	if _, _, err := writeBounded(t, config.Template{Destination: dest}, "x"); err != nil {
		t.Fatal(err)
	}
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != ".other.tmp-444 .out.tmp-333 out" {
		t.Errorf("directory holds %q", got)
	}
}

// A destination pointed by mistake at a large file (a log, a disk image)
// is replaced without being read into memory: the agent read it whole at
// every render. Its backup is copied, not held in memory either.
func TestLargeExistingDestinationNotReadIntoMemory(t *testing.T) {
	tests := []struct {
		name   string
		size   int64
		sparse bool
		backup bool
	}{
		{"4 GiB sparse file replaced", 4 << 30, true, false},
		{"16 MiB file backed up", 16 << 20, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			f, err := os.Create(dest)
			testkit.Must(t, err)
			if tc.sparse {
				testkit.Must(t, f.Truncate(tc.size))
			} else {
				_, err = f.Write(bytes.Repeat([]byte("x"), int(tc.size)))
				testkit.Must(t, err)
			}
			testkit.Must(t, f.Close())
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			wrote, changed, err := Write(config.Template{Destination: dest, Backup: tc.backup}, []byte("rendered\n"))
			runtime.ReadMemStats(&after)
			testkit.Must(t, err)
			if !wrote || !changed {
				t.Errorf("wrote %v changed %v, want both", wrote, changed)
			}
			if got := testkit.ReadFile(dest); got != "rendered\n" {
				t.Errorf("destination holds %q", got)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
				t.Errorf("the write allocated %d MiB for a %d MiB file", n>>20, tc.size>>20)
			}
			if tc.backup {
				fi, err := os.Stat(dest + ".bak")
				testkit.Must(t, err)
				if fi.Size() != tc.size {
					t.Errorf("backup of %d bytes, want %d", fi.Size(), tc.size)
				}
			}
		})
	}
}
