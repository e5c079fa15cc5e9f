package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// Leases belong to the token that created them: when the agent replaces its
// token (max TTL reached) Vault revokes the old token's leases at its
// expiry. The agent must then hold leases of the new token — without
// fetching again, or rewriting, what has no lease (KV).
func TestReLoginReplacesOnlyTheOldTokensLeases(t *testing.T) {
	dir := t.TempDir()
	c := srv.Client
	srv.MountT(t, "relogin-ssh", &api.MountInput{Type: "ssh", Config: api.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "1h"}})
	srv.MountT(t, "relogin-kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	if _, err := c.Logical().Write("relogin-ssh/roles/otp", map[string]any{"key_type": "otp", "default_user": "app", "cidr_list": "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("relogin-kv/data/app", map[string]any{"data": map[string]any{"k": "static"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("relogin", `path "relogin-ssh/creds/otp" { capabilities = ["update"] }
path "relogin-kv/*" { capabilities = ["read", "list"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	cfg, sink := approleConfig(t, dir, "approle-relogin", "")
	// Short-lived tokens: a new login every few seconds.
	if _, err := c.Logical().Write("auth/approle-relogin/role/web", map[string]any{
		"token_ttl": "2s", "token_max_ttl": "4s", "token_policies": "relogin",
	}); err != nil {
		t.Fatal(err)
	}
	otp, kv := filepath.Join(dir, "otp.txt"), filepath.Join(dir, "kv.txt")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `template {
  contents    = "{{ with secret \"relogin-ssh/creds/otp\" \"ip=127.0.0.1\" }}{{ .LeaseID }}{{ end }}"
  destination = %q
}
template {
  contents    = "{{ with secret \"relogin-kv/app\" }}{{ .Data.data.k }}{{ end }}"
  destination = %q
}
`, otp, kv)
	f.Close()

	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	cmd := agentCmd([]string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 600; i++ {
			if cond() {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s; agent log:\n%s", what, stderr.String())
	}
	readFile := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	alive := func(lease string) bool {
		_, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": lease})
		return err == nil
	}
	waitFor("both templates", func() bool { return readFile(otp) != "" && readFile(kv) == "static" })
	first, firstToken := readFile(otp), readFile(sink)
	kvInfo, err := os.Stat(kv)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(first) {
		t.Fatalf("the first lease %s is not alive", first)
	}
	// The first token reaches its max TTL; Vault revokes its lease.
	waitFor("a new login", func() bool { t := readFile(sink); return t != "" && t != firstToken })
	waitFor("the first token's lease revoked with it", func() bool { return !alive(first) })
	waitFor("a live lease of a newer token rendered", func() bool {
		now := readFile(otp)
		return now != first && now != "" && alive(now)
	})
	if n := proxy.Count("GET", "/v1/relogin-kv/data/app"); n != 1 {
		t.Errorf("the KV secret was fetched %d times across re-logins, want 1", n)
	}
	if fi, err := os.Stat(kv); err != nil || !fi.ModTime().Equal(kvInfo.ModTime()) {
		t.Errorf("the KV destination was rewritten by a re-login (%v)", err)
	}
}
