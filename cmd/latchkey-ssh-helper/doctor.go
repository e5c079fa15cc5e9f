package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	idoctor "github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/pam/doctor"
)

const doctorUsage = `Usage: latchkey-ssh-helper doctor [options]

  Checks this host's set-up the way a login meets it, one line per check
  (OK, WARN or FAIL with the fix): sshd's effective settings (sshd -T), the
  helper's pam_exec line (control, expose_authtok, path, -config, -dev
  against the config's http:// or https://, its arguments read as the
  helper reads them: no -verify-only, version, help, unknown flag or stray
  argument, on which it refuses every login), the config file (valid, mode,
  owner), where audit records go on this host, Vault (the echo request,
  which also proves the mount), allowed_roles, and in TOTP mode who may
  write or read token_file and the token's right to check codes.

Options:
  -pam-file=<path>     sshd's PAM stack (default /etc/pam.d/sshd)
  -sshd=<path>         sshd, run with -T (default /usr/sbin/sshd)
  -sshd-config=<path>  sshd's config (default /etc/ssh/sshd_config)
  -config=<path>       the helper's config (default: the PAM line's -config)
  -user=<name>         the user whose TOTP key is checked (default root)

Exit codes: 0 no FAIL (WARNs allowed), 1 a check failed, 2 usage.
`

// runDoctor is `latchkey-ssh-helper doctor`.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o doctor.Options
	fs.StringVar(&o.PAMFile, "pam-file", "", "")
	fs.StringVar(&o.SSHD, "sshd", "", "")
	fs.StringVar(&o.SSHDConfig, "sshd-config", "", "")
	fs.StringVar(&o.Config, "config", "", "")
	fs.StringVar(&o.User, "user", "", "")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "latchkey-ssh-helper doctor: %v\n\n", err)
		}
		fmt.Fprint(stderr, doctorUsage)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "latchkey-ssh-helper doctor: unexpected argument %q\n\n%s", fs.Arg(0), doctorUsage)
		return exitUsage
	}
	rp := &idoctor.Report{Out: stdout}
	doctor.Run(context.Background(), o, rp)
	if rp.Worst() == idoctor.Fail {
		return exitDenied
	}
	return exitOK
}
