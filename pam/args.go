package pam

import (
	"flag"
	"fmt"
	"io"
)

// Args is the helper's command line (vault-ssh-helper's flags) as pam_exec
// passes it. ParseArgs is its one reader: the command runs with what it
// returns, and doctor checks a PAM line's arguments through it, so that a
// line doctor passes is one the helper can run.
type Args struct {
	Config     string
	Dev        bool
	VerifyOnly bool
	LogLevel   string
	// Version is the argument that asks for the version ("version", "-v",
	// "-version", "--version"), "" when none does. It wins over every other
	// argument, wherever it is.
	Version string
}

// ParseArgs reads args. An error is a usage error (the command exits 2):
// flag.ErrHelp for -h and -help, else the flag package's message ("flag
// provided but not defined: -bogus") or "unexpected argument ...". The
// checks that need the environment (-verify-only or a PAM_TYPE other than
// auth under PAM), -config's presence and -log-level's value are the
// caller's.
func ParseArgs(args []string) (Args, error) {
	var a Args
	for _, s := range args {
		switch s {
		case "version", "-v", "-version", "--version":
			a.Version = s
			return a, nil
		}
	}
	fs := flag.NewFlagSet("latchkey-ssh-helper", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.Config, "config", "", "")
	fs.BoolVar(&a.Dev, "dev", false, "")
	fs.BoolVar(&a.VerifyOnly, "verify-only", false, "")
	fs.StringVar(&a.LogLevel, "log-level", "info", "")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if fs.NArg() > 0 {
		return a, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return a, nil
}
