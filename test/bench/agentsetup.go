package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// The Vault side every agent section shares: KV v2 secrets, a PKI role and
// an AppRole whose tokens are short-lived, so that renewals and re-logins
// happen inside the window.
const (
	kvMount  = "kvb"
	pkiMount = "pkib"
	roleName = "bench"
)

// tokenTTL is the AppRole tokens' TTL (BENCH_TOKEN_TTL, default 15s); their
// max TTL is four times that.
func tokenTTL() time.Duration { return envDuration("BENCH_TOKEN_TTL", 15*time.Second) }

// seedVault mounts and fills what the agents read, with values of
// generation gen (the fleet restarts Vault and seeds generation 2), and
// writes the AppRole's role and secret id files into b.dir. roleID and
// secretID are fixed so that a restarted Vault accepts the same files.
func (b *bench) seedVault(srv *vaulttest.Server, nSecrets, gen int) error {
	c := srv.Client
	if err := c.Sys().Mount(kvMount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return err
	}
	for i := 0; i < nSecrets; i++ {
		if err := b.writeSecret(c, i, gen); err != nil {
			return err
		}
	}
	if err := c.Sys().Mount(pkiMount, &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
		return err
	}
	if _, err := c.Logical().Write(pkiMount+"/root/generate/internal", map[string]any{"common_name": "bench CA", "ttl": "87600h"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write(pkiMount+"/roles/r", map[string]any{"allow_any_name": true, "max_ttl": "24h", "key_type": "ec", "key_bits": 256}); err != nil {
		return err
	}
	if err := c.Sys().PutPolicy(roleName, `path "*" { capabilities = ["create", "read", "update", "delete", "list"] }`); err != nil {
		return err
	}
	if err := c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		return err
	}
	ttl := tokenTTL()
	if _, err := c.Logical().Write("auth/approle/role/"+roleName, map[string]any{
		"token_policies": roleName, "token_ttl": ttl.String(), "token_max_ttl": (4 * ttl).String(),
		"secret_id_num_uses": 0, "secret_id_ttl": 0,
	}); err != nil {
		return err
	}
	if _, err := c.Logical().Write("auth/approle/role/"+roleName+"/role-id", map[string]any{"role_id": "bench-role-id"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write("auth/approle/role/"+roleName+"/custom-secret-id", map[string]any{"secret_id": "bench-secret-id"}); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.dir, "role_id"), []byte("bench-role-id"), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.dir, "secret_id"), []byte("bench-secret-id"), 0o600)
}

func (b *bench) writeSecret(c *api.Client, i, gen int) error {
	_, err := c.Logical().Write(fmt.Sprintf("%s/data/s%d", kvMount, i), map[string]any{"data": map[string]any{
		"user": fmt.Sprintf("u%d", i), "password": fmt.Sprintf("p%d-gen%d", i, gen)}})
	return err
}

// agentConf is one agent config, the same text for latchkey-agent and
// Vault Agent but for the directory it writes into.
type agentConf struct {
	templates, secrets int
	pki                bool   // one pkiCert template
	db                 string // a database/creds role to template ("" = none)
	extra              string // more top-level HCL
	maxBackoff         string // auto_auth method max_backoff ("" = default)
}

// files is how many files one start of either agent writes: every
// template's destination and the token sink.
func (ac agentConf) files() int {
	n := ac.templates + 1
	if ac.pki {
		n++
	}
	if ac.db != "" {
		n++
	}
	return n
}

// write writes dir/agent.hcl and returns its path and the destinations.
func (ac agentConf) write(dir, vaultAddr, roleDir string) (string, []string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	var w strings.Builder
	fmt.Fprintf(&w, "vault {\n  address = %q\n}\n", vaultAddr)
	backoff := ""
	if ac.maxBackoff != "" {
		backoff = fmt.Sprintf("    min_backoff = \"1s\"\n    max_backoff = %q\n", ac.maxBackoff)
	}
	fmt.Fprintf(&w, `auto_auth {
  method "approle" {
    mount_path = "auth/approle"
%s    config = {
      role_id_file_path = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" {
    config = {
      path = %q
    }
  }
}
`, backoff, filepath.Join(roleDir, "role_id"), filepath.Join(roleDir, "secret_id"), filepath.Join(dir, "token"))
	w.WriteString(ac.extra)
	var dests []string
	tmpl := func(contents, name string) {
		d := filepath.Join(dir, name)
		dests = append(dests, d)
		fmt.Fprintf(&w, "template {\n  contents = %q\n  destination = %q\n}\n", contents, d)
	}
	for i := 0; i < ac.templates; i++ {
		tmpl(fmt.Sprintf(`{{ with secret "%s/data/s%d" }}{{ .Data.data.user }}:{{ .Data.data.password }}{{ end }}`, kvMount, i%ac.secrets), fmt.Sprintf("t%d", i))
	}
	if ac.pki {
		tmpl(fmt.Sprintf(`{{ with pkiCert "%s/issue/r" "common_name=bench.example.com" "ttl=1h" }}{{ .Cert }}{{ .Key }}{{ end }}`, pkiMount), "cert.pem")
	}
	if ac.db != "" {
		tmpl(fmt.Sprintf(`{{ with secret "database/creds/%s" }}{{ .Data.username }}:{{ .Data.password }}{{ end }}`, ac.db), "db")
	}
	p := filepath.Join(dir, "agent.hcl")
	return p, dests, os.WriteFile(p, []byte(w.String()), 0o600)
}

// agentProc is one running agent of either program, behind its own
// counting proxy.
type agentProc struct {
	name  string // "latchkey" or "vault"
	d     *daemon
	proxy *vaulttest.CountingProxy
	start time.Time
	dests []string
	dir   string
}

// startAgent starts prog ("latchkey" or "vault") on ac in dir, behind a
// new counting proxy in front of b.vault.
func (b *bench) startAgent(prog, dir string, ac agentConf) (*agentProc, error) {
	proxy, err := vaulttest.StartCountingProxy(b.vault.Addr)
	if err != nil {
		return nil, err
	}
	conf, dests, err := ac.write(dir, proxy.URL, b.dir)
	if err != nil {
		proxy.Close()
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	a := &agentProc{name: prog, proxy: proxy, dests: dests, dir: dir, start: time.Now()}
	if prog == "latchkey" {
		var state string
		if state, err = stateConf(dir); err == nil {
			a.d, err = startDaemon(filepath.Join(dir, "log"), env, b.agent, "-config", conf, "-config", state, "-log-level", "warn")
		}
	} else {
		a.d, err = startDaemon(filepath.Join(dir, "log"), env, b.vaultBin, "agent", "-config="+conf, "-log-level=warn")
	}
	if err != nil {
		proxy.Close()
		return nil, err
	}
	return a, nil
}

// stateConf writes dir/state.hcl, a second latchkey config giving the
// agent dir/state as its state_dir, and returns its path: one agent per
// state directory (the agent locks it), and the shared config stays one
// that Vault Agent reads too.
func stateConf(dir string) (string, error) {
	p := filepath.Join(dir, "state.hcl")
	return p, os.WriteFile(p, fmt.Appendf(nil, "latchkey {\n  state_dir = %q\n}\n", filepath.Join(dir, "state")), 0o644)
}

func (a *agentProc) stop() {
	a.d.stop()
	a.proxy.Close()
}

// waitRendered waits until every destination exists and is not empty, and
// returns the time since the agent started.
func (a *agentProc) waitRendered(limit time.Duration) (time.Duration, error) {
	deadline := a.start.Add(limit)
	for i := 0; ; {
		for ; i < len(a.dests); i++ {
			st, err := os.Stat(a.dests[i])
			if err != nil || st.Size() == 0 {
				break
			}
		}
		if i == len(a.dests) {
			return time.Since(a.start), nil
		}
		if a.d.exited() {
			return 0, fmt.Errorf("%s agent exited before rendering; its log:\n%s", a.name, tail(filepath.Join(a.dir, "log")))
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s agent: %s not rendered after %s; its log:\n%s", a.name, a.dests[i], limit, tail(filepath.Join(a.dir, "log")))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func tail(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
