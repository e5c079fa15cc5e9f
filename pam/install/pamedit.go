package install

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey/pam/pamfile"
)

// The block install-pam puts in place of the distribution's password auth.
// The replaced line is kept verbatim after "#-" so that uninstall-pam puts
// it back byte for byte, whatever else the administrator changed since.
const (
	blockBegin = "# latchkey-ssh-helper install-pam: begin (uninstall-pam restores the line below)"
	savedLine  = "#-"
	blockEnd   = "# latchkey-ssh-helper install-pam: end"
)

// readStack reads a PAM file's entries as Linux-PAM does (pamfile), so
// that install-pam finds the lines sshd's PAM runs however they are
// spelt ("AUTH Include", "-auth", "[...]" controls, a trailing comment, a
// continued line), as doctor does. A CRLF line end counts as LF: Linux-PAM
// would read "common-auth\r" (a file copied from Windows), and replacing
// that line mends it.
func readStack(orig []byte) []pamfile.Entry {
	entries, _ := pamfile.Read(strings.ReplaceAll(string(orig), "\r\n", "\n"))
	return entries
}

// isOtherHelper reports whether e is an auth line running a Vault OTP
// helper through pam_exec (outside install-pam's block, two verifiers in
// one stack is a mistake: the second always gets "OTP not found").
func isOtherHelper(e pamfile.Entry) bool {
	if !e.IsType("auth") || len(e.Tokens) < 4 || filepath.Base(e.Tokens[2].S) != "pam_exec.so" {
		return false
	}
	for _, t := range e.Tokens[3:] {
		if strings.Contains(t.S, "vault-ssh-helper") || strings.Contains(t.S, "latchkey-ssh-helper") {
			return true
		}
	}
	return false
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
	entries := readStack(orig)
	for _, e := range entries {
		if (begin < 0 || e.Last-1 < begin || e.Line-1 > end) && isOtherHelper(e) {
			return nil, fmt.Errorf("%s:%d: already runs an OTP helper through pam_exec (%q): remove that line (and its pam_permit/pam_unix partner) first, then run install-pam again", name, e.Line, strings.Join(e.Texts(), " "))
		}
	}
	if begin >= 0 {
		out := append(append(append([]string{}, ls[:begin]...), block(saved)...), ls[end+1:]...)
		return joinLines(out, trailingNL), nil
	}
	at := -1
	for _, e := range entries {
		if !e.PasswordAuth() {
			continue
		}
		if at >= 0 {
			return nil, fmt.Errorf("%s:%d: a second password auth line (the first is line %d): edit the file by hand, replacing one of them with:\n%s", name, e.Line, at+1, strings.Join(lines, "\n"))
		}
		if e.Last != e.Line {
			// The block keeps one saved line to put back.
			return nil, fmt.Errorf("%s:%d: the password auth line is continued over lines %d-%d: join it into one line, then run install-pam again", name, e.Line, e.Line, e.Last)
		}
		at = e.Line - 1
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
