package packaging_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var (
	srv      *vaulttest.Server
	buildDir string // removed by TestMain
	built    struct {
		once sync.Once
		dist string
		err  error
	}
)

func TestMain(m *testing.M) {
	var err error
	if buildDir, err = os.MkdirTemp("", "latchkey-packaging-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := vaulttest.Run(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
	os.RemoveAll(buildDir)
	os.Exit(code)
}

// buildPackages builds both commands and their deb and rpm packages with
// packaging/build.sh (as `make package` does), once per test binary, with
// VERSION v1.2.3-4-gabcdef; it returns the dist directory.
func buildPackages(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		root, err := vaulttest.RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		// Built as `make build` builds them: static and stripped.
		bin := filepath.Join(buildDir, "bin")
		mk := exec.Command("make", "-s", "build", "BIN="+bin)
		mk.Dir = root
		if out, err := mk.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("make build: %v\n%s", err, out)
			return
		}
		dist := filepath.Join(buildDir, "dist")
		cmd := exec.Command("./packaging/build.sh")
		cmd.Dir = root
		// nfpm is kept between runs: installing it is the slow part.
		cmd.Env = append(os.Environ(), "VERSION=v1.2.3-4-gabcdef", "BIN="+bin, "DIST="+dist,
			"NFPM="+filepath.Join(root, "bin", "nfpm"))
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("packaging/build.sh: %v\n%s", err, out)
			return
		}
		built.dist = dist
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dist
}

// Everything a person does on a stock Debian host, with the packages
// themselves: install both debs (the next steps are printed), install-pam
// with the installed binary, the config in place, doctor all OK, an OTP
// login through a real sshd, doctor on a broken set-up, and a purge that
// leaves nothing behind. sshd's stack is a copy of this host's real
// /etc/pam.d/sshd (-root), so the machine's own sshd is never touched.
func TestDebInstallLoginPurge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installs packages: needs root (CI runs as root)")
	}
	for _, pkg := range []string{"latchkey-ssh-helper", "latchkey-agent"} {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output(); strings.Contains(string(out), "installed") {
			t.Skipf("%s is installed on this machine: not replacing it", pkg)
		}
	}
	dist := buildPackages(t)
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 2 {
		t.Fatalf("debs: %v", debs)
	}
	t.Cleanup(func() { exec.Command("dpkg", "-P", "latchkey-ssh-helper", "latchkey-agent").Run() })
	out, err := exec.Command("dpkg", append([]string{"-i"}, debs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	for _, want := range []string{"latchkey-ssh-helper installed; sshd is unchanged. Next steps:", "latchkey-ssh-helper install-pam", "latchkey-agent installed. Next steps:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dpkg -i output lacks %q:\n%s", want, out)
		}
	}
	modes := map[string]os.FileMode{
		"/usr/sbin/latchkey-ssh-helper":              0o755,
		"/usr/sbin/latchkey-agent":                   0o755,
		"/etc/latchkey-ssh-helper.d/config.hcl":      0o644,
		"/etc/latchkey/agent.hcl":                    0o640,
		"/var/lib/latchkey":                          0o700 | os.ModeDir,
		"/lib/systemd/system/latchkey-agent.service": 0o644,
	}
	for p, m := range modes {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != m {
			t.Errorf("%s: %v, want mode %v (%v)", p, fi.Mode(), m, err)
		}
	}
	if out, err := exec.Command("man", "-P", "cat", "latchkey-ssh-helper").CombinedOutput(); err == nil && !strings.Contains(string(out), "install-pam") {
		t.Errorf("the man page lacks install-pam:\n%s", out)
	}
	// The installed unit: systemd's own check, and its exposure figure.
	if out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/latchkey-agent.service").CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	t.Logf("installed unit: exposure %.1f", exposure(t, "/lib/systemd/system/latchkey-agent.service"))
	if out, err := exec.Command("/usr/sbin/latchkey-agent", "validate", "-config", "/etc/latchkey/agent.hcl").CombinedOutput(); err != nil {
		t.Errorf("latchkey-agent validate on the shipped config: %v\n%s", err, out)
	}

	// sshd's files: a copy of this host's stack, a test sshd_config whose
	// main part says KbdInteractiveAuthentication no as Debian's does.
	root := t.TempDir()
	testkit.Must(t, os.Chmod(root, 0o755))
	pamFile := filepath.Join(root, "etc/pam.d/sshd")
	testkit.Must(t, os.MkdirAll(filepath.Dir(pamFile), 0o755))
	testkit.Must(t, os.WriteFile(pamFile, []byte(testkit.ReadFile("/etc/pam.d/sshd")), 0o644))
	dropIns := filepath.Join(root, "etc/ssh/sshd_config.d")
	testkit.Must(t, os.MkdirAll(dropIns, 0o755))
	b := make([]byte, 3)
	rand.Read(b)
	user := "lkpkg" + hex.EncodeToString(b)
	testkit.AddUser(t, user)
	sshd := testkit.NewSSHD(t, filepath.Join(root, "etc/ssh/sshd_config"), "Include "+dropIns+"/*.conf\n",
		"KbdInteractiveAuthentication no\nUsePAM yes\nPubkeyAuthentication no\nPermitRootLogin no\nAllowUsers "+user+"\n")
	helper := func(args ...string) (int, string) {
		out, err := exec.Command("/usr/sbin/latchkey-ssh-helper", args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		testkit.Must(t, err)
		return 0, string(out)
	}
	if code, out := helper("install-pam", "-root", root, "-sshd", testkit.SSHDBin); code != 0 {
		t.Fatalf("install-pam: exit %d\n%s", code, out)
	}
	if s := testkit.ReadFile(pamFile); !strings.Contains(s, "pam_exec.so quiet expose_authtok /usr/sbin/latchkey-ssh-helper -config=/etc/latchkey-ssh-helper.d/config.hcl\n") {
		t.Fatalf("installed stack:\n%s", s)
	}

	srv.MountT(t, "ssh", &api.MountInput{Type: "ssh"})
	_, err = srv.Client.Logical().Write("ssh/roles/web", map[string]any{
		"key_type": "otp", "default_user": user, "allowed_users": user, "cidr_list": "127.0.0.0/8",
	})
	testkit.Must(t, err)
	audit := filepath.Join(root, "audit.log")
	config := fmt.Sprintf("vault_addr = %q\nca_cert = %q\nallowed_roles = \"web\"\ntimeout = \"5s\"\naudit = \"off\"\naudit_file = %q\n", srv.Addr, srv.CACert, audit)
	testkit.Must(t, os.WriteFile("/etc/latchkey-ssh-helper.d/config.hcl", []byte(config), 0o644))
	doctor := []string{"doctor", "-pam-file", pamFile, "-sshd-config", sshd.Config}
	if code, out := helper(doctor...); code != 0 || strings.Contains(out, "FAIL") || strings.Contains(out, "WARN") {
		t.Errorf("doctor after install: exit %d\n%s", code, out)
	}

	service := "latchkey-pkg-" + hex.EncodeToString(b)
	testkit.Must(t, os.WriteFile("/etc/pam.d/"+service, []byte(testkit.ReadFile(pamFile)), 0o644))
	t.Cleanup(func() { os.Remove("/etc/pam.d/" + service) })
	sshd.Start(t, service)
	s, err := srv.Client.Logical().Write("ssh/creds/web", map[string]any{"ip": "127.0.0.1", "username": user})
	testkit.Must(t, err)
	if got, err := testkit.SSHLogin(sshd.Addr, user, s.Data["key"].(string)); err != nil || got != user {
		t.Fatalf("OTP login with the installed package: %q, %v\naudit: %s", got, err, testkit.ReadFile(audit))
	}

	// Broken: a config others may rewrite.
	testkit.Must(t, os.Chmod("/etc/latchkey-ssh-helper.d/config.hcl", 0o666))
	if code, out := helper(doctor...); code != 1 || !strings.Contains(out, "FAIL config:") || !strings.Contains(out, "chmod 0644") {
		t.Errorf("doctor with a world-writable config: exit %d\n%s", code, out)
	}

	// Remove: the unit the image builder enabled is disabled (no dangling
	// multi-user.target.wants link; no systemd runs here, systemctl only
	// makes and removes the link), the state is kept.
	wants := "/etc/systemd/system/multi-user.target.wants/latchkey-agent.service"
	t.Cleanup(func() { os.Remove(wants) })
	if out, err := exec.Command("systemctl", "enable", "latchkey-agent.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable: %v\n%s", err, out)
	}
	if _, err := os.Lstat(wants); err != nil {
		t.Fatalf("systemctl enable made no link: %v", err)
	}
	testkit.Must(t, os.WriteFile("/var/lib/latchkey/aws-nonce", []byte("n"), 0o600))
	if out, err := exec.Command("dpkg", "-r", "latchkey-agent").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	if _, err := os.Lstat(wants); err == nil {
		t.Errorf("%s left after remove", wants)
	}
	if _, err := os.Stat("/var/lib/latchkey/aws-nonce"); err != nil {
		t.Errorf("a plain remove dropped the state: %v", err)
	}
	// Reinstalled after the removal (dpkg passes the old version, as on an
	// upgrade): the removal disabled the service, so the next steps again.
	var agentDeb string
	for _, d := range debs {
		if strings.Contains(filepath.Base(d), "latchkey-agent") {
			agentDeb = d
		}
	}
	if out, err := exec.Command("dpkg", "-i", agentDeb).CombinedOutput(); err != nil || !strings.Contains(string(out), "latchkey-agent installed. Next steps:") {
		t.Errorf("dpkg -i after dpkg -r: %v, no next steps:\n%s", err, out)
	}

	// Purge: no file of either package, no state, no directory left.
	if out, err := exec.Command("dpkg", "-P", "latchkey-ssh-helper", "latchkey-agent").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -P: %v\n%s", err, out)
	}
	for _, p := range []string{
		"/usr/sbin/latchkey-ssh-helper", "/usr/sbin/latchkey-agent", "/etc/latchkey-ssh-helper.d", "/etc/latchkey",
		"/var/lib/latchkey", "/usr/share/latchkey-ssh-helper", "/usr/share/doc/latchkey-ssh-helper", "/usr/share/doc/latchkey-agent",
		"/usr/share/man/man8/latchkey-ssh-helper.8.gz", "/usr/share/man/man8/latchkey-agent.8.gz",
		"/lib/systemd/system/latchkey-agent.service", "/usr/share/lintian/overrides/latchkey-agent", wants,
	} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left after purge", p)
		}
	}
}

// The man pages say what -help says: every line of each usage text is in
// the packaged page (roff escapes undone).
func TestManPagesFromHelp(t *testing.T) {
	dist := buildPackages(t)
	bin := filepath.Join(buildDir, "bin")
	helps := map[string][][]string{
		"latchkey-ssh-helper": {{"-help"}, {"install-pam", "-help"}, {"doctor", "-help"}},
		"latchkey-agent":      {{"-help"}},
	}
	for name, cmds := range helps {
		debs, _ := filepath.Glob(filepath.Join(dist, name+"_*.deb"))
		if len(debs) != 1 {
			t.Fatalf("%s: debs %v", name, debs)
		}
		x := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-x", debs[0], x).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
		page, err := exec.Command("gzip", "-dc", filepath.Join(x, "usr/share/man/man8", name+".8.gz")).Output()
		testkit.Must(t, err)
		text := strings.NewReplacer(`\e`, `\`, "\n\\&", "\n").Replace(string(page))
		for _, args := range cmds {
			help, _ := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
			if len(help) < 100 {
				t.Fatalf("%s %v printed no usage: %q", name, args, help)
			}
			for _, l := range strings.Split(string(help), "\n") {
				if strings.TrimSpace(l) != "" && !strings.Contains(text, l+"\n") {
					t.Errorf("the man page of %s lacks the -help line %q", name, l)
				}
			}
		}
	}
}

// The agent's man page (its -help) names every exit code the agent has
// (the exit* constants of cmd/latchkey-agent/cli.go): an operator reading
// "status=6/NOTCONFIGURED" in the journal finds it there.
func TestManPageExitCodes(t *testing.T) {
	dist := buildPackages(t)
	root, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	codes := regexp.MustCompile(`(?m)^\s*exit\w+\s*=\s*(\d+)\b`).FindAllStringSubmatch(testkit.ReadFile(filepath.Join(root, "cmd/latchkey-agent/cli.go")), -1)
	if len(codes) < 7 {
		t.Fatalf("exit codes in cli.go: %v", codes)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "latchkey-agent_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("debs %v", debs)
	}
	x := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	page, err := exec.Command("gzip", "-dc", filepath.Join(x, "usr/share/man/man8/latchkey-agent.8.gz")).Output()
	testkit.Must(t, err)
	_, exits, ok := strings.Cut(string(page), "Exit codes:")
	if !ok {
		t.Fatalf("the man page has no exit codes:\n%s", page)
	}
	exits = strings.Join(strings.Fields(exits), " ")
	for _, c := range codes {
		if !regexp.MustCompile(`(^|, )` + c[1] + ` `).MatchString(exits) {
			t.Errorf("the man page's exit codes lack %s: %q", c[1], exits)
		}
	}
}

// The helper's pre-removal script, deb's and rpm's, run as dpkg and rpm run
// them, with the built helper and a real sshd -t, in a mount namespace
// whose /etc/pam.d and /etc/ssh are a copy of this host's PAM stack and a
// test sshd_config (the machine's own are never touched). On a golden image
// whose host keys were removed (sshd -t fails for that reason alone) it
// restores the stack and says so; when uninstall-pam fails it says what is
// left and what to run and fails, so that the package, whose binary the
// PAM line names, stays installed; so it does when the binary was deleted
// by hand before the removal (the package's reinstall brings it back).
func TestHelperPreremove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts in a private mount namespace and runs sshd -t: needs root (CI runs as root)")
	}
	repo, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	bin := t.TempDir()
	_, err = testbin.Build(bin, "./cmd/latchkey-ssh-helper")
	testkit.Must(t, err)
	for _, format := range []struct{ name, arg string }{{"deb", "remove"}, {"rpm", "0"}} {
		// No '=' or blank in a case's name: the temp dir's name goes into sshd_config.
		for _, c := range []string{"golden-image", "uninstall-pam-fails", "binary-gone"} {
			uninstallFails, binaryGone := c == "uninstall-pam-fails", c == "binary-gone"
			t.Run(format.name+"/"+c, func(t *testing.T) {
				root := t.TempDir()
				testkit.Must(t, os.Chmod(root, 0o755))
				pamFile := filepath.Join(root, "etc/pam.d/sshd")
				testkit.Must(t, os.MkdirAll(filepath.Dir(pamFile), 0o755))
				orig := testkit.ReadFile("/etc/pam.d/sshd")
				testkit.Must(t, os.WriteFile(pamFile, []byte(orig), 0o644))
				dropIns := filepath.Join(root, "etc/ssh/sshd_config.d")
				testkit.Must(t, os.MkdirAll(dropIns, 0o755))
				// An absolute Include of the copy: the same directory
				// under -root here and as /etc/ssh in the namespace.
				sshd := testkit.NewSSHD(t, filepath.Join(root, "etc/ssh/sshd_config"), "Include "+dropIns+"/*.conf\n", "")
				dropIn := filepath.Join(dropIns, "50-latchkey.conf")
				if uninstallFails {
					// The administrator's own drop-in of that name, kept as
					// the backup; broken afterwards, so that restoring it
					// would break sshd and uninstall-pam puts everything back.
					testkit.Must(t, os.WriteFile(dropIn, []byte("# mine\nX11Forwarding no\n"), 0o644))
				}
				out, err := exec.Command(filepath.Join(bin, "latchkey-ssh-helper"), "install-pam", "-root", root, "-sshd", testkit.SSHDBin).CombinedOutput()
				if err != nil {
					t.Fatalf("install-pam: %v\n%s", err, out)
				}
				if uninstallFails {
					testkit.Must(t, os.WriteFile(dropIn+".latchkey-bak", []byte("# mine\nNoSuchKeyword yes\n"), 0o644))
				} else {
					// A golden image: host keys removed, sshd -t fails.
					keys, _ := filepath.Glob(filepath.Join(filepath.Dir(sshd.Config), "host_ed25519*"))
					for _, k := range keys {
						testkit.Must(t, os.Remove(k))
					}
				}
				installedPAM, installedDropIn := testkit.ReadFile(pamFile), testkit.ReadFile(dropIn)

				script := filepath.Join(repo, "packaging/scripts", format.name, "ssh-helper-preremove.sh")
				cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec",
					`mount --bind "$1/etc/pam.d" /etc/pam.d; mount --bind "$1/etc/ssh" /etc/ssh; exec sh "$2" "$3"`,
					"sh", root, script, format.arg)
				cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
				if binaryGone {
					// The PATH dpkg and rpm give their scripts, without the helper.
					cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
				}
				out, err = cmd.CombinedOutput()
				if binaryGone {
					reinstall := map[string]string{"deb": "apt-get install --reinstall latchkey-ssh-helper", "rpm": "dnf reinstall latchkey-ssh-helper"}[format.name]
					if err == nil {
						t.Fatalf("prerm %s succeeded although the binary is gone and its PAM line is not:\n%s", format.arg, out)
					}
					for _, want := range []string{
						"the binary is gone", "the package is not removed",
						"/etc/pam.d/sshd still runs latchkey-ssh-helper", "/etc/ssh/sshd_config.d/50-latchkey.conf is still in place",
						"Reinstall the package (" + reinstall + "), then remove it again",
					} {
						if !strings.Contains(string(out), want) {
							t.Errorf("prerm output lacks %q:\n%s", want, out)
						}
					}
					if testkit.ReadFile(pamFile) != installedPAM || testkit.ReadFile(dropIn) != installedDropIn {
						t.Errorf("prerm changed the files")
					}
					return
				}
				if !uninstallFails {
					if err != nil || !strings.Contains(string(out), "sshd's PAM stack restored") {
						t.Fatalf("prerm %s: %v\n%s", format.arg, err, out)
					}
					if got := testkit.ReadFile(pamFile); got != orig {
						t.Errorf("the PAM stack is not the original:\n%s", got)
					}
					if _, err := os.Stat(dropIn); err == nil {
						t.Errorf("the drop-in is left")
					}
					return
				}
				if err == nil {
					t.Fatalf("prerm %s succeeded although uninstall-pam failed:\n%s", format.arg, out)
				}
				for _, want := range []string{
					"uninstall-pam failed", "the package is not removed",
					"/etc/pam.d/sshd still runs latchkey-ssh-helper", "/etc/ssh/sshd_config.d/50-latchkey.conf is still in place",
					"run `latchkey-ssh-helper uninstall-pam`",
				} {
					if !strings.Contains(string(out), want) {
						t.Errorf("prerm output lacks %q:\n%s", want, out)
					}
				}
				if strings.Contains(string(out), "restored") {
					t.Errorf("prerm says restored although it failed:\n%s", out)
				}
				if testkit.ReadFile(pamFile) != installedPAM || testkit.ReadFile(dropIn) != installedDropIn {
					t.Errorf("a failed uninstall-pam changed the files")
				}
			})
		}
	}
}
