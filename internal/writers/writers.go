// Package writers tells whether someone other than root, or the program's
// own user, could have written a file that decides what a root program
// does: the helper's config and CA (they choose the Vault that approves
// logins), the agent's config and template sources (they choose the
// commands it runs and the files it writes). One rule, as sshd's
// StrictModes: the file, and every directory above the file it resolves
// to, since a writable directory lets its writer put another file in the
// file's place. Each caller words its own refusal.
package writers

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Foreign says who other than root or the process's effective user may
// write the file or directory fi describes ("is owned by uid 1000", "is
// writable by every user (mode 0666)", "is writable by group 100 (mode
// 0664)"), or "" when nobody does. A sticky directory (/tmp) lets others
// add names, not replace one they do not own: "" for it, unless another
// user owns it. Without a syscall.Stat_t (not Linux) it returns "".
func Foreign(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	perm := fi.Mode().Perm()
	switch {
	case st.Uid != 0 && st.Uid != euid:
		return fmt.Sprintf("is owned by uid %d", st.Uid)
	case fi.IsDir() && fi.Mode()&os.ModeSticky != 0:
		return ""
	case perm&0o002 != 0:
		return fmt.Sprintf("is writable by every user (mode %04o)", perm)
	case perm&0o020 != 0 && st.Gid != 0 && st.Gid != egid:
		return fmt.Sprintf("is writable by group %d (mode %04o)", st.Gid, perm)
	}
	return ""
}

// Fix is the command that takes the write of path (described by fi) away
// from the others: chown for a foreign owner, else chmod go-w.
func Fix(fi os.FileInfo, path string) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != uint32(os.Geteuid()) {
		return "chown root " + path
	}
	return "chmod go-w " + path
}

// Dirs checks each directory above the file path resolves to, from the
// nearest up to /. It returns the first that Foreign refuses, with
// Foreign's words and the Fix; dir is "" when none is. err is set when
// path or a directory cannot be resolved or stat'ed.
func Dirs(path string) (dir, why, fix string, err error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return "", "", "", err
	}
	for d := filepath.Dir(resolved); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return "", "", "", err
		}
		if w := Foreign(fi); w != "" {
			return d, w, Fix(fi, d), nil
		}
		if d == filepath.Dir(d) {
			return "", "", "", nil
		}
	}
}
