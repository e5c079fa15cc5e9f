package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey/pam/install"
)

const installUsage = `Usage: latchkey-ssh-helper install-pam [options]
       latchkey-ssh-helper uninstall-pam [options]

  install-pam puts the helper into the distribution's own PAM stack for
  sshd: the password auth line of /etc/pam.d/sshd ("@include common-auth"
  on Debian and Ubuntu, "auth substack password-auth" on RHEL, Alma, Rocky
  and Amazon Linux) becomes the helper's two auth lines; every account and
  session line stays. It writes /etc/ssh/sshd_config.d/50-latchkey.conf
  (UsePAM yes, KbdInteractiveAuthentication yes, PasswordAuthentication
  no), or refuses, naming the exact line to add, when sshd_config does not
  include that directory first. Each changed file keeps a backup beside it
  (.latchkey-bak); sshd -t runs before and after; any failure puts every
  file back. Running it again changes nothing, or only the helper's lines.
  uninstall-pam restores both files byte for byte, also where sshd -t
  already fails (an image without host keys); it puts the files back only
  when sshd -t afterwards fails otherwise than before. Neither reloads sshd.

Options:
  -root=<dir>      work on the tree under dir instead of / (an image's
                   mounted root); sshd -t is then skipped unless -sshd is set
  -dry-run         print the diff and change nothing
  -helper=<path>   the helper on the PAM line (default /usr/sbin/latchkey-ssh-helper)
  -config=<path>   the config on the PAM line (default /etc/latchkey-ssh-helper.d/config.hcl)
  -dev             add -dev to the PAM line (a Vault at an http:// address)
  -trusted-user-ca-keys=<path>
                   add "TrustedUserCAKeys <path>" to the drop-in (users'
                   SSH certificates signed by Vault's SSH CA)
  -sshd=<path>     the sshd that checks the config with -t (default
                   /usr/sbin/sshd when -root is /)

Exit codes: 0 done (or nothing to do), 1 refused or failed (nothing
changed), 2 usage.
`

// isSubcommand reports whether args name one of the commands that are not
// a login (install-pam, uninstall-pam, doctor).
func isSubcommand(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "install-pam", "uninstall-pam", "doctor":
		return true
	}
	return false
}

// runSubcommand runs install-pam, uninstall-pam or doctor. Under PAM it
// refuses: a PAM line naming one of them must not let a login through, nor
// change files.
func runSubcommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if underPAM(getenv) {
		fmt.Fprintf(stderr, "latchkey-ssh-helper: %s is not for the PAM line; refusing\n", args[0])
		auditEarly(getenv, "bad command line on the PAM line: "+args[0]+" is a command, not a login")
		return exitUsage
	}
	if args[0] == "doctor" {
		return runDoctor(args[1:], stdout, stderr)
	}
	return runInstall(args[0], args[1:], stdout, stderr)
}

// runInstall is install-pam and uninstall-pam.
func runInstall(name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o install.Options
	fs.StringVar(&o.Root, "root", "/", "")
	fs.BoolVar(&o.DryRun, "dry-run", false, "")
	fs.StringVar(&o.Helper, "helper", install.DefaultHelper, "")
	fs.StringVar(&o.Config, "config", install.DefaultConfig, "")
	fs.BoolVar(&o.Dev, "dev", false, "")
	fs.StringVar(&o.TrustedUserCAKeys, "trusted-user-ca-keys", "", "")
	fs.StringVar(&o.SSHD, "sshd", "", "")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "latchkey-ssh-helper %s: %v\n\n", name, err)
		}
		fmt.Fprint(stderr, installUsage)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "latchkey-ssh-helper %s: unexpected argument %q\n\n%s", name, fs.Arg(0), installUsage)
		return exitUsage
	}
	// The paths go into PAM and sshd lines, which split at blanks.
	for flagName, p := range map[string]string{"-helper": o.Helper, "-config": o.Config, "-trusted-user-ca-keys": o.TrustedUserCAKeys, "-root": o.Root} {
		if p != "" && (!filepath.IsAbs(p) || strings.ContainsAny(p, " \t\n\"'#")) {
			fmt.Fprintf(stderr, "latchkey-ssh-helper %s: %s %q: want an absolute path without blanks, quotes or #\n", name, flagName, p)
			return exitUsage
		}
	}
	o.Out = stdout
	do := install.Install
	if name == "uninstall-pam" {
		do = install.Uninstall
	}
	if err := do(o); err != nil {
		fmt.Fprintf(stderr, "latchkey-ssh-helper %s: %v\n", name, err)
		return exitDenied
	}
	if name == "install-pam" && !o.DryRun {
		fmt.Fprintf(stdout, "next: write %s, run `latchkey-ssh-helper doctor`, then reload sshd (systemctl reload ssh, or sshd on RHEL)\n", o.Config)
	}
	return exitOK
}
