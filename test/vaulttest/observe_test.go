package vaulttest

import (
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// What passes through the kit's clients is remembered for the secret scan:
// an OTP Vault issued, a token it created, a value written to KV; not the
// parameters of a request (the OTP's IP) nor settings.
func TestObserveRemembers(t *testing.T) {
	c := plain.Client
	if err := c.Sys().Mount("observe-ssh", &api.MountInput{Type: "ssh"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Mount("observe-kv", &api.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("observe-ssh/roles/web", map[string]any{"key_type": "otp", "default_user": "observer-user", "cidr_list": "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	otp, err := c.Logical().Write("observe-ssh/creds/web", map[string]any{"ip": "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{TTL: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("observe-kv/app", map[string]any{"password": "observed-kv-value"}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		text string
		want bool
	}{
		"OTP":               {otp.Data["key"].(string), true},
		"token":             {tok.Auth.ClientToken, true},
		"KV value":          {"observed-kv-value", true},
		"root token":        {plain.RootToken, true},
		"request parameter": {"127.0.0.1", false},
		"role setting":      {"observer-user", false},
		"ordinary log line": {"template rendered", false},
	}
	for name, tc := range tests {
		if got := secretscan.Holds("log: " + tc.text); got != tc.want {
			t.Errorf("%s: remembered = %v, want %v", name, got, tc.want)
		}
	}
}
