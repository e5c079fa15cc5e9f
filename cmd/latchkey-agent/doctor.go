package main

import (
	"context"
	"io"

	"github.com/latchkey/latchkey/agent/doctor"
	idoctor "github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// runDoctor is `latchkey-agent doctor -config ...`: one line per check (OK,
// WARN or FAIL with the fix): the config, the state directory, each sink's
// and template's destination, Vault (sys/health), and the auth method's
// metadata service. Exit 1 when a check failed.
func runDoctor(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, code := parse("latchkey-agent doctor", args, stderr)
	if o == nil {
		return code
	}
	rp := &idoctor.Report{Out: stdout}
	doctor.Run(context.Background(), doctor.Options{
		Configs: o.configs,
		Flags:   vaultclient.Config{Address: o.address, CACert: o.caCert, Namespace: o.ns},
		Getenv:  getenv,
	}, rp)
	if rp.Worst() == idoctor.Fail {
		return exitError
	}
	return exitOK
}
