package renderer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/agent/config"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	perms := os.FileMode(0o600)
	c := config.Template{Destination: filepath.Join(dir, "sub", "out"), CreateDestDirs: true, Perms: &perms, Backup: true}
	steps := []struct {
		name           string
		before         func()
		content        string
		wrote, changed bool
	}{
		{"first write creates the file and its directory", nil, "one", true, true},
		{"same content: nothing written", nil, "one", false, false},
		{"new content", nil, "two", true, true},
		{"mode changed behind our back: restored, content unchanged", func() { os.Chmod(c.Destination, 0o644) }, "two", true, false},
		{"deleted: written again", func() { os.Remove(c.Destination) }, "two", true, true},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		wrote, changed, err := Write(c, []byte(s.content))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if wrote != s.wrote || changed != s.changed {
			t.Errorf("%s: wrote %v changed %v, want %v %v", s.name, wrote, changed, s.wrote, s.changed)
		}
		fi, err := os.Stat(c.Destination)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", s.name, fi.Mode().Perm())
		}
	}
	if b, _ := os.ReadFile(c.Destination + ".bak"); string(b) != "one" {
		t.Errorf("backup = %q, want the previous content", b)
	}
}

func TestWriteOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root; CI runs as root")
	}
	uid, gid := 65534, 65534
	c := config.Template{Destination: filepath.Join(t.TempDir(), "out"), UID: &uid, GID: &gid}
	if _, _, err := Write(c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(c.Destination)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 || fi.Mode().Perm() != 0o644 {
		t.Errorf("owner %d:%d mode %v", st.Uid, st.Gid, fi.Mode().Perm())
	}
	if _, _, err := Owner(config.Template{User: "no-such-user-latchkey"}); err == nil {
		t.Error("an unknown user resolved")
	}
}
