package install

import (
	"bytes"
	"fmt"
	"strings"
)

// The block install-pam puts in place of the distribution's password auth.
// The replaced line is kept verbatim after "#-" so that uninstall-pam puts
// it back byte for byte, whatever else the administrator changed since.
const (
	blockBegin = "# latchkey-ssh-helper install-pam: begin (uninstall-pam restores the line below)"
	savedLine  = "#-"
	blockEnd   = "# latchkey-ssh-helper install-pam: end"
)

// isPasswordAuth reports whether l is the line of a distribution's
// /etc/pam.d/sshd that runs its password stack: Debian and Ubuntu include
// common-auth, RHEL, Alma, Rocky and Amazon Linux use the password-auth
// substack (older ones include system-auth). It is the regexp
//
//	^\s*(@include\s+common-auth|auth\s+(substack|include)\s+(password-auth|system-auth))\s*(#.*)?$
//
// written out by hand (TestMatchersAgreeWithRegexps pins that): the helper
// binary links this package, and regexp brings its own and unicode's tables'
// inits into every login.
func isPasswordAuth(l string) bool {
	// None of the words holds '#': the first '#' starts the comment.
	if i := strings.IndexByte(l, '#'); i >= 0 {
		if strings.IndexByte(l[i:], '\n') >= 0 { // regexp's . stops at \n
			return false
		}
		l = l[:i]
	}
	f := reFields(l)
	switch len(f) {
	case 2:
		return f[0] == "@include" && f[1] == "common-auth"
	case 3:
		return f[0] == "auth" && (f[1] == "substack" || f[1] == "include") && (f[2] == "password-auth" || f[2] == "system-auth")
	}
	return false
}

// isOtherHelper reports whether l is a pam_exec line running a Vault OTP
// helper (outside install-pam's block, two verifiers in one stack is a
// mistake). It is the regexp, written out by hand as above,
//
//	^\s*auth\s+\S+\s+pam_exec\.so\b.*(vault-ssh-helper|latchkey-ssh-helper)
func isOtherHelper(l string) bool {
	rest, ok := cutField(l, "auth")
	if !ok {
		return false
	}
	if rest, ok = cutField(rest, ""); !ok {
		return false
	}
	rest = strings.TrimLeft(rest, reSpace)
	after, ok := strings.CutPrefix(rest, "pam_exec.so")
	if !ok || (after != "" && isWordByte(after[0])) {
		return false
	}
	after, _, _ = strings.Cut(after, "\n") // regexp's . stops at \n
	return strings.Contains(after, "vault-ssh-helper") || strings.Contains(after, "latchkey-ssh-helper")
}

// reSpace is regexp's \s: ASCII space, \t, \n, \f and \r (not \v, not
// Unicode spaces, unlike strings.Fields).
const reSpace = " \t\n\f\r"

// reFields splits s at runs of \s.
func reFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && strings.IndexByte(reSpace, byte(r)) >= 0 })
}

// cutField skips leading \s, takes the next run of non-\s (which must be
// want, unless want is empty) and returns what follows it, which must start
// with \s.
func cutField(s, want string) (string, bool) {
	s = strings.TrimLeft(s, reSpace)
	end := strings.IndexAny(s, reSpace)
	if end <= 0 || (want != "" && s[:end] != want) {
		return "", false
	}
	return s[end:], true
}

// isWordByte is regexp's \w, what \b looks at.
func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// AuthLines returns the two auth lines of the helper: pam_exec gives it the
// typed OTP on stdin, and pam_permit succeeds at setcred, where pam_exec
// does nothing (without it sshd ends the session with "pam_setcred():
// Permission denied"). They are the lines of packaging/ssh-helper/pam.d-sshd.
func AuthLines(helper, config string, dev bool) []string {
	line := "auth\trequisite\tpam_exec.so quiet expose_authtok " + helper + " -config=" + config
	if dev {
		line += " -dev"
	}
	return []string{line, "auth\toptional\tpam_permit.so"}
}

// EditPAM returns the PAM file orig with its password auth line replaced by
// lines, inside install-pam's block. When orig already holds the block, the
// block's lines are replaced (flags changed) and the saved line is kept;
// the result equals orig when nothing changed. name (the file's path) is
// used in errors, which say which line and why: no password auth line, more
// than one, a broken block, or another OTP helper already in the stack.
func EditPAM(name string, orig []byte, lines []string) ([]byte, error) {
	ls, trailingNL := splitLines(orig)
	begin, end, saved, err := findBlock(name, ls)
	if err != nil {
		return nil, err
	}
	block := func(saved string) []string {
		out := []string{blockBegin, savedLine + saved}
		out = append(out, lines...)
		return append(out, blockEnd)
	}
	for i, l := range ls {
		if (begin < 0 || i < begin || i > end) && isOtherHelper(l) {
			return nil, fmt.Errorf("%s:%d: already runs an OTP helper through pam_exec (%q): remove that line (and its pam_permit/pam_unix partner) first, then run install-pam again", name, i+1, strings.TrimSpace(l))
		}
	}
	if begin >= 0 {
		out := append(append(append([]string{}, ls[:begin]...), block(saved)...), ls[end+1:]...)
		return joinLines(out, trailingNL), nil
	}
	at := -1
	for i, l := range ls {
		if isPasswordAuth(l) {
			if at >= 0 {
				return nil, fmt.Errorf("%s:%d: a second password auth line (the first is line %d): edit the file by hand, replacing one of them with:\n%s", name, i+1, at+1, strings.Join(lines, "\n"))
			}
			at = i
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%s: no password auth line (\"@include common-auth\" or \"auth substack password-auth\"): add these lines at the top of its auth section by hand:\n%s", name, strings.Join(lines, "\n"))
	}
	out := append(append(append([]string{}, ls[:at]...), block(ls[at])...), ls[at+1:]...)
	return joinLines(out, trailingNL), nil
}

// RevertPAM returns cur with install-pam's block replaced by the line it
// replaced, and true; or cur and false when cur holds no block. The error
// says which line of a broken block (begin without end) is wrong.
func RevertPAM(name string, cur []byte) ([]byte, bool, error) {
	ls, trailingNL := splitLines(cur)
	begin, end, saved, err := findBlock(name, ls)
	if err != nil || begin < 0 {
		return cur, false, err
	}
	out := append(append(append([]string{}, ls[:begin]...), saved), ls[end+1:]...)
	return joinLines(out, trailingNL), true, nil
}

// findBlock returns the indexes of install-pam's begin and end lines and
// the saved line, or begin -1 when there is no block.
func findBlock(name string, ls []string) (begin, end int, saved string, err error) {
	begin, end = -1, -1
	for i, l := range ls {
		switch l {
		case blockBegin:
			if begin >= 0 {
				return 0, 0, "", fmt.Errorf("%s:%d: a second install-pam block (the first begins at line %d): remove one by hand", name, i+1, begin+1)
			}
			begin = i
		case blockEnd:
			if begin < 0 || end >= 0 {
				return 0, 0, "", fmt.Errorf("%s:%d: install-pam's end line without its begin line: repair the file by hand (the backup is beside it)", name, i+1)
			}
			end = i
		}
	}
	if begin < 0 {
		return -1, -1, "", nil
	}
	if end < 0 || end < begin+1 || !strings.HasPrefix(ls[begin+1], savedLine) {
		return 0, 0, "", fmt.Errorf("%s:%d: install-pam's block is broken (no end line, or no saved \"#-\" line after the begin line): repair the file by hand (the backup is beside it)", name, begin+1)
	}
	return begin, end, strings.TrimPrefix(ls[begin+1], savedLine), nil
}

// splitLines splits b into lines without their "\n", and says whether b
// ended with one, so that joinLines gives back the same bytes.
func splitLines(b []byte) ([]string, bool) {
	if len(b) == 0 {
		return nil, false
	}
	trailing := bytes.HasSuffix(b, []byte("\n"))
	s := strings.TrimSuffix(string(b), "\n")
	return strings.Split(s, "\n"), trailing
}

func joinLines(ls []string, trailingNL bool) []byte {
	s := strings.Join(ls, "\n")
	if trailingNL {
		s += "\n"
	}
	return []byte(s)
}
