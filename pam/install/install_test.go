package install

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var distros = []string{"debian12", "ubuntu2404", "rhel9", "al2023"}

// copyTree copies testdata/<distro> into a temp dir and returns it.
func copyTree(t *testing.T, distro string) string {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("testdata", distro)
	testkit.Must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}))
	return root
}

// snapshot maps every file under root to its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	testkit.Must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[strings.TrimPrefix(p, root)] = string(b)
		return err
	}))
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata/golden", name)
	if *update {
		testkit.Must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		testkit.Must(t, os.WriteFile(p, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(p)
	testkit.Must(t, err)
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update to rewrite it):\n%s", p, Diff(p, want, []byte(got)))
	}
}

// nonAuth returns the lines of a PAM file that are not auth lines.
func nonAuth(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !regexp.MustCompile(`^\s*(auth\s|@include\s+common-auth)`).MatchString(l) && !strings.HasPrefix(l, "# latchkey") && !strings.HasPrefix(l, "#-") {
			out = append(out, l)
		}
	}
	return out
}

func TestInstallOnStockFiles(t *testing.T) {
	for _, distro := range distros {
		t.Run(distro, func(t *testing.T) {
			root := copyTree(t, distro)
			before := snapshot(t, root)
			pamPath := PAMPath(root)
			orig := []byte(before["/etc/pam.d/sshd"])
			var out bytes.Buffer
			o := Options{Root: root, Out: &out, DryRun: true}

			testkit.Must(t, Install(o))
			if after := snapshot(t, root); len(after) != len(before) {
				t.Fatalf("-dry-run changed the tree: %d files, was %d", len(after), len(before))
			}
			golden(t, distro+".diff", strings.ReplaceAll(out.String(), root, "ROOT"))

			out.Reset()
			o.DryRun = false
			testkit.Must(t, Install(o))
			got := testkit.ReadFile(pamPath)
			golden(t, distro+".sshd", got)
			// Every line but the password auth stays, in order.
			if a, b := strings.Join(nonAuth(orig), "\n"), strings.Join(nonAuth([]byte(got)), "\n"); a != b {
				t.Errorf("lines other than auth changed:\n%s", Diff("sshd", []byte(a), []byte(b)))
			}
			for _, m := range []string{"pam_nologin", "pam_loginuid", "pam_keyinit", "pam_selinux", "pam_motd"} {
				if strings.Contains(string(orig), m) && !strings.Contains(got, m) {
					t.Errorf("%s was dropped", m)
				}
			}
			if bak := testkit.ReadFile(pamPath + BackupSuffix); bak != string(orig) {
				t.Errorf("backup = %q, want the original", bak)
			}
			if d := testkit.ReadFile(DropInPath(root)); d != string(DropIn("")) {
				t.Errorf("drop-in = %q", d)
			}
			for _, rel := range []string{"/etc/pam.d/password-auth", "/etc/ssh/sshd_config"} {
				if b, ok := before[rel]; ok && testkit.ReadFile(root+rel) != b {
					t.Errorf("%s changed", rel)
				}
			}

			// Idempotent: a second run changes nothing.
			out.Reset()
			testkit.Must(t, Install(o))
			if testkit.ReadFile(pamPath) != got || strings.Count(out.String(), "unchanged") != 2 {
				t.Errorf("second install changed something:\n%s", out.String())
			}
			// New flags replace the block's lines, not add a second block.
			o.Dev, o.TrustedUserCAKeys = true, "/etc/ssh/trusted-user-ca-keys.pem"
			testkit.Must(t, Install(o))
			if s := testkit.ReadFile(pamPath); strings.Count(s, "pam_exec.so") != 1 || !strings.Contains(s, " -dev\n") {
				t.Errorf("re-install with -dev:\n%s", s)
			}
			if !strings.Contains(testkit.ReadFile(DropInPath(root)), "\nTrustedUserCAKeys /etc/ssh/trusted-user-ca-keys.pem\n") {
				t.Errorf("no TrustedUserCAKeys line in the drop-in")
			}

			// Uninstall restores the tree byte for byte, backups included.
			out.Reset()
			testkit.Must(t, Uninstall(o))
			after := snapshot(t, root)
			for p, b := range before {
				if after[p] != b {
					t.Errorf("%s not restored:\n%s", p, Diff(p, []byte(b), []byte(after[p])))
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("%s left behind", p)
				}
			}
			// And again: nothing to do.
			testkit.Must(t, Uninstall(o))
		})
	}
}

// install-pam finds the password auth line however Linux-PAM lets it be
// spelt (what doctor accepts, install-pam installs on), keeps it verbatim
// in its block, and uninstall-pam puts it back byte for byte.
func TestInstallReadsThePAMFileAsPAM(t *testing.T) {
	cases := []struct {
		distro, stock, spelt string
	}{
		{"debian12", "@include common-auth\n", "@include common-auth   # the stock stack\n"},
		{"debian12", "@include common-auth\n", "@include common-auth\r\n"},
		{"rhel9", "auth       substack     password-auth\n", "AUTH Substack password-auth\n"},
		{"rhel9", "auth       substack     password-auth\n", "-auth\tinclude\tpassword-auth\n"},
		// SUSE: auth include common-auth.
		{"rhel9", "auth       substack     password-auth\n", "auth        include     common-auth\n"},
	}
	for _, tc := range cases {
		t.Run(tc.distro+"/"+strings.TrimSpace(tc.spelt), func(t *testing.T) {
			root := copyTree(t, tc.distro)
			p := PAMPath(root)
			orig := testkit.ReadFile(p)
			if !strings.Contains(orig, tc.stock) {
				t.Fatalf("%s has no %q", p, tc.stock)
			}
			edited := strings.Replace(orig, tc.stock, tc.spelt, 1)
			testkit.WriteFile(t, p, edited)
			o := Options{Root: root, Out: new(bytes.Buffer)}
			testkit.Must(t, Install(o))
			got := testkit.ReadFile(p)
			if !strings.Contains(got, "\n"+savedLine+strings.TrimSuffix(tc.spelt, "\n")+"\n") || strings.Count(got, "pam_exec.so") != 1 {
				t.Errorf("installed:\n%s", got)
			}
			testkit.Must(t, Uninstall(o))
			if back := testkit.ReadFile(p); back != edited {
				t.Errorf("not restored:\n%s", Diff(p, []byte(edited), []byte(back)))
			}
		})
	}
}

func TestInstallRefuses(t *testing.T) {
	cases := map[string]struct {
		edit func(root string)
		want string
	}{
		"no Include": {func(root string) {
			p := filepath.Join(root, "etc/ssh/sshd_config")
			testkit.WriteFile(t, p, strings.Replace(testkit.ReadFile(p), "Include /etc/ssh/sshd_config.d/*.conf\n", "", 1))
		}, "add this line at the top of it:\nInclude /etc/ssh/sshd_config.d/*.conf"},
		"setting before Include": {func(root string) {
			p := filepath.Join(root, "etc/ssh/sshd_config")
			testkit.WriteFile(t, p, "KbdInteractiveAuthentication no\n"+testkit.ReadFile(p))
		}, `sshd_config:1: "KbdInteractiveAuthentication no" comes before the Include`},
		"earlier drop-in": {func(root string) {
			// git keeps no empty directory: the stock tree's sshd_config.d may be missing.
			testkit.Must(t, os.MkdirAll(filepath.Join(root, "etc/ssh/sshd_config.d"), 0o755))
			testkit.WriteFile(t, filepath.Join(root, "etc/ssh/sshd_config.d/10-local.conf"), "# local\nPasswordAuthentication yes\n")
		}, `10-local.conf:2: "PasswordAuthentication yes" is read before 50-latchkey.conf`},
		"vault-ssh-helper already there": {func(root string) {
			p := PAMPath(root)
			testkit.WriteFile(t, p, "auth requisite pam_exec.so quiet expose_authtok /usr/local/bin/vault-ssh-helper -config=/etc/vault-ssh-helper.d/config.hcl\n"+testkit.ReadFile(p))
		}, "sshd:1: already runs an OTP helper"},
		"vault-ssh-helper spelt otherwise": {func(root string) {
			// Linux-PAM reads type and control case-insensitively and runs a
			// "-auth" line as an auth line: it is a second verifier all the same.
			p := PAMPath(root)
			testkit.WriteFile(t, p, "# local\n-AUTH [success=ok default=die] /lib/security/pam_exec.so expose_authtok \\\n /usr/local/bin/vault-ssh-helper -config=/etc/vault-ssh-helper.d/config.hcl\n"+testkit.ReadFile(p))
		}, "sshd:2: already runs an OTP helper"},
		"password auth continued": {func(root string) {
			p := PAMPath(root)
			testkit.WriteFile(t, p, strings.Replace(testkit.ReadFile(p), "@include common-auth\n", "@include \\\n common-auth\n", 1))
		}, "the password auth line is continued over lines"},
		"no password auth": {func(root string) {
			p := PAMPath(root)
			testkit.WriteFile(t, p, strings.Replace(testkit.ReadFile(p), "@include common-auth\n", "", 1))
		}, "no password auth line"},
		"broken block": {func(root string) {
			p := PAMPath(root)
			testkit.WriteFile(t, p, blockBegin+"\n"+testkit.ReadFile(p))
		}, "sshd:1: install-pam's block is broken"},
		"PAM file a symlink": {func(root string) {
			p := PAMPath(root)
			testkit.Must(t, os.Rename(p, p+".real"))
			testkit.Must(t, os.Symlink(p+".real", p))
		}, "is not a regular file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := copyTree(t, "debian12")
			tc.edit(root)
			before := snapshot(t, root)
			err := Install(Options{Root: root, Out: new(bytes.Buffer)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if after := snapshot(t, root); len(after) != len(before) {
				t.Errorf("a refused install changed files")
			}
		})
	}
}

// A write failing midway puts back what was already written: here the
// drop-in's directory is a dangling symlink, so the PAM file is written and
// then the drop-in cannot be.
func TestInstallRollsBack(t *testing.T) {
	root := copyTree(t, "debian12")
	dir := filepath.Join(root, "etc/ssh/sshd_config.d")
	testkit.Must(t, os.RemoveAll(dir))
	testkit.Must(t, os.Symlink(filepath.Join(root, "nowhere"), dir))
	orig := testkit.ReadFile(PAMPath(root))
	var out bytes.Buffer
	err := Install(Options{Root: root, Out: &out})
	if err == nil || !strings.Contains(err.Error(), "every file was put back") {
		t.Fatalf("error = %v, want a rollback", err)
	}
	if testkit.ReadFile(PAMPath(root)) != orig {
		t.Errorf("PAM file not restored")
	}
	if _, err := os.Stat(PAMPath(root) + BackupSuffix); err == nil {
		t.Errorf("the failed install left its backup")
	}
	if !strings.Contains(out.String(), "changed "+PAMPath(root)) {
		t.Errorf("the PAM file was not written before the failure, the test proves nothing:\n%s", out.String())
	}
}

// A setting sshd reads before the drop-in through another Include (which
// the static check does not follow): sshd -T after the change shows it,
// and every file is put back.
func TestInstallRollsBackWhenSSHDDisagrees(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sshd -t needs root")
	}
	root := copyTree(t, "debian12")
	local := filepath.Join(root, "etc/ssh/local.conf")
	testkit.Must(t, os.WriteFile(local, []byte("KbdInteractiveAuthentication no\n"), 0o644))
	testkit.NewSSHD(t, filepath.Join(root, "etc/ssh/sshd_config"),
		"Include "+local+"\nInclude "+filepath.Join(root, "etc/ssh/sshd_config.d")+"/*.conf\n", "")
	before := snapshot(t, root)
	var out bytes.Buffer
	err := Install(Options{Root: root, SSHD: testkit.SSHDBin, Out: &out})
	if err == nil || !strings.Contains(err.Error(), `does not show "kbdinteractiveauthentication yes"`) || !strings.Contains(err.Error(), "every file was put back") {
		t.Fatalf("error = %v\n%s", err, out.String())
	}
	after := snapshot(t, root)
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s not put back", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("files left by the failed install: %d files, was %d", len(after), len(before))
	}
}

// An administrator's own file of the drop-in's name is kept as the backup
// and put back by uninstall-pam.
func TestInstallKeepsForeignDropIn(t *testing.T) {
	root := copyTree(t, "debian12")
	testkit.Must(t, os.MkdirAll(filepath.Dir(DropInPath(root)), 0o755))
	const own = "# mine\nX11Forwarding no\n"
	testkit.Must(t, os.WriteFile(DropInPath(root), []byte(own), 0o644))
	o := Options{Root: root, Out: new(bytes.Buffer)}
	testkit.Must(t, Install(o))
	if testkit.ReadFile(DropInPath(root)+BackupSuffix) != own {
		t.Errorf("the administrator's drop-in was not kept as the backup")
	}
	testkit.Must(t, Uninstall(o))
	if testkit.ReadFile(DropInPath(root)) != own {
		t.Errorf("uninstall-pam did not put the administrator's drop-in back")
	}
	if _, err := os.Stat(DropInPath(root) + BackupSuffix); err == nil {
		t.Errorf("backup left behind")
	}
}

// uninstall-pam where sshd -t fails for a reason of its own (a golden
// image whose host keys were removed, as the README advises): it restores
// anyway and says sshd still fails. It puts every file back when sshd -t
// after the change fails otherwise than before (here an administrator's
// drop-in, kept as the backup, that sshd rejects), whether sshd -t passed
// before or not.
func TestUninstallWithFailingSSHD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sshd -t needs root")
	}
	cases := map[string]struct {
		noHostKey, badBackup bool
		wantErr              string // "": restored
		wantOut              string
	}{
		"host keys removed":             {noHostKey: true, wantOut: "fails as it did before"},
		"restoring breaks sshd":         {badBackup: true, wantErr: "-t after the change: exit status 255"},
		"host keys removed, then worse": {noHostKey: true, badBackup: true, wantErr: "before the change it failed otherwise: Unable to load host key"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := copyTree(t, "debian12")
			dropIns := filepath.Join(root, "etc/ssh/sshd_config.d")
			testkit.Must(t, os.MkdirAll(dropIns, 0o755))
			sshd := testkit.NewSSHD(t, filepath.Join(root, "etc/ssh/sshd_config"), "Include "+dropIns+"/*.conf\n", "")
			if tc.badBackup {
				testkit.Must(t, os.WriteFile(DropInPath(root), []byte("# mine\nX11Forwarding no\n"), 0o644))
			}
			before := snapshot(t, root)
			o := Options{Root: root, SSHD: testkit.SSHDBin, Out: new(bytes.Buffer)}
			testkit.Must(t, Install(o))
			if tc.badBackup {
				testkit.Must(t, os.WriteFile(DropInPath(root)+BackupSuffix, []byte("# mine\nNoSuchKeyword yes\n"), 0o644))
			}
			if tc.noHostKey {
				keys, _ := filepath.Glob(filepath.Join(filepath.Dir(sshd.Config), "host_ed25519*"))
				for _, k := range keys {
					testkit.Must(t, os.Remove(k))
					delete(before, strings.TrimPrefix(k, root))
				}
			}
			installed := snapshot(t, root)
			var out bytes.Buffer
			o.Out = &out
			err := Uninstall(o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "every file was put back") {
					t.Fatalf("error = %v, want one containing %q and a rollback\n%s", err, tc.wantErr, out.String())
				}
				after := snapshot(t, root)
				for p, b := range installed {
					if after[p] != b {
						t.Errorf("%s not put back:\n%s", p, Diff(p, []byte(b), []byte(after[p])))
					}
				}
				if len(after) != len(installed) {
					t.Errorf("%d files after the failed uninstall, %d before", len(after), len(installed))
				}
				return
			}
			if err != nil {
				t.Fatalf("uninstall with sshd -t failing before: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(out.String(), "no hostkeys available") {
				t.Errorf("output does not say sshd -t still fails:\n%s", out.String())
			}
			after := snapshot(t, root)
			for p, b := range before {
				if after[p] != b {
					t.Errorf("%s not restored:\n%s", p, Diff(p, []byte(b), []byte(after[p])))
				}
			}
			if _, err := os.Stat(DropInPath(root)); err == nil {
				t.Errorf("the drop-in is left")
			}
			if strings.Contains(testkit.ReadFile(PAMPath(root)), "latchkey") {
				t.Errorf("the PAM stack still names the helper")
			}
		})
	}
}
