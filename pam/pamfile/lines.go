package pamfile

import (
	"path/filepath"
	"strings"
)

// IsType reports whether the entry's type (its first token) is typ, as
// Linux-PAM compares it: case-insensitively, a leading '-' (skip the line
// when its module is missing) allowed.
func (e Entry) IsType(typ string) bool {
	return len(e.Tokens) > 0 && strings.EqualFold(strings.TrimPrefix(e.Tokens[0].S, "-"), typ)
}

// Texts returns the tokens as written, for messages.
func (e Entry) Texts() []string {
	out := make([]string, len(e.Tokens))
	for i, t := range e.Tokens {
		out[i] = t.Text()
	}
	return out
}

// PasswordAuth reports whether e is a distribution's password auth line,
// which install-pam replaces: Debian's "@include common-auth", an auth
// include or substack of password-auth, system-auth or common-auth (RHEL,
// Amazon Linux, older RHEL, SUSE).
func (e Entry) PasswordAuth() bool {
	toks := e.Tokens
	if len(toks) == 2 && toks[0].S == "@include" && toks[1].S == "common-auth" {
		return true
	}
	if len(toks) < 3 || !e.IsType("auth") || toks[1].Bracket ||
		!strings.EqualFold(toks[1].S, "include") && !strings.EqualFold(toks[1].S, "substack") {
		return false
	}
	switch toks[2].S {
	case "password-auth", "system-auth", "common-auth":
		return true
	}
	return false
}

// ExecCall is what pam_exec makes of a line's module and arguments.
type ExecCall struct {
	Cmd           string
	Args          []string
	ExposeAuthtok bool
	// SkipAuth is the first type= option that is not exactly "auth" (as
	// written): pam_exec then returns PAM_IGNORE at authentication
	// without running the command.
	SkipAuth string
}

// Exec reads the entry's module and arguments as pam_exec does: options
// (case-insensitive) up to the first argument that starts with '/' or is
// no option, which is the command. ok is false when the entry has no
// module, its module is not pam_exec, or it names no command.
func (e Entry) Exec() (x ExecCall, ok bool) {
	if len(e.Tokens) < 3 || filepath.Base(e.Tokens[2].S) != "pam_exec.so" {
		return x, false
	}
	args := e.Tokens[3:]
	for i, t := range args {
		s, low := t.S, strings.ToLower(t.S)
		switch {
		case strings.HasPrefix(s, "/"):
		case low == "debug", low == "stdout", low == "seteuid", low == "quiet", low == "quiet_log", strings.HasPrefix(low, "log="):
			continue
		case low == "expose_authtok":
			x.ExposeAuthtok = true
			continue
		case strings.HasPrefix(low, "type="):
			// Compared with the call's type case-sensitively (strcmp).
			if s[len("type="):] != "auth" && x.SkipAuth == "" {
				x.SkipAuth = s
			}
			continue
		}
		x.Cmd = s
		for _, a := range args[i+1:] {
			x.Args = append(x.Args, a.S)
		}
		return x, true
	}
	return x, false
}
