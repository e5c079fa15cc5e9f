// Package doctor checks a host's set-up of latchkey-ssh-helper the way a
// login will meet it: sshd's effective settings, the PAM line, the config
// file, where audit records go, and Vault (`latchkey-ssh-helper doctor`).
// Under sshd every refusal reads "PAM: System error"; these checks say why.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/pam"
	"github.com/latchkey/latchkey/pam/pamfile"
)

// Options say what to check.
type Options struct {
	// PAMFile is sshd's PAM stack (default /etc/pam.d/sshd).
	PAMFile string
	// SSHD and SSHDConfig are run as `SSHD -T -f SSHDConfig` (defaults
	// /usr/sbin/sshd, /etc/ssh/sshd_config).
	SSHD, SSHDConfig string
	// Config overrides the config named on the PAM line.
	Config string
	// User names the TOTP key whose capability is checked (default root).
	User string
	// Timeout bounds the Vault checks (default the config's timeout).
	Timeout time.Duration
	Logger  *pam.Logger // nil logs nothing
	// DevLog is syslog's socket (default /dev/log).
	DevLog string
}

// Run runs every check into rp. Checks that need what an earlier one could
// not give (Vault without a config) are reported as FAIL naming it.
func Run(ctx context.Context, o Options, rp *doctor.Report) {
	def(&o.PAMFile, "/etc/pam.d/sshd")
	def(&o.SSHD, "/usr/sbin/sshd")
	def(&o.SSHDConfig, "/etc/ssh/sshd_config")
	def(&o.User, "root")
	def(&o.DevLog, "/dev/log")
	checkSSHD(o, rp)
	line, ok := checkPAMLine(o, rp)
	configPath := o.Config
	if configPath == "" {
		configPath = line.config
	}
	if configPath == "" {
		configPath = "/etc/latchkey-ssh-helper.d/config.hcl"
	}
	cfg := checkConfig(configPath, rp)
	if cfg == nil {
		return
	}
	if ok {
		if err := cfg.CheckSchemes(line.dev); err != nil {
			fix := "use an https:// address (and ca_cert)"
			if !line.dev {
				fix += `, or, for a test Vault only, add -dev to the PAM line ("latchkey-ssh-helper install-pam -dev")`
			} else {
				fix = "remove -dev from the PAM line (install-pam without -dev)"
			}
			rp.Fail("vault address scheme", err.Error()+": every login is refused", fix)
		} else {
			rp.OK("vault address scheme", fmt.Sprintf("%s matches the PAM line (-dev %v)", strings.Join(cfg.VaultAddrs, ", "), line.dev))
		}
	}
	checkAudit(o, cfg, rp)
	checkRoles(cfg, rp)
	timeout := o.Timeout
	if timeout == 0 {
		timeout = cfg.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	checkVault(ctx, o, cfg, rp)
	if cfg.Mode == pam.ModeTOTP {
		checkTOTP(ctx, o, cfg, rp)
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// checkSSHD reads sshd's effective settings.
func checkSSHD(o Options, rp *doctor.Report) {
	const name = "sshd settings"
	out, err := exec.Command(o.SSHD, "-T", "-f", o.SSHDConfig).CombinedOutput()
	if err != nil {
		rp.Fail(name, fmt.Sprintf("%s -T -f %s: %v: %s", o.SSHD, o.SSHDConfig, err, strings.TrimSpace(string(out))), "fix sshd's config (sshd -t says where)")
		return
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		got[k] = v
	}
	bad := false
	for _, kw := range []string{"usepam", "kbdinteractiveauthentication"} {
		if got[kw] != "yes" {
			rp.Fail(name, fmt.Sprintf("sshd -T says %s %s: sshd never asks PAM for the OTP", kw, got[kw]), "latchkey-ssh-helper install-pam (writes sshd_config.d/50-latchkey.conf), then reload sshd")
			bad = true
		}
	}
	if m := got["authenticationmethods"]; m != "" && m != "any" && !strings.Contains(m, "keyboard-interactive") {
		rp.Fail(name, "AuthenticationMethods "+m+" has no keyboard-interactive: the OTP is never asked", "add keyboard-interactive to AuthenticationMethods")
		bad = true
	}
	if got["passwordauthentication"] == "yes" {
		rp.Warn(name, "PasswordAuthentication yes: sshd's password method also runs the PAM stack", "set PasswordAuthentication no (install-pam's drop-in does)")
		bad = true
	}
	if !bad {
		rp.OK(name, "UsePAM yes, KbdInteractiveAuthentication yes, PasswordAuthentication "+got["passwordauthentication"])
	}
}

// pamLine is what the helper's pam_exec line says.
type pamLine struct {
	config string
	dev    bool
}

// checkPAMLine finds the helper's pam_exec line in the PAM file and checks
// its control, options and command, reading the file as Linux-PAM does
// (pamfile.Read) and the line's options as pam_exec does (Entry.Exec).
func checkPAMLine(o Options, rp *doctor.Report) (pamLine, bool) {
	const name = "PAM line"
	src, err := os.ReadFile(o.PAMFile)
	if err != nil {
		rp.Fail(name, err.Error(), "is openssh-server installed?")
		return pamLine{}, false
	}
	entries, unterminated := pamfile.Read(string(src))
	if unterminated {
		rp.Fail(name, o.PAMFile+" ends in a line continued with a backslash: Linux-PAM refuses the whole file, and every login fails",
			"remove the backslash at the end of its last line")
	}
	var l pamLine
	found := false
	for _, e := range entries {
		if e.PasswordAuth() {
			// install-pam replaces it; left beside the helper's line (before or
			// after), the OTP is checked as a Unix password too, which the
			// stock stack's pam_unix and pam_deny refuse.
			rp.Fail(name, fmt.Sprintf("%s:%d: the distribution's password auth (%s) is still in the auth stack: it checks the OTP as a Unix password, and the stock stack then refuses every login",
				o.PAMFile, e.Line, strings.Join(e.Texts(), " ")),
				"replace that line with the helper's two auth lines (latchkey-ssh-helper install-pam does)")
		}
		x, ok := e.Exec()
		if !ok || !strings.Contains(filepath.Base(x.Cmd), "latchkey-ssh-helper") {
			continue
		}
		at := fmt.Sprintf("%s:%d", o.PAMFile, e.Line)
		if !e.IsType("auth") {
			// pam_exec sets PAM_TYPE to the call's type; the helper refuses
			// every type but auth (exit 2).
			rp.Fail(name, fmt.Sprintf("%s: the helper on a line of type %s refuses every call there (it verifies logins on auth lines only)", at, e.Tokens[0].S),
				"remove that line; the helper belongs on the auth line only")
			continue
		}
		if found {
			continue
		}
		control := e.Tokens[1].Text()
		// The helper's own reader: what it refuses here, it refuses at every
		// login (exit 2), which under sshd reads only "PAM: System error".
		a, aerr := pam.ParseArgs(x.Args)
		l.config, l.dev = a.Config, a.Dev
		failed := false
		_, lerr := pam.ParseLevel(a.LogLevel)
		switch {
		case a.Version != "":
			rp.Fail(name, at+": "+a.Version+" on the PAM line asks only for the version (the helper refuses every login with it)", "remove "+a.Version+" from the PAM line")
			failed = true
		case aerr != nil:
			rp.Fail(name, fmt.Sprintf("%s: the helper cannot read its arguments (%v): it refuses every login (exit 2)", at, aerr),
				"fix the arguments after "+x.Cmd+" (latchkey-ssh-helper -h lists them; install-pam writes a working line)")
			failed = true
		case a.VerifyOnly:
			rp.Fail(name, at+": -verify-only on the PAM line: it reads no OTP (the helper refuses every login with it)", "remove -verify-only from the PAM line; run it by hand to check Vault")
			failed = true
		case lerr != nil:
			rp.Fail(name, fmt.Sprintf("%s: -log-level: %v: the helper refuses every login (exit 2)", at, lerr), "use -log-level=info (or trace, debug, warn, error, off)")
			failed = true
		}
		// Controls are case-insensitive; "[...]" is refused as before.
		if e.Tokens[1].Bracket || !strings.EqualFold(control, "requisite") && !strings.EqualFold(control, "required") {
			rp.Fail(name, at+": control "+control+": a refused OTP may not end the stack", `use "auth requisite pam_exec.so ..." (latchkey-ssh-helper install-pam)`)
			failed = true
		}
		if x.SkipAuth != "" {
			// pam_exec returns PAM_IGNORE before running anything: the
			// stack's other auth lines decide, and after the helper's line
			// that is pam_permit, which lets any password in.
			rp.Fail(name, fmt.Sprintf("%s: %s: pam_exec skips the helper at authentication (only %q runs it), so the OTP is never checked and the other auth lines decide: with pam_permit after it, any password logs in", at, x.SkipAuth, strings.TrimPrefix(strings.ToLower(x.SkipAuth), "type=")),
				"remove "+x.SkipAuth+" from the PAM line (latchkey-ssh-helper install-pam writes a working line)")
			failed = true
		}
		if !x.ExposeAuthtok {
			rp.Fail(name, at+": no expose_authtok: the helper never sees the OTP", "add expose_authtok before the helper's path")
			failed = true
		}
		if fi, err := os.Stat(x.Cmd); err != nil || fi.Mode()&0o111 == 0 || !fi.Mode().IsRegular() {
			rp.Fail(name, at+": "+x.Cmd+" is not an executable file", "install the latchkey-ssh-helper package or fix the path")
			failed = true
		}
		if l.config == "" && a.Version == "" && aerr == nil {
			rp.Fail(name, at+": no -config=", "add -config=/etc/latchkey-ssh-helper.d/config.hcl")
			failed = true
		}
		if !failed {
			rp.OK(name, fmt.Sprintf("%s: %s %s, expose_authtok, -config=%s", at, control, x.Cmd, l.config))
		}
		found = true
	}
	if found {
		return l, true
	}
	rp.Fail(name, o.PAMFile+" runs no latchkey-ssh-helper through pam_exec", "latchkey-ssh-helper install-pam")
	return pamLine{}, false
}

// checkConfig loads the config and checks its mode and owner: whoever can
// write it chooses the Vault that approves logins.
func checkConfig(path string, rp *doctor.Report) *pam.Config {
	const name = "config"
	cfg, err := pam.LoadConfig(path)
	if err != nil {
		rp.Fail(name, err.Error(), "fix the config file (see /usr/share/doc/latchkey-ssh-helper)")
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		rp.Fail(name, err.Error(), "")
		return cfg
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	writers := cfg.CheckWriters()
	switch {
	case st != nil && st.Uid != 0:
		rp.Fail(name, fmt.Sprintf("%s is owned by uid %d: that user chooses which Vault approves logins", path, st.Uid), "chown root:root "+path)
	case fi.Mode().Perm()&0o022 != 0:
		rp.Fail(name, fmt.Sprintf("%s has mode %04o: others can rewrite it", path, fi.Mode().Perm()), "chmod 0644 "+path)
	case writers != nil:
		// A directory above it others may write: every login is refused.
		rp.Fail(name, writers.Error(), "make root the only writer of the file and of the directories above it")
	default:
		rp.OK(name, fmt.Sprintf("%s valid, mode %04o, owner root, login mode %s", path, fi.Mode().Perm(), cfg.Mode))
	}
	for _, w := range cfg.Warnings {
		rp.Warn(name, w, "edit the file as the warning says (README: Configuration)")
	}
	return cfg
}

// checkAudit says where records will go on this host.
func checkAudit(o Options, cfg *pam.Config, rp *doctor.Report) {
	const name = "audit"
	journalOn := journal.Enabled()
	_, err := os.Stat(o.DevLog)
	syslogOn := err == nil
	also := ""
	if cfg.AuditFile != "" {
		also = ", and " + cfg.AuditFile
		if _, err := os.Stat(filepath.Dir(cfg.AuditFile)); err != nil {
			rp.Fail(name, "audit_file's directory: "+err.Error(), "create "+filepath.Dir(cfg.AuditFile))
		}
	}
	switch {
	case cfg.Audit == pam.AuditOff && cfg.AuditFile == "":
		rp.Warn(name, `audit = "off" and no audit_file: logins leave no record`, `set audit = "auto" or audit_file`)
	case cfg.Audit == pam.AuditOff:
		rp.OK(name, "records go to "+cfg.AuditFile+" only")
	case cfg.Audit == pam.AuditJournal && !journalOn:
		rp.Fail(name, `audit = "journal" but journald's socket is missing: records are lost`+also, `use audit = "auto"`)
	case cfg.Audit == pam.AuditSyslog && !syslogOn:
		rp.Fail(name, `audit = "syslog" but `+o.DevLog+` is missing: records are lost`+also, `use audit = "auto"`)
	case cfg.Audit == pam.AuditSyslog, cfg.Audit == pam.AuditAuto && !journalOn && syslogOn:
		rp.OK(name, "records go to syslog ("+o.DevLog+", authpriv)"+also)
	case cfg.Audit == pam.AuditAuto && !journalOn:
		rp.OK(name, "no journald and no "+o.DevLog+": records go to "+pam.FallbackFile+also)
	default:
		rp.OK(name, "records go to the journal (journalctl -t latchkey-ssh-helper)"+also)
	}
}

func checkRoles(cfg *pam.Config, rp *doctor.Report) {
	const name = "allowed roles"
	switch {
	case cfg.Mode != pam.ModeOTP:
		return
	case len(cfg.AllowedRoles) == 0:
		rp.Fail(name, "allowed_roles is empty: every OTP login is refused", `set allowed_roles = "<your SSH role>"`)
	case cfg.AnyRole():
		rp.Warn(name, `allowed_roles = "*": an OTP of any role of the mount logs in`, "name the roles")
	default:
		rp.OK(name, strings.Join(cfg.AllowedRoles, ", "))
	}
}

// checkVault sends the echo request: it proves the address, TLS and the
// mount in one go.
func checkVault(ctx context.Context, o Options, cfg *pam.Config, rp *doctor.Report) {
	const name = "vault"
	h := &pam.Helper{Config: cfg, Logger: o.Logger}
	err := h.VerifyOnly(ctx)
	switch {
	case err == nil:
		rp.OK(name, fmt.Sprintf("%s answered the echo request on %s/verify", strings.Join(cfg.VaultAddrs, ", "), cfg.SSHMountPoint))
	case errors.Is(err, pam.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		rp.Fail(name, err.Error(), "check vault_addr, the network path, ca_cert and tls_server_name")
	case errors.Is(err, pam.ErrVault) && (strings.Contains(err.Error(), ": 403 ") || strings.Contains(err.Error(), ": 404 ")):
		rp.Fail(name, fmt.Sprintf("%v: Vault answers 403/404 to an unauthenticated request on a mount that does not exist", err),
			fmt.Sprintf("enable the SSH engine at %q (vault secrets enable -path=%s ssh), or fix ssh_mount_point / namespace", cfg.SSHMountPoint, cfg.SSHMountPoint))
	default:
		rp.Fail(name, err.Error(), "check ssh_mount_point and namespace")
	}
}

// checkTOTP checks the token file and the token's right to check codes.
func checkTOTP(ctx context.Context, o Options, cfg *pam.Config, rp *doctor.Report) {
	const name = "totp token"
	fi, err := os.Stat(cfg.TokenFile)
	if err != nil {
		rp.Fail(name, err.Error(), "run latchkey-agent with a sink at token_file")
		return
	}
	// The helper refuses a token others could have replaced: every TOTP
	// login fails.
	if err := pam.CheckTokenWriters(cfg.TokenFile, fi); err != nil {
		rp.Fail(name, err.Error()+": every TOTP login is refused", "make root the only writer of the file and of the directories above it")
	}
	// One others can read leaks the token: the helper still uses it, but
	// whoever reads it may check (and so spend) any user's TOTP code with
	// it, outside sshd's limits, and do whatever else its policy allows.
	if who := tokenReaders(fi); who != "" {
		rp.Fail(name, fmt.Sprintf("token_file %s %s, who can then use the Vault token", cfg.TokenFile, who),
			fmt.Sprintf("chmod 0600 %s (the agent's sink: mode = 0600; give the helper a sink of its own when another group must read this one)", cfg.TokenFile))
	}
	// As a login reads it: a FIFO there must not hang doctor.
	b, err := pam.ReadTokenFile(cfg.TokenFile)
	if err != nil {
		rp.Fail(name, "token_file: "+err.Error()+": every TOTP login is refused", "check the agent's sink")
		return
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		rp.Fail(name, fmt.Sprintf("token_file %s is empty", cfg.TokenFile), "check the agent's sink")
		return
	}
	key := strings.ReplaceAll(cfg.TOTPKeyPattern, "{{user}}", o.User)
	path := cfg.TOTPMount + "/code/" + key
	// The helper's own client: the same addresses, CA and proxy rules as a login.
	caller := &pam.Caller{Config: cfg, Token: tok}
	reply, err := caller.Write(ctx, "sys/capabilities-self", map[string]any{"paths": []string{path}})
	var caps []string
	if err == nil {
		caps = stringList(reply.Data["capabilities"])
	}
	switch {
	case err != nil && strings.Contains(err.Error(), ": 403 on "):
		// sys/capabilities-self is in Vault's default policy; a token
		// without it (or an expired one) cannot be asked.
		rp.Warn(name, "Vault refused sys/capabilities-self (403): the token is expired, revoked, or lacks the default policy, so its right to check codes is unknown",
			"check the agent's sink is fresh; give the token the default policy")
	case err != nil:
		rp.Fail(name, "capabilities of the token: "+err.Error(), "renew the token (is the agent running?)")
	case slices.Contains(caps, "update") || slices.Contains(caps, "root"):
		rp.OK(name, fmt.Sprintf("the token may update %s (%s)", path, strings.Join(caps, ", ")))
	default:
		rp.Fail(name, fmt.Sprintf("the token's capabilities on %s are %v: every TOTP login is refused", path, caps),
			fmt.Sprintf(`give its policy path "%s/code/*" { capabilities = ["update"] }`, cfg.TOTPMount))
	}
}

// tokenReaders says who other than root may read the file fi describes
// ("is readable by every user (mode 0644)", "is readable by group 100
// (mode 0640)"), or "" when nobody does. As writers.Foreign, the process's
// own group counts as root's; an owner other than root is the writers
// check's (they may chmod it too).
func tokenReaders(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o004 != 0:
		return fmt.Sprintf("is readable by every user (mode %04o)", perm)
	case perm&0o040 != 0 && st.Gid != 0 && st.Gid != uint32(os.Getegid()):
		return fmt.Sprintf("is readable by group %d (mode %04o)", st.Gid, perm)
	}
	return ""
}

// stringList is v as a list of strings (Vault's JSON arrays decode as []any).
func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
