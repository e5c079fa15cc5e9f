package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// install-pam and uninstall-pam -root DIR (an image's tree) never write
// outside DIR. An image's absolute symlink (/etc/ssh/sshd_config.d ->
// /etc/ssh/...) names the image's own directory, but read on the build host
// it is the host's: install-pam wrote its drop-in there (PasswordAuthentication
// no for the build host's sshd at its next reload) and said it wrote it in
// the tree. Now such a link is refused, naming it, and nothing changes;
// links that stay in the tree (relative, or absolute into DIR) still work.
func TestBinaryInstallPAMStaysInRoot(t *testing.T) {
	tests := map[string]struct {
		cmd      string
		link     string // under the tree, made a symlink
		target   func(root, outside string) string
		rootLink bool // -root names the tree through a symlink
		wantCode int
		want     string
	}{
		"drop-in directory, out of the tree": {cmd: "install-pam", link: "etc/ssh/sshd_config.d",
			target: func(_, outside string) string { return outside }, wantCode: exitDenied, want: "outside -root"},
		"pam.d, out of the tree": {cmd: "install-pam", link: "etc/pam.d",
			target: func(_, outside string) string { return outside }, wantCode: exitDenied, want: "outside -root"},
		"etc/ssh, relative, out of the tree": {cmd: "install-pam", link: "etc/ssh",
			target: func(_, outside string) string { return "../../../../../../../../.." + outside }, wantCode: exitDenied, want: "outside -root"},
		"drop-in directory, out of the tree, uninstall": {cmd: "uninstall-pam", link: "etc/ssh/sshd_config.d",
			target: func(_, outside string) string { return outside }, wantCode: exitDenied, want: "outside -root"},
		"drop-in directory, relative, in the tree": {cmd: "install-pam", link: "etc/ssh/sshd_config.d",
			target: func(string, string) string { return "dropins" }, wantCode: exitOK},
		"drop-in directory, absolute, in the tree": {cmd: "install-pam", link: "etc/ssh/sshd_config.d",
			target: func(root, _ string) string { return filepath.Join(root, "etc/ssh/dropins") }, wantCode: exitOK},
		"-root through a symlink": {cmd: "install-pam", link: "etc/ssh/sshd_config.d", rootLink: true,
			target: func(root, _ string) string { return filepath.Join(root, "etc/ssh/dropins") }, wantCode: exitOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "image")
			copyDir(t, filepath.Join("..", "..", "pam", "install", "testdata", "debian12"), root)
			outside := t.TempDir()
			// The outside directory holds what the link's name promises, so
			// that a write through it would succeed.
			src := filepath.Join(root, tc.link)
			if fi, err := os.Stat(src); err == nil && fi.IsDir() {
				copyDir(t, src, outside)
				testkit.Must(t, os.RemoveAll(src))
			}
			if tc.wantCode == exitOK {
				testkit.Must(t, os.MkdirAll(filepath.Join(root, "etc/ssh/dropins"), 0o755))
			}
			testkit.Must(t, os.Symlink(tc.target(root, outside), src))
			if tc.cmd == "uninstall-pam" {
				// What an earlier install left there.
				testkit.WriteFile(t, filepath.Join(outside, "50-latchkey.conf"), "# Written by latchkey-ssh-helper install-pam; removed by uninstall-pam.\n")
			}
			before, outsideBefore := tree(t, root), tree(t, outside)

			arg := root
			if tc.rootLink {
				arg = filepath.Join(t.TempDir(), "mnt")
				testkit.Must(t, os.Symlink(root, arg))
			}
			cmd := boundedCommand(t, helper, tc.cmd, "-root", arg)
			cmd.Env = []string{}
			code, out := runCommand(t, cmd)
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q:\n%s", code, tc.wantCode, tc.want, out)
			}
			if got := tree(t, outside); got != outsideBefore {
				t.Errorf("%s changed a file outside the tree:\n%s\nwas\n%s", tc.cmd, got, outsideBefore)
			}
			if tc.wantCode != exitOK && tree(t, root) != before {
				t.Errorf("a refused %s changed the tree", tc.cmd)
			}
			if tc.wantCode == exitOK && !strings.Contains(testkit.ReadFile(filepath.Join(root, "etc/ssh/dropins/50-latchkey.conf")), "UsePAM yes") {
				t.Errorf("the drop-in is not in the tree's directory the link names")
			}
		})
	}
}

// copyDir copies the regular files and directories under src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	testkit.Must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	}))
}

// tree lists the files under dir (symlinks not followed) with their
// content, one per line.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	testkit.Must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			b.WriteString(p + " -> " + l + "\n")
			return nil
		}
		c, err := os.ReadFile(p)
		b.WriteString(p + ": " + string(c) + "\n")
		return err
	}))
	return b.String()
}
