package auth

import (
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Clone returns a client like c, sharing its HTTP client and hooks, holding
// token ("" for none), in namespace ("" keeps c's). The error is always
// nil; it stays for callers written when cloning could fail.
func Clone(c *vaultclient.Client, token, namespace string) (*vaultclient.Client, error) {
	n := c.Clone()
	n.SetToken(token)
	if namespace != "" {
		n.SetNamespace(namespace)
	}
	return n, nil
}
