// Package install puts latchkey-ssh-helper into a distribution's own PAM
// stack for sshd and sshd's settings into a drop-in (install-pam), and takes
// them out again byte for byte (uninstall-pam).
//
// It edits only what it must: the password auth line of /etc/pam.d/sshd
// (`@include common-auth` on Debian and Ubuntu, `auth substack
// password-auth` on RHEL and Amazon Linux) becomes the helper's two auth
// lines, and every account and session line (pam_nologin, pam_loginuid,
// pam_limits, pam_selinux, ...) stays. Each changed file gets a backup
// beside it; `sshd -t` runs before and after, and any failure puts every
// file back as it was. Uninstall does not need sshd -t to pass before: it
// undoes install-pam's own change even where sshd is already broken for
// another reason (a golden image without host keys), as long as sshd -t
// afterwards passes or fails exactly as it did before.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// Defaults of Options.
const (
	DefaultHelper = "/usr/sbin/latchkey-ssh-helper"
	DefaultConfig = "/etc/latchkey-ssh-helper.d/config.hcl"
	DefaultSSHD   = "/usr/sbin/sshd"
	// BackupSuffix names the copy of a file as it was before install-pam
	// changed it.
	BackupSuffix = ".latchkey-bak"
)

// Options say what to install where.
type Options struct {
	// Root is the tree to work on ("" or "/": this host). Paths written into
	// the files (Helper, Config, TrustedUserCAKeys) are as seen from Root.
	Root string
	// Helper and Config go on the PAM line; empty means the defaults.
	Helper, Config string
	// Dev adds -dev to the PAM line (a Vault at an http:// address).
	Dev bool
	// TrustedUserCAKeys, when set, adds that line to the drop-in.
	TrustedUserCAKeys string
	// SSHD is the sshd run with -t before and after the change. Empty: the
	// default when Root is this host, and no check under another Root
	// (whose sshd_config's Include names paths of the image, not of Root).
	SSHD string
	// DryRun prints the diff and changes nothing.
	DryRun bool
	// Out receives what was done (or, with DryRun, the diff).
	Out io.Writer
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

func (o Options) sshd() string {
	if o.SSHD == "" && o.root() == "/" {
		return DefaultSSHD
	}
	return o.SSHD
}

// PAMPath and DropInPath are the files install-pam edits, under root.
func PAMPath(root string) string { return filepath.Join(root, "etc/pam.d/sshd") }

// DropInPath is the sshd drop-in's path under root.
func DropInPath(root string) string {
	return filepath.Join(root, "etc/ssh/sshd_config.d", DropInName)
}

// change is one file's planned content; new nil removes the file.
type change struct {
	path     string
	old, new []byte // old nil: the file does not exist
	mode     os.FileMode
	uid, gid int
	backup   bool // write path+BackupSuffix with old first
}

// Install edits root's PAM stack and writes the drop-in. It returns nil when
// both are in place (already or now), or with DryRun when the diff was
// printed. On an error nothing is changed: files already written are put
// back. Errors say which file and line is in the way and how to fix it.
func Install(o Options) error {
	root := o.root()
	helper, config := o.Helper, o.Config
	if helper == "" {
		helper = DefaultHelper
	}
	if config == "" {
		config = DefaultConfig
	}
	if err := staysInRoot(root, PAMPath(root), DropInPath(root), filepath.Join(root, "etc/ssh/sshd_config")); err != nil {
		return err
	}
	if err := checkSSHDConfig(root); err != nil {
		return err
	}
	pamPath := PAMPath(root)
	pc, err := current(pamPath)
	if err != nil {
		return err
	}
	if pc.old == nil {
		return fmt.Errorf("%s does not exist: is openssh-server installed?", pamPath)
	}
	pc.new, err = EditPAM(pamPath, pc.old, AuthLines(helper, config, o.Dev))
	if err != nil {
		return err
	}
	pc.backup = true
	dc, err := current(DropInPath(root))
	if err != nil {
		return err
	}
	dc.new, dc.mode, dc.uid, dc.gid = DropIn(o.TrustedUserCAKeys), 0o644, 0, 0
	// A drop-in of an earlier install-pam is ours to replace; another
	// file of that name is the administrator's, kept as the backup.
	dc.backup = dc.old != nil && !bytes.HasPrefix(dc.old, []byte(dropInHeader))
	return apply(o, []*change{pc, dc}, false)
}

// Uninstall puts back the PAM line install-pam replaced and removes the
// drop-in, and the backups when they equal what is restored. It returns nil
// when neither is (now) in place; with DryRun after printing the diff.
//
// Unlike Install it goes ahead when `sshd -t` fails before the change: a
// PAM line naming a helper about to be removed refuses every login, which
// is worse than whatever already breaks sshd. It then puts every file back
// only when sshd -t after the change fails otherwise than before (the
// restored files would be to blame); the same failure is reported in Out
// and left to the administrator.
func Uninstall(o Options) error {
	root := o.root()
	pamPath := PAMPath(root)
	if err := staysInRoot(root, pamPath, DropInPath(root)); err != nil {
		return err
	}
	pc, err := current(pamPath)
	if err != nil {
		return err
	}
	var changes []*change
	if pc.old != nil {
		restored, found, err := RevertPAM(pamPath, pc.old)
		if err != nil {
			return err
		}
		if found {
			pc.new = restored
			changes = append(changes, pc)
		}
	}
	dc, err := current(DropInPath(root))
	if err != nil {
		return err
	}
	if dc.old != nil {
		// Removed, or the administrator's file install-pam replaced put back.
		if b, err := os.ReadFile(dc.path + BackupSuffix); err == nil {
			dc.new = b
		}
		changes = append(changes, dc)
	}
	if err := apply(o, changes, true); err != nil || o.DryRun {
		return err
	}
	for _, c := range changes {
		bak := c.path + BackupSuffix
		if b, err := os.ReadFile(bak); err == nil && bytes.Equal(b, c.new) {
			if err := os.Remove(bak); err != nil {
				return fmt.Errorf("remove backup: %w", err)
			}
			fmt.Fprintf(o.Out, "removed %s\n", bak)
		}
	}
	return nil
}

// staysInRoot refuses, under a -root other than /, a path (or its backup)
// that a symlink on the way takes out of the tree: an image's absolute link
// (/etc/ssh/sshd_config.d -> /etc/ssh/...) names its own file, but read on
// the build host it is the host's, and install-pam wrote the drop-in (or
// the PAM file) there, changing the build host's sshd. Links that stay in
// the tree are followed as before.
func staysInRoot(root string, paths ...string) error {
	if root == "/" {
		return nil
	}
	// The tree's own path may hold symlinks (an image mounted through
	// one): the walk starts from where it resolves to.
	real, err := filepath.EvalSymlinks(root)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return err
	}
	for _, p := range paths {
		for _, q := range []string{p, p + BackupSuffix} {
			rel, err := filepath.Rel(root, q)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				return fmt.Errorf("%s is not under -root %s", q, root)
			}
			if err := linkStaysIn(real, rel); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkStaysIn follows rel from root (resolved) component by component and
// fails at the first symlink whose target, as this host reads it, is
// outside root; a missing component ends the walk (it will be created as a
// directory or file in place).
func linkStaysIn(root, rel string) error {
	cur := root
	rest := strings.Split(rel, "/")
	for hops := 0; len(rest) > 0; {
		next := filepath.Join(cur, rest[0])
		rest = rest[1:]
		fi, err := os.Lstat(next)
		if err != nil {
			return nil
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return fmt.Errorf("%s: too many levels of symbolic links", next)
		}
		t, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(cur, t)
		}
		t = filepath.Clean(t)
		if t != root && !strings.HasPrefix(t, root+"/") {
			return fmt.Errorf("%s is a symlink to %s, outside -root %s: in the image it names the image's own file, but here it is this host's, which install-pam would change; refusing (make the link relative, or edit the file by hand)", next, t, root)
		}
		// Continue from the target, within root.
		trel, _ := filepath.Rel(root, t)
		cur = root
		if trel != "." {
			rest = append(strings.Split(trel, "/"), rest...)
		}
	}
	return nil
}

// current reads path's content, mode and owner; old is nil when path does
// not exist.
func current(path string) (*change, error) {
	c := &change{path: path, mode: 0o644}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): refusing to replace it", path, fi.Mode().Type())
	}
	if c.old, err = os.ReadFile(path); err != nil {
		return nil, err
	}
	if c.old == nil {
		c.old = []byte{}
	}
	c.mode = fi.Mode().Perm()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		c.uid, c.gid = int(st.Uid), int(st.Gid)
	}
	return c, nil
}

// apply prints or makes changes: sshd -t first, the backups and the files,
// sshd -t again (and, for an install, sshd -T showing the drop-in's
// settings in effect); on any error every file written is put back. For an
// uninstall (undo), a failing sshd -t before the change does not stop it,
// and the same failure after it is no error (see Uninstall).
func apply(o Options, changes []*change, undo bool) (err error) {
	var todo []*change
	for _, c := range changes {
		if c.new == nil && c.old == nil || c.new != nil && c.old != nil && bytes.Equal(c.old, c.new) {
			fmt.Fprintf(o.Out, "unchanged %s\n", c.path)
			continue
		}
		todo = append(todo, c)
	}
	if o.DryRun {
		for _, c := range todo {
			io.WriteString(o.Out, Diff(c.path, c.old, c.new))
		}
		return nil
	}
	if len(todo) == 0 {
		return nil
	}
	before := sshdTest(o, "before the change", false)
	if before != nil && !undo {
		return before
	}
	if before != nil {
		fmt.Fprintf(o.Out, "%v: restoring anyway (install-pam's lines must not outlive the helper); the files are put back if sshd -t then fails otherwise\n", before)
	}
	var done []*change
	var backups []string // made by this run
	defer func() {
		if err == nil {
			return
		}
		for _, b := range backups {
			os.Remove(b)
		}
		for i := len(done) - 1; i >= 0; i-- {
			if rerr := restore(done[i]); rerr != nil {
				err = fmt.Errorf("%w; and putting %s back failed too: %v (its backup is %s)", err, done[i].path, rerr, done[i].path+BackupSuffix)
			}
		}
		if len(done) > 0 {
			err = fmt.Errorf("%w (every file was put back as it was)", err)
		}
	}()
	for _, c := range todo {
		opts := atomicfile.Options{Mode: c.mode, UID: c.uid, GID: c.gid}
		// The backup is the file before install-pam first changed it: a
		// later run (new flags) keeps it.
		bak := c.path + BackupSuffix
		if _, err := os.Lstat(bak); c.backup && c.old != nil && errors.Is(err, os.ErrNotExist) {
			if err := atomicfile.WriteFile(bak, c.old, opts); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			backups = append(backups, bak)
		}
		done = append(done, c)
		if c.new == nil {
			if err := os.Remove(c.path); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "removed %s\n", c.path)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(c.path, c.new, opts); err != nil {
			return err
		}
		if c.backup && c.old != nil {
			fmt.Fprintf(o.Out, "changed %s (backup: %s)\n", c.path, bak)
		} else {
			fmt.Fprintf(o.Out, "wrote %s\n", c.path)
		}
	}
	after := sshdTest(o, "after the change", !undo)
	if after == nil {
		return nil // not `return after`: a nil *sshdError is a non-nil error
	}
	if before == nil {
		return after
	}
	if after.out == before.out && after.code == before.code {
		fmt.Fprintf(o.Out, "%s -t after the change fails as it did before, which is not uninstall-pam's doing: fix that before sshd restarts: %s\n", o.sshd(), after.out)
		return nil
	}
	return fmt.Errorf("%w; before the change it failed otherwise: %s", after, before.out)
}

// restore puts c's file back as it was before apply.
func restore(c *change) error {
	if c.old == nil {
		if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return atomicfile.WriteFile(c.path, c.old, atomicfile.Options{Mode: c.mode, UID: c.uid, GID: c.gid})
}

// sshdError is a failed check of sshd's config: what sshd printed and its
// exit code (-1 when it did not run or was killed), kept apart so that an
// uninstall can compare the failures before and after its change.
type sshdError struct {
	msg  string
	out  string
	code int
}

func (e *sshdError) Error() string { return e.msg }

// sshdTest runs `sshd -t` on root's sshd_config, when there is an sshd to
// run (see Options.SSHD), and with effective `sshd -T` to see UsePAM and
// KbdInteractiveAuthentication yes in effect; its error holds sshd's own
// message or names the setting.
func sshdTest(o Options, when string, effective bool) *sshdError {
	sshd := o.sshd()
	if sshd == "" {
		return nil
	}
	cmd := exec.Command(sshd, "-t", "-f", filepath.Join(o.root(), "etc/ssh/sshd_config"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		e := &sshdError{out: strings.TrimSpace(string(out)), code: -1}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			e.code = ee.ExitCode()
		}
		e.msg = fmt.Sprintf("%s -t %s: %v: %s", sshd, when, err, e.out)
		return e
	}
	fmt.Fprintf(o.Out, "%s -t %s: ok\n", sshd, when)
	if !effective {
		return nil
	}
	// The drop-in must also win: sshd -T prints the values in effect.
	out, err = exec.Command(sshd, "-T", "-f", filepath.Join(o.root(), "etc/ssh/sshd_config")).CombinedOutput()
	if err != nil {
		return &sshdError{msg: fmt.Sprintf("%s -T: %v: %s", sshd, err, strings.TrimSpace(string(out))), code: -1}
	}
	for _, want := range []string{"usepam yes", "kbdinteractiveauthentication yes"} {
		if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
			return &sshdError{msg: fmt.Sprintf("%s -T does not show %q after the change: another setting read first wins", sshd, want), code: -1}
		}
	}
	return nil
}
