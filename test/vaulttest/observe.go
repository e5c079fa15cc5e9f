package vaulttest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// observe makes c remember, for the package's secret scan, every secret
// that passes through it: the tokens, secret ids, OTPs, private keys and
// passwords in Vault's answers, and the string values a test writes to a
// secret path (anything but sys/, auth/, role, config and operation paths
// such as ssh/creds/ROLE, whose values are settings or parameters).
func observe(c *api.Client) *api.Client {
	return c.WithRequestCallbacks(func(r *api.Request) {
		if (r.Method == http.MethodPut || r.Method == http.MethodPost) && secretPath(r.URL.Path) {
			rememberStrings(r.Obj)
		}
	}).WithResponseCallbacks(func(r *api.Response) {
		if r == nil || r.Response == nil || r.Body == nil {
			return
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return
		}
		var s api.Secret
		if json.Unmarshal(b, &s) != nil {
			return
		}
		rememberSecret(&s)
	})
}

// secretPath reports whether a write to the API path p (/v1/...) carries
// secret values rather than settings.
func secretPath(p string) bool {
	p = strings.TrimPrefix(p, "/v1/")
	if strings.HasPrefix(p, "sys/") || strings.HasPrefix(p, "auth/") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "roles", "role", "config", "keys", "creds", "issue", "sign", "verify", "code",
			"encrypt", "decrypt", "hmac", "generate", "rotate", "login", "tidy", "revoke", "renew",
			"lookup", "wrap", "unwrap", "intermediate", "root":
			return false // a request's parameters, not a secret stored
		}
	}
	return true
}

// rememberSecret remembers the secret fields of one answer of Vault.
func rememberSecret(s *api.Secret) {
	if s.Auth != nil {
		secretscan.Remember(s.Auth.ClientToken)
	}
	if s.WrapInfo != nil {
		secretscan.Remember(s.WrapInfo.Token)
	}
	for _, k := range []string{"secret_id", "key", "token", "private_key", "password", "client_token"} {
		if v, ok := s.Data[k].(string); ok {
			if k == "key" && s.Data["key_type"] != "otp" {
				continue // a transit or TOTP key name, not a secret
			}
			secretscan.Remember(v)
		}
	}
}

// rememberStrings remembers every string in v (maps and lists walked).
func rememberStrings(v any) {
	switch x := v.(type) {
	case string:
		secretscan.Remember(x)
	case map[string]any:
		for _, e := range x {
			rememberStrings(e)
		}
	case map[string]string:
		for _, e := range x {
			secretscan.Remember(e)
		}
	case []any:
		for _, e := range x {
			rememberStrings(e)
		}
	}
}
