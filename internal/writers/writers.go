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
	"strings"
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
// nearest up to /, then each symlink met on the way there (in path or in a
// link's target) and the directories above it: whoever may replace such a
// link (its directory's writer, or its owner in a sticky directory)
// chooses the file as much as the file's own directory's writer does. It
// returns the first that is refused, with Foreign's words (for a link, its
// owner) and the Fix; dir is "" when none is. err is set when path, a
// link or a directory cannot be resolved or stat'ed.
func Dirs(path string) (dir, why, fix string, err error) {
	resolved, links, err := resolve(path)
	if err != nil {
		return "", "", "", err
	}
	seen := map[string]bool{}
	// above checks d and each directory above it, once each.
	above := func(d string) (string, string, string, error) {
		for ; !seen[d]; d = filepath.Dir(d) {
			seen[d] = true
			fi, err := os.Stat(d)
			if err != nil {
				return "", "", "", err
			}
			if w := Foreign(fi); w != "" {
				return d, w, Fix(fi, d), nil
			}
			if d == filepath.Dir(d) {
				break
			}
		}
		return "", "", "", nil
	}
	if dir, why, fix, err = above(filepath.Dir(resolved)); err != nil || dir != "" {
		return dir, why, fix, err
	}
	for _, l := range links {
		fi, err := os.Lstat(l)
		if err != nil {
			return "", "", "", err
		}
		// A link's own mode means nothing; its owner may replace it in a
		// sticky directory.
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != uint32(os.Geteuid()) {
			return l, fmt.Sprintf("is a symlink owned by uid %d", st.Uid), "chown -h root " + l, nil
		}
		if dir, why, fix, err = above(filepath.Dir(l)); err != nil || dir != "" {
			return dir, why, fix, err
		}
	}
	return "", "", "", nil
}

// maxLinks is how many symlinks resolve follows, as Linux's ELOOP limit.
const maxLinks = 40

// resolve follows path as the kernel does, one component at a time, and
// returns the file it resolves to (absolute, every symlink resolved) and
// where each symlink met on the way lies.
func resolve(path string) (resolved string, links []string, err error) {
	// Not filepath.Abs: it cleans "link/.." away lexically, where the
	// kernel goes to the parent of the link's target.
	abs := path
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", nil, err
		}
		abs = wd + "/" + path
	}
	done := "/" // resolved so far: a real directory
	rest := strings.Split(abs, "/")
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", nil, err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			done = next
			continue
		}
		if len(links) == maxLinks {
			return "", nil, &os.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", nil, err
		}
		links = append(links, next)
		if filepath.IsAbs(target) {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, links, nil
}
