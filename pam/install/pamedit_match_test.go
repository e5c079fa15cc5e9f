package install

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// install-pam finds the password auth line and another OTP helper's line as
// Linux-PAM reads them (pamfile): on one physical line without brackets or
// backslashes that reading is these regexps, which the matchers must agree
// with on hand-picked lines and on many lines built from their pieces.
// PAM splits at space and tab only, compares types and controls
// case-insensitively, takes "-auth" as auth, and cuts at the first '#'.
func TestMatchersAgreeWithRegexps(t *testing.T) {
	pw := regexp.MustCompile(`^[ \t]*(@include[ \t]+common-auth|-?(?i:auth)[ \t]+(?i:substack|include)[ \t]+(password-auth|system-auth|common-auth)([ \t][^#]*)?)[ \t]*(#.*)?$`)
	oh := regexp.MustCompile(`^[ \t]*-?(?i:auth)[ \t]+(\[[^\]#]*\]|[^ \t\[#]+)[ \t]+([^ \t#]*/)?pam_exec\.so[ \t][^#]*(vault-ssh-helper|latchkey-ssh-helper)`)
	lines := []string{
		"", "@include common-auth", "  @include\tcommon-auth  ", "@include common-auth # x", "@include common-auth#x",
		"@include common-authx", "@include  common-auth extra", "#@include common-auth", "@include\vcommon-auth",
		"@include\u00a0common-auth", "auth substack password-auth", "auth include system-auth", "auth\tsubstack\tsystem-auth\t#",
		"auth required password-auth", "@include common-auth\r", "AUTH Include system-auth", "-auth substack password-auth",
		"auth include common-auth", "auth include password-auth extra", "auth [default=ok] password-auth", "--auth include system-auth",
		"auth requisite pam_exec.so quiet expose_authtok /usr/local/bin/vault-ssh-helper -config=/etc/x",
		"auth\t[success=1 default=ignore]\tpam_exec.so /usr/bin/latchkey-ssh-helper", "auth requisite pam_exec.sox vault-ssh-helper",
		"auth requisite pam_exec.so-vault-ssh-helper", "auth requisite pam_exec.sovault-ssh-helper", "auth pam_exec.so vault-ssh-helper",
		"account requisite pam_exec.so vault-ssh-helper", "auth requisite pam_exec.so",
		"auth requisite  pam_exec.so.x latchkey-ssh-helper", "auth requisite pam_exec.so\xff latchkey-ssh-helper", "auth \xff pam_exec.so vault-ssh-helper",
		"AUTH REQUISITE pam_exec.so /usr/bin/vault-ssh-helper", "-auth required /lib/security/pam_exec.so /usr/bin/vault-ssh-helper",
		"auth requisite pam_exec.so /bin/x # vault-ssh-helper", "auth requisite pam_exec.so\tquiet\t/usr/bin/latchkey-ssh-helper\r",
	}
	pieces := []string{"", " ", "\t", "\v", "\f", "\r", "\u00a0", "\xff", "#", "x", "_", ".", "-", "/", "@include", "common-auth", "auth", "AUTH",
		"substack", "Include", "include", "password-auth", "system-auth", "requisite", "pam_exec.so", "pam_exec", "so", "vault-ssh-helper", "latchkey-ssh-helper"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b strings.Builder
		for range r.IntN(9) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		lines = append(lines, b.String())
	}
	for _, l := range lines {
		entries := readStack([]byte(l + "\n"))
		plain := strings.TrimSuffix(l, "\r") // a CRLF line end reads as LF
		if got, want := len(entries) == 1 && entries[0].PasswordAuth(), pw.MatchString(plain); got != want {
			t.Errorf("password auth(%q) = %v, regexp says %v", l, got, want)
		}
		if got, want := len(entries) == 1 && isOtherHelper(entries[0]), oh.MatchString(plain); got != want {
			t.Errorf("other helper(%q) = %v, regexp says %v", l, got, want)
		}
	}
}
