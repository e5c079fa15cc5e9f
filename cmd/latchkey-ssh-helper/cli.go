package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/latchkey/latchkey/internal/version"
	"github.com/latchkey/latchkey/pam"
)

// Exit codes. pam_exec turns every non-zero code into a failed login; the
// codes tell an operator reading pam_exec's "failed: exit code N" why.
const (
	exitOK       = 0 // the login may proceed (or -verify-only succeeded)
	exitDenied   = 1 // a definite no: unknown/used OTP, wrong user, IP, role or code
	exitUsage    = 2 // bad command line, help, version asked for under PAM, a PAM line not of type auth
	exitConfig   = 3 // the config file is missing, unreadable or invalid
	exitVault    = 4 // Vault could not be asked or answered unexpectedly; deadline reached
	exitInternal = 5 // anything else (e.g. host addresses unreadable)
)

const usage = `Usage: latchkey-ssh-helper [options]

  Verifies a Vault SSH one-time password for sshd's PAM stack. sshd runs it
  through pam_exec with the password on stdin and PAM_USER set:

    auth requisite pam_exec.so quiet expose_authtok /usr/sbin/latchkey-ssh-helper -config=/etc/latchkey-ssh-helper.d/config.hcl

Options:
  -config=<path>   the config file (required)
  -dev             allow only http:// Vault addresses (testing); without it http:// is refused
  -verify-only     send Vault's echo request and exit (reads no stdin)
  -log-level=<l>   trace, debug, info (default), warn, error or off
  version, -v, -version, --version
                   print the version

Commands (by hand, never on the PAM line; each takes -h):
  install-pam      put the helper into sshd's PAM stack and write the sshd drop-in
  uninstall-pam    undo install-pam, byte for byte
  doctor           check this host's set-up the way a login meets it

Exit codes: 0 allowed, 1 denied, 2 usage, 3 config error, 4 Vault error or
deadline, 5 internal error. Anything but 0 refuses the login.
`

// hostAddrs lists this host's addresses; a variable for tests.
var hostAddrs = pam.HostAddrs

// run is the whole command; it returns the exit code. It fails closed: a
// panic anywhere in it (pam.Helper.Run already turns its own into an error)
// exits exitInternal with an audit record, never Go's exit code 2 ("usage").
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	var fc failClosed
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		// The panic's text and stack only: never stdin, which holds the password.
		reason := fmt.Sprintf("internal error: panic: %v", p)
		fmt.Fprintf(stderr, "latchkey-ssh-helper: %s; refusing\n%s", reason, debug.Stack())
		auditPanic(fc.auditor, fc.mode, getenv, reason)
		code = exitInternal
	}()
	return runMain(args, stdin, stdout, stderr, getenv, &fc)
}

// failClosed is what run's panic handler needs to leave its record where
// the config says, once runMain has read it.
type failClosed struct {
	auditor *pam.Auditor
	mode    string
}

// auditPanic records a login refused because of a panic: where the config
// says when it was read, else where auditEarly writes. Best effort; a panic
// while writing it is swallowed, the exit code refuses the login anyway.
func auditPanic(a *pam.Auditor, mode string, getenv func(string) string, reason string) {
	defer func() { _ = recover() }()
	if a == nil {
		auditEarly(getenv, reason)
		return
	}
	_ = a.Write(pam.Record{
		Time: time.Now().UTC(), Service: getenv("PAM_SERVICE"), User: getenv("PAM_USER"),
		RHost: getenv("PAM_RHOST"), Mode: mode, Result: "failure", Reason: reason,
	})
}

func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, fc *failClosed) int {
	if isSubcommand(args) {
		return runSubcommand(args, stdout, stderr, getenv)
	}
	// The deadline starts before anything is read: the config (or a file
	// it names) could be slow or never end. Until the config says its
	// timeout, the default bounds the run.
	start := time.Now()
	deadline := pam.DefaultTimeout
	guard := time.AfterFunc(deadline, func() {
		fmt.Fprintf(stderr, "latchkey-ssh-helper: deadline of %s reached; refusing\n", deadline)
		os.Exit(exitVault)
	})
	defer guard.Stop()
	a, err := pam.ParseArgs(args)
	if a.Version != "" {
		fmt.Fprintf(stdout, "latchkey-ssh-helper %s\n", version.Version)
		if underPAM(getenv) {
			// A PAM line that only prints a version must not let a login through.
			auditEarly(getenv, "bad command line on the PAM line: "+a.Version+" asks only for the version")
			return exitUsage
		}
		return exitOK
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "latchkey-ssh-helper: %v\n\n", err)
		}
		fmt.Fprint(stderr, usage)
		auditEarly(getenv, "bad command line on the PAM line: "+err.Error())
		return exitUsage
	}
	if a.VerifyOnly && underPAM(getenv) {
		// -verify-only checks Vault and reads no OTP: on a PAM line it
		// would let every login through.
		fmt.Fprintf(stderr, "latchkey-ssh-helper: -verify-only is refused on a PAM line (PAM_TYPE or PAM_USER is set): it reads no OTP\n")
		auditEarly(getenv, "bad command line on the PAM line: -verify-only reads no OTP")
		return exitUsage
	}
	if t := getenv("PAM_TYPE"); t != "" && t != "auth" {
		// Only an auth line's stdin is the password typed to log in: on a
		// password line pam_exec's expose_authtok passes the new password
		// of a password change (never to be sent to Vault), on account or
		// session lines nothing. A yes there would approve what no OTP was
		// issued for.
		fmt.Fprintf(stderr, "latchkey-ssh-helper: PAM_TYPE %q: the helper belongs on an auth line only; refusing, stdin unread\n", t)
		auditEarly(getenv, fmt.Sprintf("bad PAM line: type %q, the helper verifies logins on auth lines only", t))
		return exitUsage
	}
	if a.Config == "" {
		fmt.Fprintf(stderr, "latchkey-ssh-helper: -config is required\n\n%s", usage)
		auditEarly(getenv, "bad command line on the PAM line: -config is required")
		return exitUsage
	}
	// The helper's own console logger, not zap: see pam.Logger.
	lvl, err := pam.ParseLevel(a.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-ssh-helper: -log-level: %v\n", err)
		auditEarly(getenv, "bad command line on the PAM line: -log-level: "+err.Error())
		return exitUsage
	}
	log := pam.NewLogger(stderr, lvl)

	cfg, err := pam.LoadConfig(a.Config)
	if err == nil {
		err = cfg.CheckSchemes(a.Dev)
	}
	if err == nil {
		// Whoever else could write the file chooses who logs in.
		err = cfg.CheckWriters()
	}
	if err != nil {
		log.Error("config error", pam.Err(err))
		auditEarly(getenv, err.Error())
		return exitConfig
	}
	if a.Dev {
		log.Warn("dev mode: Vault is reached over plain http")
	}
	if cfg.TLSSkipVerify && !a.Dev {
		log.Warn("tls_skip_verify is set: Vault's certificate is not checked, anyone on the path can approve logins", pam.String("config", cfg.Path))
	}
	// What the file holds that works, but probably not as meant (a
	// repeated key, an unused ca_path, ...): each names file:line:col and
	// the key, never a value.
	for _, w := range cfg.Warnings {
		log.Warn("config: "+w, pam.String("config", cfg.Path))
	}
	if len(cfg.AllowedRoles) == 0 && cfg.Mode == pam.ModeOTP {
		// vault-ssh-helper's rule, kept: but say so, it locks everyone out.
		log.Warn("allowed_roles is empty: every OTP login is refused", pam.String("config", cfg.Path))
	}

	// The context ends a little before the deadline so that the audit record
	// is written in time; the guard exits at the deadline whatever happens.
	// Both count from the start of the run.
	if !guard.Stop() {
		// The guard is already exiting the process.
		select {}
	}
	deadline = cfg.Timeout
	guard.Reset(time.Until(start.Add(deadline)))
	margin := min(cfg.Timeout/10, 500*time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(cfg.Timeout-margin))
	defer cancel()

	h := &pam.Helper{
		Config:    cfg,
		Logger:    log,
		Auditor:   &pam.Auditor{Dest: cfg.Audit, File: cfg.AuditFile, Stderr: stderr, Fallback: auditFallback},
		Getenv:    getenv,
		HostAddrs: hostAddrs,
	}
	if !a.VerifyOnly {
		fc.auditor, fc.mode = h.Auditor, cfg.Mode
	}
	if a.VerifyOnly {
		if err := h.VerifyOnly(ctx); err != nil {
			log.Error("verify-only failed", pam.Err(err))
			return exitCode(err)
		}
		return exitOK
	}
	return exitCode(h.Run(ctx, stdin))
}

// exitCode maps Helper's errors to exit codes.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, pam.ErrDenied), errors.Is(err, pam.ErrRefused):
		return exitDenied
	case errors.Is(err, pam.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return exitVault
	case errors.Is(err, pam.ErrVault):
		return exitVault
	case errors.Is(err, pam.ErrInternal):
		return exitInternal
	}
	return exitInternal
}

// auditEarly records a login refused before the config could say where
// records go (bad PAM line, broken config): such a failure locks everyone
// out, and the journal is where an operator looks. Run by hand (not under
// PAM) it records nothing.
func auditEarly(getenv func(string) string, reason string) {
	if !underPAM(getenv) {
		return
	}
	// Best effort: the exit code already refuses the login.
	_ = (&pam.Auditor{Dest: pam.AuditAuto, Fallback: auditFallback}).Write(pam.Record{
		Time: time.Now().UTC(), Service: getenv("PAM_SERVICE"), User: getenv("PAM_USER"),
		RHost: getenv("PAM_RHOST"), Result: "failure", Reason: reason,
	})
}

// auditFallback is where a record goes that neither the journal nor
// syslog took (a test hook: the package's tests keep it out of /var/log).
var auditFallback = pam.FallbackFile

// underPAM reports whether pam_exec started us.
func underPAM(getenv func(string) string) bool {
	return getenv("PAM_TYPE") != "" || getenv("PAM_USER") != ""
}
