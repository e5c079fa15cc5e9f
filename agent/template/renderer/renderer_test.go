package renderer

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
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

// lookupNames returns a user and a group that exist here, with their ids
// as os/user resolves them (the group deliberately not the user's own, so
// that uid and gid are seen to be resolved separately).
func lookupNames(t *testing.T) (userName string, uid int, groupName string, gid int) {
	t.Helper()
	for _, n := range []string{"nobody", "daemon", "bin"} {
		if u, err := user.Lookup(n); err == nil {
			userName, uid = n, atoi(t, u.Uid)
			break
		}
	}
	for _, n := range []string{"daemon", "bin", "sys", "nogroup", "nobody"} {
		if g, err := user.LookupGroup(n); err == nil && atoi(t, g.Gid) != uid {
			groupName, gid = n, atoi(t, g.Gid)
			break
		}
	}
	if userName == "" || groupName == "" {
		t.Fatalf("no user (nobody, daemon, bin) or group (daemon, bin, sys, nogroup, nobody) in this system's databases")
	}
	return userName, uid, groupName, gid
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// user and group given by name are resolved (as os/user does) and applied;
// the one not given stays the writer's own.
func TestWriteOwnerByName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("chown needs root; the tests run as root")
	}
	userName, uid, groupName, gid := lookupNames(t)
	tests := []struct {
		name             string
		user, group      string
		wantUID, wantGID int
	}{
		{"user and group", userName, groupName, uid, gid},
		{"user only", userName, "", uid, os.Getegid()},
		{"group only", "", groupName, os.Geteuid(), gid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Template{Destination: filepath.Join(t.TempDir(), "out"), User: tt.user, Group: tt.group}
			gotUID, gotGID, err := Owner(c)
			if err != nil {
				t.Fatal(err)
			}
			wantU, wantG := -1, -1
			if tt.user != "" {
				wantU = tt.wantUID
			}
			if tt.group != "" {
				wantG = tt.wantGID
			}
			if gotUID != wantU || gotGID != wantG {
				t.Errorf("Owner = %d:%d, want %d:%d", gotUID, gotGID, wantU, wantG)
			}
			if _, _, err := Write(c, []byte("x")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(c.Destination)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != tt.wantUID || int(st.Gid) != tt.wantGID {
				t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, tt.wantUID, tt.wantGID)
			}
			// Written again unchanged: nothing to do, the owner is right.
			wrote, _, err := Write(c, []byte("x"))
			if err != nil || wrote {
				t.Errorf("second write: wrote %v, err %v", wrote, err)
			}
		})
	}
	if _, _, err := Owner(config.Template{Group: "no-such-group-latchkey"}); err == nil {
		t.Error("an unknown group resolved")
	}
}

// create_dest_dirs = false: a missing directory is an error and nothing is
// written — neither the directory nor a temporary file beside it.
func TestWriteWithoutCreateDestDirs(t *testing.T) {
	dir := t.TempDir()
	c := config.Template{Destination: filepath.Join(dir, "missing", "deeper", "out"), CreateDestDirs: false, Backup: true}
	wrote, changed, err := Write(c, []byte("secret-ish"))
	if err == nil {
		t.Fatal("wrote into a directory that does not exist")
	}
	if wrote || changed {
		t.Errorf("wrote %v changed %v on error", wrote, changed)
	}
	if !strings.Contains(err.Error(), c.Destination) {
		t.Errorf("error %q does not name the destination", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left %d entries in %s (first %q)", len(entries), dir, entries[0].Name())
	}
}

// A destination the template gives no user or group keeps the owner of
// the file it replaces, as Vault Agent keeps it (and its mode): a file
// chowned to the application must not come back root's at the next
// change. A file in a directory every user may write is not trusted for
// its owner: whoever put it there would be handed the secret.
func TestWriteKeepsExistingOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("chown needs root; the tests run as root")
	}
	userName, uid, groupName, gid := lookupNames(t)
	const theirUID, theirGID = 12345, 23456
	tests := []struct {
		name             string
		user, group      string
		exists           bool
		worldWritable    bool
		wantUID, wantGID int
	}{
		{"nothing set: the file's owner and group", "", "", true, false, theirUID, theirGID},
		{"user set: the file's group", userName, "", true, false, uid, theirGID},
		{"group set: the file's owner", "", groupName, true, false, theirUID, gid},
		{"both set", userName, groupName, true, false, uid, gid},
		{"new file: the agent's", "", "", false, false, os.Geteuid(), os.Getegid()},
		{"world-writable directory: not kept", "", "", true, true, os.Geteuid(), os.Getegid()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.worldWritable {
				if err := os.Chmod(dir, 0o1777); err != nil {
					t.Fatal(err)
				}
			}
			dest := filepath.Join(dir, "app.env")
			if tt.exists {
				if err := os.WriteFile(dest, []byte("old"), 0o640); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(dest, theirUID, theirGID); err != nil {
					t.Fatal(err)
				}
			}
			c := config.Template{Destination: dest, User: tt.user, Group: tt.group}
			wrote, changed, err := Write(c, []byte("new"))
			if err != nil || !wrote || !changed {
				t.Fatalf("Write: wrote %v changed %v, %v", wrote, changed, err)
			}
			fi, err := os.Stat(dest)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != tt.wantUID || int(st.Gid) != tt.wantGID {
				t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, tt.wantUID, tt.wantGID)
			}
			wantMode := os.FileMode(0o644)
			if tt.exists {
				wantMode = 0o640
			}
			if fi.Mode().Perm() != wantMode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), wantMode)
			}
			// The same content again: nothing to do.
			if wrote, _, err := Write(c, []byte("new")); err != nil || wrote {
				t.Errorf("second write: wrote %v, err %v", wrote, err)
			}
		})
	}
}
