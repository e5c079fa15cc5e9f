// Package install_test proves the deployment path on this host's own, stock
// Debian files: `latchkey-ssh-helper install-pam` edits a copy of the
// host's real /etc/pam.d/sshd (every account and session line kept:
// pam_nologin, pam_loginuid, pam_limits, ...) and writes the sshd drop-in
// that overrides the main config's `KbdInteractiveAuthentication no`; a real
// sshd then runs with that stack and a user logs in with a Vault OTP;
// `doctor` reports on the result; uninstall-pam restores the files.
//
// It needs root (sshd, useradd, /etc/pam.d); it never touches the system's
// sshd config or /etc/pam.d/sshd.
package install_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var (
	srv    *vaulttest.Server
	helper string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "test/e2e/install: SKIPPED: needs root (sshd, useradd, /etc/pam.d); CI runs it as root")
		os.Exit(0)
	}
	for _, p := range []string{testkit.SSHDBin, "/etc/pam.d/sshd", "/etc/pam.d/common-auth"} {
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintf(os.Stderr, "test/e2e/install: %s missing: run `make deps` as root (installs openssh-server)\n", p)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "latchkey-e2e-install-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The helper runs as root from sshd; its directory must be traversable.
	os.Chmod(dir, 0o755)
	bins, err := testbin.Build(dir, "./cmd/latchkey-ssh-helper")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	helper = bins[0]
	code := vaulttest.Run(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
	os.RemoveAll(dir)
	os.Exit(code)
}

// runHelper runs the built helper and returns its exit code and output.
func runHelper(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(helper, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	testkit.ScanOutput(t, cmd)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	testkit.Must(t, err)
	return 0, out.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func TestInstallPAMThenOTPLogin(t *testing.T) {
	root := t.TempDir()
	testkit.Must(t, os.Chmod(root, 0o755))
	pamFile := filepath.Join(root, "etc/pam.d/sshd")
	testkit.Must(t, os.MkdirAll(filepath.Dir(pamFile), 0o755))
	stock, err := os.ReadFile("/etc/pam.d/sshd")
	testkit.Must(t, err)
	testkit.Must(t, os.WriteFile(pamFile, stock, 0o644))
	dropIns := filepath.Join(root, "etc/ssh/sshd_config.d")
	testkit.Must(t, os.MkdirAll(dropIns, 0o755))
	suffix := randHex(3)
	user := "lkinst" + suffix
	testkit.AddUser(t, user)
	// Debian's main config says KbdInteractiveAuthentication no after its
	// Include line: the drop-in must win.
	sshd := testkit.NewSSHD(t, filepath.Join(root, "etc/ssh/sshd_config"),
		"Include "+dropIns+"/*.conf\n",
		"KbdInteractiveAuthentication no\nUsePAM yes\nPubkeyAuthentication no\nPermitRootLogin no\nAllowUsers "+user+"\n")
	config := filepath.Join(root, "etc/latchkey-ssh-helper.d/config.hcl")
	audit := filepath.Join(root, "audit.log")

	code, out := runHelper(t, "install-pam", "-root", root, "-sshd", testkit.SSHDBin, "-helper", helper, "-config", config, "-dry-run")
	if code != 0 || !strings.Contains(out, "-@include common-auth") || testkit.ReadFile(pamFile) != string(stock) {
		t.Fatalf("install-pam -dry-run: exit %d:\n%s", code, out)
	}
	code, out = runHelper(t, "install-pam", "-root", root, "-sshd", testkit.SSHDBin, "-helper", helper, "-config", config)
	if code != 0 || !strings.Contains(out, "sshd -t after the change: ok") {
		t.Fatalf("install-pam: exit %d:\n%s", code, out)
	}
	t.Logf("install-pam:\n%s", out)
	effective, err := exec.Command(testkit.SSHDBin, "-T", "-f", sshd.Config).CombinedOutput()
	testkit.Must(t, err)
	for _, want := range []string{"usepam yes", "kbdinteractiveauthentication yes", "passwordauthentication no"} {
		if !strings.Contains(string(effective), "\n"+want+"\n") {
			t.Errorf("sshd -T does not show %q after install-pam", want)
		}
	}

	// The edited stack goes in as a PAM service of its own.
	service := "latchkey-e2e-install-" + suffix
	testkit.Must(t, os.WriteFile("/etc/pam.d/"+service, []byte(testkit.ReadFile(pamFile)), 0o644))
	t.Cleanup(func() { os.Remove("/etc/pam.d/" + service) })

	srv.MountT(t, "ssh", &api.MountInput{Type: "ssh"})
	_, err = srv.Client.Logical().Write("ssh/roles/web", map[string]any{
		"key_type": "otp", "default_user": user, "allowed_users": user, "cidr_list": "127.0.0.0/8",
	})
	testkit.Must(t, err)
	testkit.Must(t, os.MkdirAll(filepath.Dir(config), 0o755))
	testkit.Must(t, os.WriteFile(config, []byte(fmt.Sprintf(`vault_addr = %q
ca_cert = %q
ssh_mount_point = "ssh"
allowed_roles = "web"
timeout = "5s"
audit = "off"
audit_file = %q
`, srv.Addr, srv.CACert, audit)), 0o644))
	sshd.Start(t, service)

	issue := func() string {
		s, err := srv.Client.Logical().Write("ssh/creds/web", map[string]any{"ip": "127.0.0.1", "username": user})
		testkit.Must(t, err)
		return s.Data["key"].(string)
	}
	otp := issue()
	if got, err := testkit.SSHLogin(sshd.Addr, user, otp); err != nil || got != user {
		t.Fatalf("OTP login through the installed stack: output %q, error %v\naudit:\n%s", got, err, testkit.ReadFile(audit))
	}
	if _, err := testkit.SSHLogin(sshd.Addr, user, otp); err == nil {
		t.Errorf("the same OTP logged in twice")
	}
	if a := testkit.ReadFile(audit); strings.Count(a, `"result":"success"`) != 1 || strings.Contains(a, otp) {
		t.Errorf("audit file: want one success and no OTP, got:\n%s", a)
	}

	// doctor on the good set-up: every check OK.
	doctorArgs := []string{"doctor", "-pam-file", pamFile, "-sshd-config", sshd.Config, "-config", config}
	code, out = runHelper(t, doctorArgs...)
	if code != 0 || strings.Contains(out, "FAIL") || strings.Contains(out, "WARN") || strings.Count(out, "OK ") < 6 {
		t.Errorf("doctor on a good set-up: exit %d:\n%s", code, out)
	}
	t.Logf("doctor:\n%s", out)
	// And on broken ones: each FAIL names the problem and the fix.
	good := testkit.ReadFile(config)
	broken := map[string]struct {
		config string
		want   []string
	}{
		"http without -dev": {strings.Replace(good, "https://", "http://", 1), []string{"FAIL vault address scheme", "http:// is refused without -dev", "add -dev to the PAM line"}},
		"missing mount":     {strings.Replace(good, `ssh_mount_point = "ssh"`, `ssh_mount_point = "no-such-mount"`, 1), []string{"FAIL vault", "mount that does not exist", "vault secrets enable -path=no-such-mount ssh"}},
		"no roles":          {strings.Replace(good, `allowed_roles = "web"`, `allowed_roles = ""`, 1), []string{"FAIL allowed roles"}},
		"unknown key":       {good + "allowed_role = \"web\"\n", []string{"FAIL config", `unknown key "allowed_role"`}},
	}
	for name, tc := range broken {
		testkit.Must(t, os.WriteFile(config, []byte(tc.config), 0o644))
		code, out := runHelper(t, doctorArgs...)
		for _, w := range tc.want {
			if code != 1 || !strings.Contains(out, w) {
				t.Errorf("doctor, %s: exit %d, want 1 and %q in:\n%s", name, code, w, out)
			}
		}
	}
	testkit.Must(t, os.WriteFile(config, []byte(good), 0o644))
	dropIn := filepath.Join(dropIns, "50-latchkey.conf")
	dropInText := testkit.ReadFile(dropIn)
	testkit.Must(t, os.Remove(dropIn))
	code, out = runHelper(t, doctorArgs...)
	if code != 1 || !strings.Contains(out, "FAIL sshd settings: sshd -T says kbdinteractiveauthentication no") {
		t.Errorf("doctor without the drop-in: exit %d:\n%s", code, out)
	}
	testkit.Must(t, os.WriteFile(dropIn, []byte(dropInText), 0o644))

	// Installing again changes nothing.
	before := testkit.ReadFile(pamFile)
	code, out = runHelper(t, "install-pam", "-root", root, "-sshd", testkit.SSHDBin, "-helper", helper, "-config", config)
	if code != 0 || testkit.ReadFile(pamFile) != before || strings.Count(out, "unchanged") != 2 {
		t.Errorf("second install-pam: exit %d, changed the file or said:\n%s", code, out)
	}

	// uninstall-pam: the host's stock file byte for byte, no drop-in, no backup.
	code, out = runHelper(t, "uninstall-pam", "-root", root, "-sshd", testkit.SSHDBin)
	if code != 0 {
		t.Fatalf("uninstall-pam: exit %d:\n%s", code, out)
	}
	if testkit.ReadFile(pamFile) != string(stock) {
		t.Errorf("uninstall-pam did not restore the stock file")
	}
	for _, p := range []string{pamFile + ".latchkey-bak", filepath.Join(dropIns, "50-latchkey.conf")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// Under PAM the commands refuse: a PAM line naming install-pam must neither
// change files nor let the login through.
//
// On a host with neither journald nor /dev/log (like the CI machine) the
// refusal's audit record goes to the fallback file, not to pam_exec's
// /dev/null. Each command runs in a private mount namespace whose /var/log
// is the test's own directory, so that the host's /var/log is left as it was.
func TestSubcommandsRefusedUnderPAM(t *testing.T) {
	user := "lkrefused" + randHex(3)
	logDir := t.TempDir()
	const bindLog = `mount --bind "$1" /var/log && shift && exec "$@"`
	for _, sub := range []string{"install-pam", "uninstall-pam", "doctor"} {
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", bindLog, "sh",
			logDir, helper, sub, "-root", t.TempDir())
		cmd.Env = append(os.Environ(), "PAM_USER="+user, "PAM_TYPE=auth")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%s under PAM: %v (want exit 2):\n%s", sub, err, out)
		}
	}
	_, journalErr := os.Stat("/run/systemd/journal/socket")
	_, syslogErr := os.Stat("/dev/log")
	if journalErr == nil || syslogErr == nil {
		t.Logf("this host has journald or /dev/log: the fallback file is not used")
		return
	}
	// pam.FallbackFile, seen through the namespace's /var/log.
	fallback := filepath.Join(logDir, "latchkey-ssh-helper.log")
	if got := strings.Count(testkit.ReadFile(fallback), `"pam_user":"`+user+`"`); got != 3 {
		t.Errorf("%s holds %d records of %s, want 3 (one per refused command)", fallback, got, user)
	}
	if fi, err := os.Stat(fallback); err == nil && fi.Mode().Perm() != 0o640 {
		t.Errorf("%s has mode %v, want 0640", fallback, fi.Mode().Perm())
	}
}
