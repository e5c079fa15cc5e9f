package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// readTrusted reads a config file and refuses it when someone other than
// root (or the user the agent runs as, for tests and image builds) could
// have written it: whoever can rewrite the agent's config chooses the
// commands it runs (template command, exec), the files it writes and the
// Vault it trusts, as the agent's user, normally root. See ReadTrusted.
func readTrusted(path string) ([]byte, error) {
	return ReadTrusted(path, "config", "choose the commands the agent runs", "read config")
}

// ReadTrusted reads the file at path, which decides what the agent (root)
// does, and refuses it when someone other than root or the agent's own user
// could have written it. The file itself is checked through the descriptor
// it is read from (opened non-blocking: a FIFO is refused, never waited
// on), then each directory above the file it resolves to (as sshd's
// StrictModes does, and as latchkey-ssh-helper checks its config): a
// directory such a user may write lets them put another file in its place.
// Writable means owned by that user, or writable by others, or by a group
// other than root's (or the agent's); a sticky directory (/tmp) lets nobody
// replace a file they do not own. The error names what the file is (what),
// the file or directory, what its writer could do (could) and the fix,
// never the content; a read error is prefixed with readErr.
func ReadTrusted(path, what, could, readErr string) ([]byte, error) {
	// Non-blocking: a FIFO in the file's place is refused below, not
	// waited on.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file (%s)", readErr, path, fi.Mode().Type())
	}
	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	if why := foreignWriter(fi, euid, egid, false); why != "" {
		return nil, fmt.Errorf("%s %s %s, who could then %s; refused (%s)", what, path, why, could, fixFor(fi, path, euid))
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	for dir := filepath.Dir(resolved); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
		}
		if why := foreignWriter(di, euid, egid, true); why != "" {
			return nil, fmt.Errorf("%s %s: its directory %s %s, who could then put another %s in its place; refused (%s)", what, path, dir, why, what, fixFor(di, dir, euid))
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	src, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	return src, nil
}

// foreignWriter says who other than root or the agent's own user may write
// the file or directory fi describes ("is owned by uid 1000", "is writable
// by every user (mode 0666)"), or "" when nobody.
func foreignWriter(fi os.FileInfo, euid, egid uint32, dir bool) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid != 0 && st.Uid != euid:
		return fmt.Sprintf("is owned by uid %d", st.Uid)
	case dir && fi.Mode()&os.ModeSticky != 0:
		// Others may add names, not replace a name they do not own.
		return ""
	case perm&0o002 != 0:
		return fmt.Sprintf("is writable by every user (mode %04o)", perm)
	case perm&0o020 != 0 && st.Gid != 0 && st.Gid != egid:
		return fmt.Sprintf("is writable by group %d (mode %04o)", st.Gid, perm)
	}
	return ""
}

// fixFor is the command that takes the write away from the others.
func fixFor(fi os.FileInfo, path string, euid uint32) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != euid {
		return "chown root " + path
	}
	return "chmod go-w " + path
}
