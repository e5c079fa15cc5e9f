// Command latchkey-agent authenticates the instance to Vault and keeps
// tokens and rendered files current. See agent/ for the logic.
package main

import (
	"fmt"
	"os"

	"github.com/latchkey/latchkey/internal/version"
)

func main() {
	fmt.Fprintf(os.Stderr, "latchkey-agent %s: not implemented yet\n", version.Version)
	os.Exit(1)
}
