package auth

import (
	"fmt"

	"github.com/hashicorp/vault/api"
)

// Clone returns a client like c, sharing its HTTP client and hooks, holding
// token ("" for none), in namespace ("" keeps c's).
//
// api.Client.Clone alone drops c's headers (the vault stanza's namespace
// among them) and re-reads VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS
// from the environment, all of which vaultclient.New deliberately ignores.
func Clone(c *api.Client, token, namespace string) (*api.Client, error) {
	n, err := c.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	n.SetHeaders(c.Headers())
	n.SetToken(token)
	if namespace != "" {
		n.SetNamespace(namespace)
	}
	return n, nil
}
