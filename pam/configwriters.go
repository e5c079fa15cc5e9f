package pam

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckWriters refuses a config file that someone other than root (or the
// user the helper runs as, for tests and image builds) could have written:
// whoever can rewrite it chooses the Vault that approves every login, root's
// included. It checks the file itself, through the descriptor LoadConfig read
// it with, then each directory above the file it resolves to (as sshd's
// StrictModes does): a directory such a user may write lets them put another
// file in its place. Writable means owned by that user, or writable by
// others, or by a group other than root's (or the helper's); a sticky
// directory (/tmp) lets nobody replace a file they do not own. The error
// names the file or directory and the fix, never the content.
//
// With an https:// address (and tls_skip_verify off), the CA that checks
// Vault's certificate, ca_cert or else ca_path, is checked the same way.
//
// vault-ssh-helper 0.2.4 reads any file; the helper refuses such a one
// (exit 3), as doctor fails it.
func (c *Config) CheckWriters() error {
	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	if c.fileInfo != nil {
		if why := foreignWriter(c.fileInfo, euid, egid, false); why != "" {
			return fmt.Errorf("config %s %s, who could then choose the Vault that approves logins; refused (%s)", c.Path, why, fixFor(c.fileInfo, c.Path))
		}
	}
	if err := checkDirs("config "+c.Path, c.Path, "put another config in its place", euid, egid); err != nil {
		return err
	}
	// The CA that checks Vault's certificate is as much the login's
	// authority: whoever rewrites it can have a Vault of their own trusted.
	// Only with an https:// address, the only one that reads it.
	var ca, key string
	switch {
	case !c.hasHTTPS() || c.TLSSkipVerify:
	case c.CACert != "":
		ca, key = c.CACert, "ca_cert"
	case c.CAPath != "":
		ca, key = c.CAPath, "ca_path"
	}
	if ca == "" {
		return nil
	}
	label := fmt.Sprintf("config %s: %s %s", c.Path, key, ca)
	fi, err := os.Stat(ca)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if why := foreignWriter(fi, euid, egid, fi.IsDir()); why != "" {
		return fmt.Errorf("%s %s, who could then have a Vault of their own trusted; refused (%s)", label, why, fixFor(fi, ca))
	}
	return checkDirs(label, ca, "put another CA in its place", euid, egid)
}

// checkDirs refuses path when a directory above the file it resolves to
// may be written by someone other than root or the helper's user (see
// foreignWriter); label begins the error, what says what they could do.
func checkDirs(label, path, what string, euid, egid uint32) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	for dir := filepath.Dir(resolved); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		if why := foreignWriter(fi, euid, egid, true); why != "" {
			return fmt.Errorf("%s: its directory %s %s, who could then %s; refused (%s)", label, dir, why, what, fixFor(fi, dir))
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// foreignWriter says who other than root or the helper's own user may
// write the file or directory fi describes ("is owned by uid 1000", "is
// writable by every user (mode 0666)"), or "" when nobody.
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
func fixFor(fi os.FileInfo, path string) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != uint32(os.Geteuid()) {
		return "chown root " + path
	}
	return "chmod go-w " + path
}
