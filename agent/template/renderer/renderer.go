// Package renderer writes a template's output to its destination: only
// when content, mode or owner changed, atomically, with explicit mode and
// owner, in place for a bind-mounted file.
package renderer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/owner"
)

// defaultPerms is the mode of a new destination without perms (Vault
// Agent's default).
const defaultPerms = 0o644

// Owner resolves a template's user/uid and group/gid to ids; -1 means "not
// set".
func Owner(c config.Template) (uid, gid int, err error) {
	uid, gid = -1, -1
	switch {
	case c.UID != nil:
		uid = *c.UID
	case c.User != "":
		if uid, err = owner.UID(c.User); err != nil {
			return -1, -1, fmt.Errorf("template %s: user %q: %w", c.Destination, c.User, err)
		}
	}
	switch {
	case c.GID != nil:
		gid = *c.GID
	case c.Group != "":
		if gid, err = owner.GID(c.Group); err != nil {
			return -1, -1, fmt.Errorf("template %s: group %q: %w", c.Destination, c.Group, err)
		}
	}
	return uid, gid, nil
}

// Write puts content at the template's destination when it differs from
// what is there — content, mode or owner — and reports whether it wrote
// and whether the content changed (a missing file counts as changed); a
// write that only restored mode or owner is not a change for the command.
// The write is atomic (a bind-mounted destination is written in place
// instead, since rename cannot replace it), keeps an explicit mode and
// owner whatever the umask, and leaves the previous file intact on error.
// With backup, the previous content is kept as <destination>.bak.
func Write(c config.Template, content []byte) (wrote, changed bool, err error) {
	dest := c.Destination
	uid, gid, err := Owner(c)
	if err != nil {
		return false, false, err
	}
	mode := os.FileMode(defaultPerms)
	old, statErr := os.Stat(dest)
	exists := statErr == nil
	if exists && c.Perms == nil {
		mode = old.Mode().Perm()
	}
	if c.Perms != nil {
		mode = *c.Perms
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return false, false, fmt.Errorf("destination %s: %w", dest, statErr)
	}
	var prev []byte
	if exists {
		prev, _ = os.ReadFile(dest)
		if bytes.Equal(prev, content) && old.Mode().Perm() == mode && ownedBy(old, uid, gid) {
			return false, false, nil
		}
	}
	if c.CreateDestDirs {
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return false, false, fmt.Errorf("create directory of %s: %w", dest, err)
		}
	}
	if c.Backup && exists && !bytes.Equal(prev, content) {
		if err := atomicfile.WriteFile(dest+".bak", prev, atomicfile.Options{Mode: old.Mode().Perm(), UID: -1, GID: -1}); err != nil {
			return false, false, fmt.Errorf("backup of %s: %w", dest, err)
		}
	}
	opts := atomicfile.Options{Mode: mode, UID: uid, GID: gid, InPlaceFallback: true}
	if err := atomicfile.WriteFile(dest, content, opts); err != nil {
		return false, false, fmt.Errorf("write %s: %w", dest, err)
	}
	return true, !exists || !bytes.Equal(prev, content), nil
}

func ownedBy(fi os.FileInfo, uid, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return (uid < 0 || int(st.Uid) == uid) && (gid < 0 || int(st.Gid) == gid)
}
