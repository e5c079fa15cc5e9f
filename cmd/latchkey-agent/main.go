// Command latchkey-agent proves the instance's identity to Vault, keeps its
// token alive and writes it (and rendered templates) into files; see the
// README and package agent/runner.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
