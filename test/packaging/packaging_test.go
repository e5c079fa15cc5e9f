// Package packaging_test builds the deb and rpm packages with
// packaging/build.sh (as `make package` does) and checks what a golden image
// gets from them: paths, modes, conffiles and maintainer scripts.
package packaging_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/pam"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// entry is one line of `dpkg-deb -c`: mode string and path.
type entry struct{ mode, path string }

func TestPackages(t *testing.T) {
	dist := buildPackages(t)

	tests := map[string]struct {
		deb, rpm  string
		want      []entry
		conffiles []string
		scripts   []string
		// rpmScripts are the rpm's scriptlets, as rpm -qp --scripts names them.
		rpmScripts []string
	}{
		"ssh-helper": {
			deb: "latchkey-ssh-helper_1.2.3+4.gabcdef_amd64.deb",
			rpm: "latchkey-ssh-helper-1.2.3+4.gabcdef-1.x86_64.rpm",
			want: []entry{
				{"-rwxr-xr-x", "./usr/sbin/latchkey-ssh-helper"},
				{"-rw-r--r--", "./etc/latchkey-ssh-helper.d/config.hcl"},
				{"-rw-r--r--", "./usr/share/latchkey-ssh-helper/pam.d-sshd"},
				{"-rw-r--r--", "./usr/share/doc/latchkey-ssh-helper/copyright"},
				{"-rw-r--r--", "./usr/share/doc/latchkey-ssh-helper/changelog.gz"},
				{"-rw-r--r--", "./usr/share/man/man8/latchkey-ssh-helper.8.gz"},
			},
			conffiles:  []string{"/etc/latchkey-ssh-helper.d/config.hcl"},
			scripts:    []string{"postinst", "prerm", "postrm"},
			rpmScripts: []string{"postinstall", "preuninstall"},
		},
		"agent": {
			deb: "latchkey-agent_1.2.3+4.gabcdef_amd64.deb",
			rpm: "latchkey-agent-1.2.3+4.gabcdef-1.x86_64.rpm",
			want: []entry{
				{"-rwxr-xr-x", "./usr/sbin/latchkey-agent"},
				{"-rw-r--r--", "./lib/systemd/system/latchkey-agent.service"},
				{"-rw-r-----", "./etc/latchkey/agent.hcl"},
				{"drwx------", "./var/lib/latchkey/"},
				{"-rw-r--r--", "./usr/share/doc/latchkey-agent/copyright"},
				{"-rw-r--r--", "./usr/share/doc/latchkey-agent/changelog.gz"},
				{"-rw-r--r--", "./usr/share/man/man8/latchkey-agent.8.gz"},
				{"-rw-r--r--", "./usr/share/lintian/overrides/latchkey-agent"},
			},
			conffiles:  []string{"/etc/latchkey/agent.hcl"},
			scripts:    []string{"postinst", "prerm", "postrm"},
			rpmScripts: []string{"postinstall", "preuninstall", "postuninstall"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			deb := filepath.Join(dist, tc.deb)
			if fi, err := os.Stat(filepath.Join(dist, tc.rpm)); err != nil || fi.Size() == 0 {
				t.Errorf("rpm %s missing or empty: %v", tc.rpm, err)
			}
			checkRPMOwnsDirs(t, filepath.Join(dist, tc.rpm))
			checkRPMScripts(t, filepath.Join(dist, tc.rpm), tc.rpmScripts)
			out, err := exec.Command("dpkg-deb", "-c", deb).CombinedOutput()
			if err != nil {
				t.Fatalf("dpkg-deb -c %s: %v\n%s", deb, err, out)
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				if len(f) >= 6 {
					got[f[len(f)-1]] = f[0]
				}
			}
			for _, w := range tc.want {
				if m, ok := got[w.path]; !ok {
					t.Errorf("%s: no %s in\n%s", tc.deb, w.path, out)
				} else if m != w.mode {
					t.Errorf("%s: %s has mode %s, want %s", tc.deb, w.path, m, w.mode)
				}
			}
			ctl := t.TempDir()
			if out, err := exec.Command("dpkg-deb", "-e", deb, ctl).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
			}
			conf, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if g, w := strings.Fields(string(conf)), tc.conffiles; strings.Join(g, " ") != strings.Join(w, " ") {
				t.Errorf("%s: conffiles %q, want %q", tc.deb, g, w)
			}
			for _, s := range tc.scripts {
				p := filepath.Join(ctl, s)
				if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
					t.Errorf("%s: %s: %v\n%s", tc.deb, s, err, out)
				}
			}
			// Lintian clean but for the static Go binary (by design).
			// Its MLDBM caches go to TMPDIR and stay there: give it the test's.
			lint := exec.Command("lintian", "--tag-display-limit", "0", deb)
			lint.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			out, err = lint.CombinedOutput()
			// lintian exits non-zero when it reports a tag: the tags are checked below.
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatalf("lintian %s: %v", tc.deb, err)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if l != "" && !strings.Contains(l, "statically-linked-binary") && !strings.Contains(l, "running with root privileges") {
					t.Errorf("lintian %s: %s", tc.deb, l)
				}
			}
		})
	}
}

// The example configs the packages install must load as they are.
func TestExampleConfigsLoad(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pam.LoadConfig(filepath.Join(root, "packaging/ssh-helper/config.hcl"))
	if err != nil {
		t.Fatalf("ssh-helper example: %v", err)
	}
	if err := c.CheckSchemes(false); err != nil {
		t.Errorf("ssh-helper example needs -dev: %v", err)
	}
	ac, err := config.Load(filepath.Join(root, "packaging/agent/agent.hcl"))
	if err != nil {
		t.Fatalf("agent example: %v", err)
	}
	if _, err := methods.New(ac.AutoAuth.Method, auth.Env{StateDir: t.TempDir(), Logger: zap.NewNop(), Getenv: func(string) string { return "" }}); err != nil {
		t.Fatalf("agent example method: %v", err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "systemd/latchkey-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecStart=/usr/sbin/latchkey-agent -config /etc/latchkey/agent.hcl", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectoryMode=0700"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// checkRPMOwnsDirs fails the test when a file of the rpm sits in a
// directory that neither the rpm nor the base system owns: rpm -e would
// leave it behind.
func checkRPMOwnsDirs(t *testing.T, rpm string) {
	t.Helper()
	out, err := exec.Command("rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", rpm).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp %s (package rpm): %v\n%s", rpm, err, out)
	}
	owned := map[string]bool{}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		mode, p, _ := strings.Cut(l, " ")
		if strings.HasPrefix(mode, "d") {
			owned[p] = true
		}
		files = append(files, p)
	}
	system := map[string]bool{"/": true, "/etc": true, "/usr/sbin": true, "/usr/share/doc": true, "/usr/share/man/man8": true,
		"/usr/lib/systemd/system": true, "/var/lib": true, "/usr/share": true}
	for _, f := range files {
		if d := filepath.Dir(f); !owned[d] && !system[d] {
			t.Errorf("%s: %s is in %s, which the rpm does not own", filepath.Base(rpm), f, d)
		}
	}
}

// checkRPMScripts fails the test unless the rpm has exactly the scriptlets
// want (postinstall, preuninstall, postuninstall...), each passing sh -n.
func checkRPMScripts(t *testing.T, rpm string, want []string) {
	t.Helper()
	out, err := exec.Command("rpm", "-qp", "--scripts", rpm).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp --scripts %s: %v\n%s", rpm, err, out)
	}
	head := regexp.MustCompile(`(?m)^(\w+) scriptlet \(using /bin/sh\):\n`)
	heads := head.FindAllStringSubmatchIndex(string(out), -1)
	var got []string
	for i, h := range heads {
		name := string(out[h[2]:h[3]])
		end := len(out)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		got = append(got, name)
		sh := exec.Command("sh", "-n")
		sh.Stdin = strings.NewReader(string(out[h[1]:end]))
		if o, err := sh.CombinedOutput(); err != nil {
			t.Errorf("%s: %s scriptlet: %v\n%s", filepath.Base(rpm), name, err, o)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: scriptlets %q, want %q", filepath.Base(rpm), got, want)
	}
}

// deb's and rpm's maintainer scripts behave alike: each prints the same
// next steps (the README says installing prints them; but for sshd's unit
// name, ssh on Debian) on a first install, a reinstall and an upgrade alike
// while the package is not put to use — the helper not in sshd's PAM stack,
// the agent's service not enabled (no systemd runs here; under a real one,
// TestAgentPostinstallUpgradeRestarts checks that an upgrade of an enabled
// agent prints nothing) — and nothing once the helper is in the stack; each
// format has a script for every step of the other. dpkg passes "configure"
// and the old version ("" on a first install, the last one on a reinstall
// after a removal as on an upgrade), rpm the count of installs after the
// step (1 first, 2 upgrade). The helper's scripts run in a mount namespace
// whose /etc/pam.d is a test copy.
func TestScriptParity(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here: the scripts would reload it")
	}
	pamDir := t.TempDir()
	run := func(script string, args ...string) string {
		t.Helper()
		cmd := exec.Command("sh", append([]string{filepath.Join(root, "packaging/scripts", script)}, args...)...)
		if strings.Contains(script, "ssh-helper") {
			cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-ec",
				`mount --bind "$1" /etc/pam.d; shift; exec sh "$@"`, "sh", pamDir, filepath.Join(root, "packaging/scripts", script)}, args...)...)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, out)
		}
		return string(out)
	}
	stock := testkit.ReadFile("/etc/pam.d/sshd")
	installed := "# latchkey-ssh-helper install-pam: begin (uninstall-pam restores the line below)\n#-@include common-auth\n" +
		"auth [success=done default=ignore] pam_exec.so quiet expose_authtok /usr/sbin/latchkey-ssh-helper -config=/etc/latchkey-ssh-helper.d/config.hcl\n" +
		"# latchkey-ssh-helper install-pam: end\n"
	for _, tc := range []struct {
		pkg, pam  string
		wantSteps bool
	}{
		{"agent", stock, true},
		{"ssh-helper", stock, true},
		{"ssh-helper", installed + stock, false},
	} {
		if tc.pkg == "ssh-helper" && os.Geteuid() != 0 {
			t.Log("the helper's scripts: not run (they mount a test /etc/pam.d in a private mount namespace: needs root; CI runs as root)")
			continue
		}
		testkit.Must(t, os.WriteFile(filepath.Join(pamDir, "sshd"), []byte(tc.pam), 0o644))
		deb := run("deb/"+tc.pkg+"-postinstall.sh", "configure", "")
		rpm := run("rpm/"+tc.pkg+"-postinstall.sh", "1")
		if !tc.wantSteps {
			if out := deb + rpm + run("deb/"+tc.pkg+"-postinstall.sh", "configure", "1.0.0") + run("rpm/"+tc.pkg+"-postinstall.sh", "2"); out != "" {
				t.Errorf("%s in sshd's PAM stack: installing prints %q", tc.pkg, out)
			}
			continue
		}
		if !strings.Contains(deb, "Next steps:") {
			t.Errorf("deb %s postinst prints no next steps:\n%s", tc.pkg, deb)
		}
		if strings.ReplaceAll(rpm, "systemctl reload sshd", "systemctl reload ssh") != deb {
			t.Errorf("%s: rpm's first install prints\n%s\ndeb's\n%s", tc.pkg, rpm, deb)
		}
		// dpkg's reinstall after a removal and its upgrade look alike.
		if again := run("deb/"+tc.pkg+"-postinstall.sh", "configure", "1.0.0"); again != deb {
			t.Errorf("deb %s: a reinstall or upgrade of a package not put to use prints\n%s\nthe first install\n%s", tc.pkg, again, deb)
		}
		if again := run("rpm/"+tc.pkg+"-postinstall.sh", "2"); again != rpm {
			t.Errorf("rpm %s: an upgrade of a package not put to use prints\n%s\nthe first install\n%s", tc.pkg, again, rpm)
		}
	}
	// Both formats stop, disable and forget the agent on removal.
	for _, s := range []struct{ script, want string }{
		{"deb/agent-preremove.sh", "disable latchkey-agent.service"}, {"rpm/agent-preremove.sh", "disable latchkey-agent.service"},
		{"deb/agent-postremove.sh", "daemon-reload"}, {"rpm/agent-postremove.sh", "daemon-reload"},
	} {
		if !strings.Contains(testkit.ReadFile(filepath.Join(root, "packaging/scripts", s.script)), s.want) {
			t.Errorf("%s lacks %q", s.script, s.want)
		}
	}
}
