package doctor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/test/testkit"
)

func TestPAMLine(t *testing.T) {
	helper, err := os.Executable() // any executable file
	testkit.Must(t, err)
	tests := map[string]struct {
		line       string
		want       string
		config     string
		dev, found bool
	}{
		"good": {line: "auth requisite pam_exec.so quiet expose_authtok " + helper + " -config=/etc/x.hcl -dev",
			want: "OK   PAM line", config: "/etc/x.hcl", dev: true, found: true},
		"optional lets everyone in": {line: "auth optional pam_exec.so expose_authtok " + helper + " -config=/etc/x.hcl",
			want: "FAIL PAM line: FILE:1: control optional", config: "/etc/x.hcl", found: true},
		"bracket control": {line: "auth [success=ok default=die] pam_exec.so expose_authtok " + helper + " -config=/etc/x.hcl",
			want: "control [success=ok default=die]", config: "/etc/x.hcl", found: true},
		"no expose_authtok": {line: "auth requisite pam_exec.so quiet " + helper + " -config=/etc/x.hcl",
			want: "no expose_authtok", config: "/etc/x.hcl", found: true},
		"missing binary": {line: "auth requisite pam_exec.so expose_authtok /nonexistent/latchkey-ssh-helper -config=/etc/x.hcl",
			want: "is not an executable file", config: "/etc/x.hcl", found: true},
		"-config as two words": {line: "auth requisite pam_exec.so expose_authtok " + helper + " -dev -config /etc/x.hcl",
			want: "OK   PAM line", config: "/etc/x.hcl", dev: true, found: true},
		"-verify-only lets everyone in": {line: "auth requisite pam_exec.so expose_authtok " + helper + " -verify-only -config=/etc/x.hcl",
			want: "FAIL PAM line: FILE:1: -verify-only on the PAM line", config: "/etc/x.hcl", found: true},
		"commented out": {line: "#auth requisite pam_exec.so expose_authtok " + helper + " -config=/etc/x.hcl",
			want: "runs no latchkey-ssh-helper"},
		"stock file": {line: "@include common-auth", want: "fix: latchkey-ssh-helper install-pam"},
		"on an account line only": {line: "account required pam_exec.so " + helper + " -config=/etc/x.hcl",
			want: "FAIL PAM line: FILE:1: the helper on a line of type account refuses every call there"},
		"on a password line after the auth line": {line: "auth requisite pam_exec.so quiet expose_authtok " + helper + " -config=/etc/x.hcl\n" +
			"password [success=ok default=die] pam_exec.so expose_authtok " + helper + " -config=/etc/x.hcl",
			want: "FAIL PAM line: FILE:2: the helper on a line of type password", config: "/etc/x.hcl", found: true},
		"another program on a session line": {line: "auth requisite pam_exec.so quiet expose_authtok " + helper + " -config=/etc/x.hcl\n" +
			"session optional pam_exec.so /usr/bin/true /etc/latchkey-ssh-helper.d/x",
			want: "OK   PAM line", config: "/etc/x.hcl", found: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// The line found must be the helper's even when named differently.
			if strings.Contains(tc.line, helper) {
				link := filepath.Join(t.TempDir(), "latchkey-ssh-helper")
				testkit.Must(t, os.Symlink(helper, link))
				tc.line = strings.ReplaceAll(tc.line, helper, link)
			}
			file := filepath.Join(t.TempDir(), "sshd")
			testkit.WriteFile(t, file, tc.line+"\nsession required pam_limits.so\n")
			var out bytes.Buffer
			l, found := checkPAMLine(Options{PAMFile: file}, &doctor.Report{Out: &out})
			got := strings.ReplaceAll(out.String(), file, "FILE")
			if !strings.Contains(got, tc.want) || found != tc.found || l.config != tc.config || l.dev != tc.dev {
				t.Errorf("got %q, found %v, %+v; want %q, found %v, config %q, dev %v", got, found, l, tc.want, tc.found, tc.config, tc.dev)
			}
		})
	}
}
