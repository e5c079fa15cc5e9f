// Command latchkey-ssh-helper verifies a Vault SSH one-time password for
// sshd's PAM stack (pam_exec); see the README and package pam.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
