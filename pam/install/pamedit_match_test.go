package install

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The hand-written matchers are the regexps they replace: the same answer on
// hand-picked lines and on many lines built from their pieces.
func TestMatchersAgreeWithRegexps(t *testing.T) {
	pw := regexp.MustCompile(`^\s*(@include\s+common-auth|auth\s+(substack|include)\s+(password-auth|system-auth))\s*(#.*)?$`)
	oh := regexp.MustCompile(`^\s*auth\s+\S+\s+pam_exec\.so\b.*(vault-ssh-helper|latchkey-ssh-helper)`)
	lines := []string{
		"", "@include common-auth", "  @include\tcommon-auth  ", "@include common-auth # x", "@include common-auth#x",
		"@include common-authx", "@include  common-auth extra", "#@include common-auth", "@include\vcommon-auth",
		"@include\u00a0common-auth", "auth substack password-auth", "auth include system-auth", "auth\tsubstack\tsystem-auth\t#",
		"auth required password-auth", "auth substack password-auth\n# x", "@include common-auth #a\nb", "@include\ncommon-auth",
		"auth requisite pam_exec.so quiet expose_authtok /usr/local/bin/vault-ssh-helper -config=/etc/x",
		"auth\t[success=1 default=ignore]\tpam_exec.so /usr/bin/latchkey-ssh-helper", "auth requisite pam_exec.sox vault-ssh-helper",
		"auth requisite pam_exec.so-vault-ssh-helper", "auth requisite pam_exec.sovault-ssh-helper", "auth pam_exec.so vault-ssh-helper",
		"  auth  requisite  pam_exec.so\nvault-ssh-helper", "account requisite pam_exec.so vault-ssh-helper", "auth requisite pam_exec.so",
		"auth requisite  pam_exec.so.x latchkey-ssh-helper", "auth requisite pam_exec.so\xff latchkey-ssh-helper", "auth \xff pam_exec.so vault-ssh-helper",
	}
	pieces := []string{"", " ", "\t", "\n", "\v", "\f", "\r", "\u00a0", "\xff", "#", "x", "_", ".", "-", "@include", "common-auth", "auth",
		"substack", "include", "password-auth", "system-auth", "requisite", "pam_exec.so", "pam_exec", "so", "vault-ssh-helper", "latchkey-ssh-helper"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b strings.Builder
		for range r.IntN(9) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		lines = append(lines, b.String())
	}
	for _, l := range lines {
		if got, want := isPasswordAuth(l), pw.MatchString(l); got != want {
			t.Errorf("isPasswordAuth(%q) = %v, regexp says %v", l, got, want)
		}
		if got, want := isOtherHelper(l), oh.MatchString(l); got != want {
			t.Errorf("isOtherHelper(%q) = %v, regexp says %v", l, got, want)
		}
	}
}
