// Package renderer writes a template's output to its destination: only
// when content, mode or owner changed, atomically, with explicit mode and
// owner, in place for a bind-mounted file.
package renderer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/owner"
)

// defaultPerms is the mode of a new destination without perms (Vault
// Agent's default).
const defaultPerms = 0o644

// Owner resolves a template's user/uid and group/gid to ids; -1 means "not
// set". An error names the key's file:line:col, the template and the name;
// an id no file can be owned by (a number beyond config.MaxID, which chown
// would take modulo 2^32) is refused.
func Owner(c config.Template) (uid, gid int, err error) {
	uid, gid = -1, -1
	if uid, err = ownerID(c, "uid", c.UID, "user", c.User, owner.UID); err != nil {
		return -1, -1, err
	}
	if gid, err = ownerID(c, "gid", c.GID, "group", c.Group, owner.GID); err != nil {
		return -1, -1, err
	}
	return uid, gid, nil
}

func ownerID(c config.Template, numKey string, num *int, nameKey, name string, lookup func(string) (int, error)) (int, error) {
	key, id := numKey, -1
	switch {
	case num != nil:
		id = *num
	case name != "":
		key = nameKey
		n, err := lookup(name)
		if err != nil {
			return -1, fmt.Errorf("%s: template %s: %s %q: %w", hclconf.Pos(c.KeyRange(key)), c.Destination, key, name, err)
		}
		id = n
	default:
		return -1, nil
	}
	if err := config.CheckID(int64(id)); err != nil {
		return -1, fmt.Errorf("%s: template %s: %s: %w", hclconf.Pos(c.KeyRange(key)), c.Destination, key, err)
	}
	return id, nil
}

// stale removes the temporaries that an interrupted earlier write left
// (one directory read per directory, not per write).
var stale = &atomicfile.Sweeper{OlderThan: atomicfile.StaleGrace}

// Write puts content at the template's destination when it differs from
// what is there — content, mode or owner — and reports whether it wrote
// and whether the content changed (a missing file counts as changed); a
// write that only restored mode or owner is not a change for the command.
// The write is atomic (a bind-mounted destination is written in place
// instead, since rename cannot replace it), keeps an explicit mode and
// owner whatever the umask, and leaves the previous file intact on error.
// With backup, the previous content is kept as <destination>.bak. A mode
// or owner the template does not set is the replaced file's (0644 and the
// agent's own for a new file), except that the owner of a file in a
// directory every user may write is not kept.
//
// The destination is cleaned once and used so everywhere. What is there is
// read without following a symlink and without blocking on a FIFO; a
// destination that is a FIFO, device, socket or directory is an error
// (never replaced: /dev/null must stay a device); a symlink is replaced
// (rename does not follow it) and never backed up. The backup is made only
// of a regular file the agent owns (its own uid, or the template's user).
// With create_dest_dirs, parents are created without following symlinks
// owned by other users. Temporary files that an interrupted earlier write
// left are removed first.
func Write(c config.Template, content []byte) (wrote, changed bool, err error) {
	return WriteDeferred(c, content, nil)
}

// WriteDeferred is Write with the fsync of the destination's directory
// (and of the backup's, the same one) left to dirs when dirs is set: the
// new file is in place when it returns, and durable once dirs.Sync has
// returned no error for its directory. It is safe to call concurrently
// for different destinations.
func WriteDeferred(c config.Template, content []byte, dirs *atomicfile.Dirs) (wrote, changed bool, err error) {
	dest := filepath.Clean(c.Destination)
	uid, gid, err := Owner(c)
	if err != nil {
		return false, false, err
	}
	// Best effort: a directory that cannot be read fails the write below.
	_, _ = stale.Sweep(dest)
	ex, err := readExisting(dest, len(content))
	if err != nil {
		return false, false, fmt.Errorf("destination %s: %w", dest, err)
	}
	defer ex.close()
	old := ex.fi
	exists := old != nil
	same := exists && ex.read && bytes.Equal(ex.content, content)
	// What the template leaves unset is kept from the file it replaces, as
	// Vault Agent keeps it: the owner as well as the mode. A file chowned
	// to the application (app:app 0600) otherwise came back root's at the
	// first change, and the application could no longer read it.
	keepUID, keepGID := uid, gid
	if exists && !othersMayCreate(filepath.Dir(dest)) {
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			if keepUID < 0 {
				keepUID = int(st.Uid)
			}
			if keepGID < 0 {
				keepGID = int(st.Gid)
			}
		}
	}
	mode := os.FileMode(defaultPerms)
	if exists && c.Perms == nil {
		mode = old.Mode().Perm()
	}
	if c.Perms != nil {
		mode = *c.Perms
	}
	if same && old.Mode().Perm() == mode && ownedBy(old, uid, gid) {
		return false, false, nil
	}
	if c.CreateDestDirs {
		if err := atomicfile.MkdirParents(filepath.Dir(dest), 0o755); err != nil {
			return false, false, fmt.Errorf("create directory of %s: %w", dest, err)
		}
	}
	if c.Backup && exists && !same && agentOwns(old, uid) {
		if err := atomicfile.Write(dest+".bak", atomicfile.Options{Mode: old.Mode().Perm(), UID: -1, GID: -1, Dirs: dirs}, ex.copyTo); err != nil {
			return false, false, fmt.Errorf("backup of %s: %w", dest, err)
		}
	}
	opts := atomicfile.Options{Mode: mode, UID: keepUID, GID: keepGID, InPlaceFallback: true, Dirs: dirs}
	if err := atomicfile.WriteFile(dest, content, opts); err != nil {
		return false, false, err // "write dest: …"
	}
	return true, !same, nil
}

// existing is the file a write replaces.
type existing struct {
	f  *os.File    // open for a backup; nil when there is no regular file
	fi os.FileInfo // its fstat; nil when there is none
	// content is the file's bytes when read is set: only a file no longer
	// than what is to be written is read (a longer one differs without
	// being read), so a destination pointed by mistake at a large file
	// (a log, an image) is not read into memory at every render.
	content []byte
	read    bool
}

// readExisting opens the regular file at dest and reads it when it is at
// most limit bytes long; a zero existing when nothing or a symlink is
// there (both are replaced by the rename); an error for any other file
// type.
func readExisting(dest string, limit int) (existing, error) {
	f, fi, err := atomicfile.OpenExisting(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, atomicfile.ErrSymlink):
		return existing{}, nil
	case errors.Is(err, atomicfile.ErrNotRegular):
		return existing{}, fmt.Errorf("%w, refused (only a regular file is replaced)", err)
	case err != nil:
		return existing{}, err
	}
	ex := existing{f: f, fi: fi}
	if fi.Size() > int64(limit) {
		return ex, nil
	}
	// One byte more than limit: a file that grew since the fstat differs.
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		f.Close()
		return existing{}, err
	}
	ex.content, ex.read = b, true
	return ex, nil
}

// copyTo writes the whole file to w (the backup), read from its start.
func (ex existing) copyTo(w io.Writer) error {
	if _, err := ex.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, ex.f)
	return err
}

func (ex existing) close() {
	if ex.f != nil {
		ex.f.Close()
	}
}

// agentOwns reports whether fi (an fstat) is owned by the template's user
// or, without one, by this process's user: a file someone else put there
// is not the agent's to copy into a backup.
func agentOwns(fi os.FileInfo, uid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	if uid < 0 {
		uid = os.Geteuid()
	}
	return int(st.Uid) == uid
}

// othersMayCreate reports whether every user may create files in dir
// (world-writable, as /tmp is): whoever owns a file there
// may have put it there to be handed what is rendered, so its owner is not
// kept.
func othersMayCreate(dir string) bool {
	fi, err := os.Stat(dir)
	return err != nil || fi.Mode().Perm()&0o002 != 0
}

func ownedBy(fi os.FileInfo, uid, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return (uid < 0 || int(st.Uid) == uid) && (gid < 0 || int(st.Gid) == gid)
}
