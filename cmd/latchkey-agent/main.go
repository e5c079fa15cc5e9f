// Command latchkey-agent authenticates the instance to Vault and keeps
// tokens and rendered files current. See cli.go for the command line and
// agent/ for the logic.
package main

import "os"

func main() {
	os.Exit(newCLI(os.Stdout, os.Stderr, os.Getenv).run(os.Args[1:]))
}
