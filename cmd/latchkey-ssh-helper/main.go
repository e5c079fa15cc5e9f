// Command latchkey-ssh-helper verifies a Vault SSH one-time password for
// sshd through pam_exec. See pam/ for the logic.
package main

import (
	"fmt"
	"os"

	"github.com/latchkey/latchkey/internal/version"
)

func main() {
	fmt.Fprintf(os.Stderr, "latchkey-ssh-helper %s: not implemented yet\n", version.Version)
	os.Exit(1)
}
