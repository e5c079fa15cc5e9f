package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// tokenAccessors is how many tokens Vault holds (LIST auth/token/accessors,
// as root): a render that leaves its login token alive adds one.
func tokenAccessors(t *testing.T) int {
	t.Helper()
	s, err := srv.Client.Logical().List("auth/token/accessors")
	testkit.Must(t, err)
	if s == nil {
		return 0
	}
	keys, _ := s.Data["keys"].([]any)
	return len(keys)
}

// Defect: render -dry-run sent a plain `secret` read of a dynamic secret
// (database/creds/...), which created a role in PostgreSQL and a lease, and
// left its login token alive. A dry run now reads only mounts Vault says
// are static (kv, cubbyhole) and refuses the others, naming the template,
// unless -issue, which revokes the leases it obtained and says so; every
// dry run revokes its own login token. Against a real database engine on a
// real PostgreSQL.
func TestRenderDryRunIssuesNoCredentials(t *testing.T) {
	dir := t.TempDir()
	pg := vaulttest.StartPostgres(t)
	srv.DatabaseMount(t, "db-dry", pg, "1h", "2h")
	srv.MountT(t, "kv-dry", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	_, err := srv.Client.Logical().Write("kv-dry/data/app", map[string]any{"data": map[string]any{"password": "hunter2"}})
	testkit.Must(t, err)
	testkit.Must(t, srv.Client.Sys().PutPolicy("render-dry", `
path "kv-dry/data/*" { capabilities = ["read"] }
path "db-dry/creds/app" { capabilities = ["read"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`))
	cfg, _ := approleConfig(t, dir, "approle-render-dry", "")
	_, err = srv.Client.Logical().Write("auth/approle-render-dry/role/web", map[string]any{"token_ttl": "1h", "token_policies": "render-dry"})
	testkit.Must(t, err)
	kvDest, dbDest, noDest := filepath.Join(dir, "kv.env"), filepath.Join(dir, "db.env"), filepath.Join(dir, "none.env")
	testkit.WriteFile(t, cfg, testkit.ReadFile(cfg)+fmt.Sprintf(`template {
  contents    = "{{ with secret \"kv-dry/app\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
template {
  contents    = "{{ with secret \"db-dry/creds/app\" }}user={{ .Data.username }} password={{ .Data.password }}{{ end }}"
  destination = %q
}
template {
  contents    = "{{ with secret \"no-such-mount/app\" }}{{ .Data }}{{ end }}"
  destination = %q
}
`, kvDest, dbDest, noDest))
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	secretID := filepath.Join(dir, "secret-id")
	roles := func() string { return pg.Query(t, `SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'`) }
	creds := func() int { return proxy.Count("GET", "/v1/db-dry/creds/app") }
	revokeSelf := func() int { return proxy.Count("PUT", "/v1/auth/token/revoke-self") }
	revokeLease := func() int { return proxy.Count("PUT", "/v1/sys/leases/revoke") }
	run := func(args ...string) (int, string) {
		t.Helper()
		cmd := agentCmdEnv(append([]string{"render", "-config", cfg}, args...), "VAULT_ADDR="+proxy.URL)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		code := exitCode(t, cmd)
		return code, stderr.String()
	}
	for _, tc := range []struct {
		name                            string
		args                            []string
		code                            int
		creds, revokeSelf, revokeLeases int
		stderr                          []string
	}{
		{"kv: read", []string{"-template", kvDest, "-dry-run"}, exitOK, 0, 1, 0, nil},
		{"database creds refused without -issue", []string{"-template", dbDest, "-dry-run"}, exitUsage, 0, 2, 0,
			[]string{"template " + dbDest + ":", `vault.read(db-dry/creds/app)`, `type "database"`, "add -issue"}},
		{"a mount Vault will not describe: refused (fail closed)", []string{"-template", noDest, "-dry-run"}, exitUsage, 0, 3, 0,
			[]string{"template " + noDest + ":", "Vault would not say which mount no-such-mount/app is on", "add -issue"}},
		{"database creds with -issue: issued, then revoked", []string{"-template", dbDest, "-dry-run", "-issue"}, exitOK, 1, 4, 1,
			[]string{"issued vault.read(db-dry/creds/app)", "obtained lease db-dry/creds/app/", "; revoked"}},
	} {
		before := tokenAccessors(t)
		code, stderr := run(tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.name, code, tc.code, stderr)
		}
		if creds() != tc.creds || revokeSelf() != tc.revokeSelf || revokeLease() != tc.revokeLeases {
			t.Errorf("%s: %d creds reads, %d revoke-self, %d lease revocations so far; want %d, %d, %d\n%s",
				tc.name, creds(), revokeSelf(), revokeLease(), tc.creds, tc.revokeSelf, tc.revokeLeases, stderr)
		}
		for _, s := range tc.stderr {
			if !strings.Contains(stderr, s) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, s, stderr)
			}
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("%s: a secret on stderr:\n%s", tc.name, stderr)
		}
		// Nothing left behind: no database role, no lease, no token.
		if n := roles(); n != "0" {
			t.Errorf("%s: %s database roles exist after the dry run, want 0", tc.name, n)
		}
		if n := tokenAccessors(t); n != before {
			t.Errorf("%s: %d tokens after the dry run, %d before: its login token is alive", tc.name, n, before)
		}
		if testkit.ReadFile(secretID) == "" {
			t.Fatalf("%s: the dry run consumed the secret id file", tc.name)
		}
	}
	if s, err := srv.Client.Logical().List("sys/leases/lookup/db-dry/creds/app/"); err != nil || s != nil {
		t.Errorf("leases left under db-dry/creds/app: %v (%v)", s, err)
	}
	for _, p := range []string{kvDest, dbDest, noDest} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("a dry run wrote %s (%v)", p, err)
		}
	}

	// Without -dry-run: a render that obtained no lease revokes its token
	// (a one-off command's, alive for its TTL otherwise) ...
	before := tokenAccessors(t)
	if code, stderr := run("-template", kvDest); code != exitOK || testkit.ReadFile(kvDest) != "hunter2" {
		t.Fatalf("render of the kv template: exit %d, file %q\n%s", code, testkit.ReadFile(kvDest), stderr)
	}
	if n := tokenAccessors(t); n != before || revokeSelf() != 5 {
		t.Errorf("render without leases: %d tokens after, %d before; %d revoke-self, want 5", n, before, revokeSelf())
	}
	// ... and one whose leases the destination uses keeps it, and says so:
	// revoking it would revoke the database credentials just written.
	testkit.NewSecretID(t, srv.Client, "approle-render-dry", secretID)
	code, stderr := run("-template", dbDest)
	if code != exitOK || !strings.Contains(testkit.ReadFile(dbDest), "user=v-") {
		t.Fatalf("render of the database template: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "the login token is left to expire") || revokeSelf() != 5 || roles() != "1" {
		t.Errorf("render with a lease: %d revoke-self (want 5), %s database roles (want 1)\n%s", revokeSelf(), roles(), stderr)
	}
	if n := tokenAccessors(t); n != before+1 {
		t.Errorf("render with a lease: %d tokens, want %d (its token kept)", n, before+1)
	}
	// Leave the database role to nobody: revoke what that render obtained.
	_, err = srv.Client.Logical().Write("sys/leases/revoke-prefix/db-dry/creds/app", nil)
	testkit.Must(t, err)
}

// A dry run logging in with token_file uses a token that is not its own:
// it is not revoked.
func TestRenderDryRunKeepsATokenFileToken(t *testing.T) {
	dir := t.TempDir()
	srv.MountT(t, "kv-dry-tf", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}})
	_, err := srv.Client.Logical().Write("kv-dry-tf/app", map[string]any{"k": "v"})
	testkit.Must(t, err)
	tok, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{TTL: "1h"})
	testkit.Must(t, err)
	tokenFile, dest := filepath.Join(dir, "token"), filepath.Join(dir, "out")
	testkit.WriteFile(t, tokenFile, tok.Auth.ClientToken)
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, fmt.Sprintf(`auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
template {
  contents    = "{{ with secret \"kv-dry-tf/app\" }}{{ .Data.k }}{{ end }}"
  destination = %q
}
`, tokenFile, filepath.Join(dir, "state"), dest))
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	for _, args := range [][]string{{"-dry-run"}, nil} {
		cmd := agentCmdEnv(append([]string{"render", "-config", cfg, "-template", dest}, args...), "VAULT_ADDR="+proxy.URL)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if code := exitCode(t, cmd); code != exitOK {
			t.Fatalf("render %v: exit %d\n%s", args, code, stderr.String())
		}
		if n := proxy.Count("PUT", "/v1/auth/token/revoke-self"); n != 0 {
			t.Errorf("render %v revoked the token_file token (%d revoke-self)", args, n)
		}
		if _, err := srv.Client.Auth().Token().Lookup(tok.Auth.ClientToken); err != nil {
			t.Errorf("render %v: the token_file token no longer works: %v", args, err)
		}
	}
}
