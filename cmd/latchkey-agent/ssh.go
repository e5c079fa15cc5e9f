package main

import (
	"fmt"
	"io"
	"time"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sshtrust"
)

const sshUsage = `Usage:
  latchkey-agent ssh status -config FILE|DIR [-config ...]
      print the trusted user CA keys (SHA256 fingerprint and source: mount or
      pinned), each host certificate's principals and validity, and the next
      renewal, read from the files on this host (Vault is not contacted)
`

// sshCommand runs `latchkey-agent ssh SUBCOMMAND`.
func sshCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprint(stderr, sshUsage)
		return exitUsage
	}
	o, code := parse("latchkey-agent ssh status", args[1:], stderr)
	if o == nil {
		return code
	}
	cfg, err := config.Load(o.configs...)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent: %v\n", err)
		return exitConfig
	}
	if cfg.SSH == nil {
		fmt.Fprintf(stderr, "latchkey-agent: ssh status: the config has no ssh stanza\n")
		return exitConfig
	}
	if err := sshtrust.WriteStatus(stdout, cfg.SSH.Trust(), time.Now()); err != nil {
		fmt.Fprintf(stderr, "latchkey-agent: ssh status: %v\n", err)
		return exitError
	}
	return exitOK
}
