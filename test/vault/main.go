// Command vault is HashiCorp Vault's own CLI, built from the hashicorp/vault
// module for latchkey's tests (`vault server -dev`, `vault agent`).
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
