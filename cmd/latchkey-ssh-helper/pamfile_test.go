package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
)

// doctor reads sshd's PAM file as Linux-PAM does, and the helper's line as
// pam_exec does, with a real sshd and Linux-PAM as the judge: for each
// stack, a login with a valid OTP and one with a wrong password through a
// private sshd, then doctor on the same files. doctor passes (exit 0)
// exactly when the OTP logs in and the wrong password does not. Before, it
// passed a line whose type=session (or type=AUTH: pam_exec compares it
// case-sensitively) makes pam_exec skip the helper at login, so that
// pam_permit after it let any password in; passed a -config=DIR#x/... that
// PAM cuts at the '#' (every login refused, exit 3); and failed working
// lines: a comment after the arguments, a continued line, upper-case
// AUTH/REQUISITE/EXPOSE_AUTHTOK; and passed a stack that still includes the
// distribution's password auth, which refuses every OTP. Root: sshd,
// useradd, /etc/pam.d.
func TestBinaryDoctorReadsThePAMFileAsPAM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private sshd, a local user and /etc/pam.d")
	}
	if _, err := os.Stat(testkit.SSHDBin); err != nil {
		t.Skipf("needs openssh-server: %v", err)
	}
	const mount = "ssh-doctor-pam"
	user := fmt.Sprintf("lkdoc%d", os.Getpid()%100000)
	testkit.AddUser(t, user)
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	if _, err := srv.Client.Logical().Write(mount+"/roles/web", map[string]any{"key_type": "otp", "default_user": user, "cidr_list": "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\ntimeout = \"5s\"\naudit = \"off\"\n", srv.Addr, mount)
	cfg := writeConfig(t, body)
	// A config at DIR#x/config.hcl, where PAM reads -config=DIR.
	hashDir := t.TempDir()
	testkit.Must(t, os.Mkdir(hashDir+"#x", 0o700))
	testkit.Must(t, os.WriteFile(hashDir+"#x/config.hcl", []byte(body), 0o600))

	dir := t.TempDir()
	service := fmt.Sprintf("latchkey-doctor-%d", os.Getpid())
	pamFile := "/etc/pam.d/" + service
	t.Cleanup(func() { os.Remove(pamFile) })
	sshd := testkit.NewSSHD(t, filepath.Join(dir, "sshd_config"), "", fmt.Sprintf(`UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
AuthenticationMethods keyboard-interactive
PermitRootLogin no
AllowUsers %s
`, user))
	sshd.Start(t, service)

	line := "auth requisite pam_exec.so quiet expose_authtok " + helper + " -config=" + cfg + " -dev"
	const rest = "auth optional pam_permit.so\naccount required pam_unix.so\nsession required pam_unix.so\n"
	tests := map[string]struct {
		stack      string
		wantDoctor string // in doctor's output
	}{
		"install-pam's line":          {stack: line + "\n" + rest, wantDoctor: "OK   PAM line: "},
		"a comment after it":          {stack: line + " # Vault OTP, see the wiki\n" + rest, wantDoctor: "OK   PAM line: "},
		"continued on the next line":  {stack: "auth requisite pam_exec.so quiet expose_authtok \\\n\t" + helper + " -config=" + cfg + " -dev\n" + rest, wantDoctor: "OK   PAM line: "},
		"upper case":                  {stack: "AUTH REQUISITE pam_exec.so QUIET EXPOSE_AUTHTOK " + helper + " -config=" + cfg + " -dev\n" + rest, wantDoctor: "OK   PAM line: "},
		"type=auth":                   {stack: strings.Replace(line, " quiet ", " quiet type=auth ", 1) + "\n" + rest, wantDoctor: "OK   PAM line: "},
		"type=session lets anyone in": {stack: strings.Replace(line, " quiet ", " quiet type=session ", 1) + "\n" + rest, wantDoctor: "type=session: pam_exec skips the helper at authentication"},
		"type=AUTH lets anyone in":    {stack: strings.Replace(line, " quiet ", " quiet type=AUTH ", 1) + "\n" + rest, wantDoctor: "type=AUTH: pam_exec skips the helper"},
		"a '#' in -config":            {stack: strings.Replace(line, cfg, hashDir+"#x/config.hcl", 1) + "\n" + rest, wantDoctor: "FAIL config: read config " + hashDir + ": read " + hashDir + ": is a directory"},
		"ends in a continued line":    {stack: line + "\n" + rest + "session optional pam_permit.so \\\n", wantDoctor: "ends in a line continued with a backslash"},
		// install-pam replaces the password auth; left in place it checks
		// the OTP as a Unix password.
		"the password stack before it": {stack: "@include common-auth\n" + line + "\n" + rest, wantDoctor: "FAIL PAM line: " + pamFile + ":1: the distribution's password auth (@include common-auth) is still in the auth stack"},
		"the password stack after it":  {stack: line + "\n@include common-auth\n" + rest, wantDoctor: ":2: the distribution's password auth (@include common-auth)"},
		"the password stack commented": {stack: "#@include common-auth\n" + line + "\n" + rest, wantDoctor: "OK   PAM line: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			testkit.WriteFile(t, pamFile, tc.stack)
			s, err := srv.Client.Logical().Write(mount+"/creds/web", map[string]any{"ip": "127.0.0.1"})
			testkit.Must(t, err)
			_, otpErr := testkit.SSHLogin(sshd.Addr, user, s.Data["key"].(string))
			_, wrongErr := testkit.SSHLogin(sshd.Addr, user, "not-an-otp-but-a-password")
			works := otpErr == nil && wrongErr != nil

			doctor := boundedCommand(t, helper, "doctor", "-pam-file", pamFile, "-sshd-config", sshd.Config)
			doctor.Env = []string{}
			code, out := runCommand(t, doctor)
			if !strings.Contains(out, tc.wantDoctor) {
				t.Errorf("doctor's output lacks %q:\n%s", tc.wantDoctor, out)
			}
			if passed := code == exitOK; passed != works {
				t.Errorf("doctor exited %d, but through sshd the OTP login gave %v and the wrong password %v:\n%s", code, otpErr, wrongErr, out)
			}
		})
	}
}
