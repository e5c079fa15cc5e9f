package vaultclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// secure is a real Vault over TLS: the client trusts it by vault {
// ca_cert } alone.
var secure *vaulttest.Server

func TestMain(m *testing.M) {
	vaulttest.Main(m, vaulttest.Spec{Options: vaulttest.Options{TLS: true}, Into: &secure})
}

// root returns a vault/api client of the server, to set Vault up.
func root(t *testing.T) *api.Client {
	c, err := secure.NewClient(secure.RootToken)
	testkit.Must(t, err)
	return c
}

// The requests the agent makes, against a real Vault: their answers,
// Vault's 404 and 403, and the Secret fields the agent reads.
func TestAgainstVault(t *testing.T) {
	ctx := context.Background()
	testkit.Must(t, root(t).Sys().Mount("vc-kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	c := secure.AgentClient(t, secure.RootToken)

	if _, err := c.Write(ctx, "vc-kv/a", map[string]any{"k": "v", "n": 3}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Read(ctx, "vc-kv/a")
	testkit.Must(t, err)
	if s.Data["k"] != "v" || s.Data["n"] != json.Number("3") || s.RequestID == "" {
		t.Fatalf("read %+v, want the written data (numbers as json.Number) and a request id", s)
	}
	if s, err := c.Read(ctx, "vc-kv/missing"); s != nil || err != nil {
		t.Fatalf("missing secret: %v, %v; want nil, nil", s, err)
	}
	l, err := c.List(ctx, "vc-kv")
	testkit.Must(t, err)
	if keys, _ := l.Data["keys"].([]any); len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("list %v, want [a]", l.Data)
	}
	h, err := c.Health(ctx)
	testkit.Must(t, err)
	if h.Sealed || !h.Initialized || h.Version == "" {
		t.Fatalf("health %+v", h)
	}

	// A token with a TTL: the auth fields, lookup, renewal.
	tok, err := root(t).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h", Metadata: map[string]string{"role": "web"}})
	testkit.Must(t, err)
	tc := secure.AgentClient(t, tok.Auth.ClientToken)
	look, err := tc.LookupSelf(ctx)
	testkit.Must(t, err)
	if id, _ := look.TokenID(); id != tok.Auth.ClientToken {
		t.Error("lookup-self: TokenID is not the token")
	}
	if ttl, err := look.TokenTTL(); err != nil || ttl <= 0 {
		t.Errorf("lookup-self: TTL %s, %v", ttl, err)
	}
	if r, _ := look.TokenIsRenewable(); !r {
		t.Error("lookup-self: not renewable")
	}
	if p, _ := look.TokenPolicies(); len(p) != 1 || p[0] != "default" {
		t.Errorf("lookup-self: policies %v", p)
	}
	ren, err := tc.RenewSelf(ctx, 0)
	testkit.Must(t, err)
	if ren.Auth == nil || ren.Auth.ClientToken != tok.Auth.ClientToken || ren.Auth.LeaseDuration <= 0 || !ren.Auth.Renewable ||
		ren.Auth.Accessor == "" || ren.Auth.Metadata["role"] != "web" || len(ren.Auth.TokenPolicies) == 0 {
		t.Fatalf("renew-self auth %+v", ren.Auth)
	}

	// Response wrapping and unwrapping (the sink's wrap_ttl, approle's
	// wrapped secret id).
	w := tc.Clone()
	w.SetWrapTTL("5m")
	ws, err := w.Write(ctx, "sys/wrapping/wrap", map[string]any{"x": "y"})
	testkit.Must(t, err)
	if ws.WrapInfo == nil || ws.WrapInfo.Token == "" || ws.WrapInfo.TTL != 300 {
		t.Fatalf("wrap info %+v", ws.WrapInfo)
	}
	un, err := secure.AgentClient(t, ws.WrapInfo.Token).Unwrap(ctx)
	testkit.Must(t, err)
	if un.Data["x"] != "y" {
		t.Fatalf("unwrapped %v", un.Data)
	}

	// Vault's 403 carries the status and Vault's reason, never the token.
	denied := secure.AgentClient(t, "hvs.not-a-token-0123456789")
	_, err = denied.Write(ctx, "vc-kv/a", map[string]any{"k": "secret-value-42"})
	var re *vaultclient.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || !strings.Contains(strings.Join(re.Errors, " "), "permission denied") {
		t.Fatalf("err = %v, want Vault's 403 permission denied", err)
	}
	for _, secret := range []string{"hvs.not-a-token-0123456789", "secret-value-42"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q holds a secret", err)
		}
	}
	if !strings.Contains(err.Error(), "PUT /v1/vc-kv/a: 403") {
		t.Errorf("error %q does not name method, path and status", err)
	}
	// A write to nothing is Vault's 404 as an error.
	_, err = c.Write(ctx, "no-such-mount/x", map[string]any{"k": "v"})
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("write to no mount: %v, want a 404 ResponseError", err)
	}

	// The raw read answers with any status, unauthenticated.
	resp, err := vaultclient.New(secure.ClientConfig())
	testkit.Must(t, err)
	raw, err := resp.ReadRaw(ctx, "vc-kv/a")
	testkit.Must(t, err)
	raw.Body.Close()
	if raw.StatusCode != http.StatusForbidden {
		t.Fatalf("raw read without a token: %d, want 403", raw.StatusCode)
	}
}

// Without the CA the client does not trust the server.
func TestAgainstVaultRefusesUntrusted(t *testing.T) {
	cfg := secure.ClientConfig()
	cfg.CACert = ""
	c, err := vaultclient.New(cfg)
	testkit.Must(t, err)
	if _, err := c.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}
