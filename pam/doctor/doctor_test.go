package doctor

import (
	"bytes"
	"fmt"
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

// readPAMFile splits a PAM file as Linux-PAM's pam_line.c and _pam_StrTok
// do (TestBinaryDoctorReadsThePAMFileAsPAM checks the verdicts through a
// real sshd): '#' anywhere ends the line, a backslash at the end continues
// it (unless a comment ends it first), "[...]" is one token.
func TestReadPAMFile(t *testing.T) {
	tests := map[string]struct {
		src          string
		want         string // entries as "line:tok|tok", one per line
		unterminated bool
	}{
		"plain":                                 {src: "auth\trequisite  pam_exec.so a\n", want: "1:auth|requisite|pam_exec.so|a"},
		"comment after":                         {src: "auth required x.so -c=/a # b c\n", want: "1:auth|required|x.so|-c=/a"},
		"comment mid-word":                      {src: "auth required x.so -c=/a#b\n", want: "1:auth|required|x.so|-c=/a"},
		"comment lines, blanks":                 {src: "# a\n\n   \n\t# b \\\nauth required x.so\n", want: "5:auth|required|x.so"},
		"continued":                             {src: "auth required \\\n  x.so a\\\n b\n", want: "1:auth|required|x.so|a|b"},
		"continued, blanks after the backslash": {src: "auth required \\  \t\nx.so\n", want: "1:auth|required|x.so"},
		"a comment ends a continued line":       {src: "auth required x.so # c \\\nsession required y.so\n", want: "1:auth|required|x.so\n2:session|required|y.so"},
		"brackets":                              {src: "auth [success=ok default=die] x.so [a b\\]c] d\n", want: "1:auth|[success=ok default=die]|x.so|[a b]c]|d"},
		"no newline at the end":                 {src: "auth required x.so", want: "1:auth|required|x.so"},
		"ends continued":                        {src: "auth required x.so\nsession required y.so \\\n", want: "1:auth|required|x.so", unterminated: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			entries, unterminated := readPAMFile(tc.src)
			var got []string
			for _, e := range entries {
				var toks []string
				for _, tok := range e.tokens {
					toks = append(toks, tok.text())
				}
				got = append(got, fmt.Sprintf("%d:%s", e.line, strings.Join(toks, "|")))
			}
			if g := strings.Join(got, "\n"); g != tc.want || unterminated != tc.unterminated {
				t.Errorf("got\n%s\nunterminated %v; want\n%s\nunterminated %v", g, unterminated, tc.want, tc.unterminated)
			}
		})
	}
}
