package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// bootConfig is a token_file config with one template, so that READY=1
// needs a login and a render.
func bootConfig(t *testing.T) (cfg, dest string) {
	t.Helper()
	dir := t.TempDir()
	dest = filepath.Join(dir, "out")
	return rootTokenConfig(t, dir, fmt.Sprintf("template {\n  contents = \"ok\"\n  destination = %q\n}\n", dest)), dest
}

// checkBootLog fails unless the log holds the start line, one "vault
// unreachable" warning and one "login failed" line per attempt, nothing
// else: no flood while Vault is away.
func checkBootLog(t *testing.T, log string) {
	t.Helper()
	lines := strings.Count(log, "\n")
	if n := strings.Count(log, "vault unreachable: "); n != 1 {
		t.Errorf("%d 'vault unreachable' lines, want 1", n)
	}
	if other := lines - strings.Count(log, `"msg":"login failed"`); other != 2 {
		t.Errorf("%d lines besides 'login failed', want 2 (start, vault unreachable):\n%s", other, log)
	}
}

// Vault unreachable at boot — connection cut (Vault not up yet), or a
// name that does not resolve (DNS not ready): the agent keeps trying with
// backoff, logs each attempt once, does not exit, sends no READY=1, and
// comes up by itself once Vault answers: READY=1 after the login and the
// first render.
func TestVaultUnreachableAtBoot(t *testing.T) {
	t.Run("not up yet", func(t *testing.T) {
		cfg, dest := bootConfig(t)
		proxy := vaulttest.NewTCPProxy(t, strings.TrimPrefix(srv.Addr, "http://"))
		proxy.SetMode(vaulttest.Reset)
		n := testkit.ListenNotify(t)
		a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+proxy.Addr, "NOTIFY_SOCKET="+n.Path)
		a.logged(t, `"msg":"login failed"`, 3)
		checkBootLog(t, a.stderr.String())
		for _, m := range n.Messages() {
			if m == "READY=1" {
				t.Fatalf("READY=1 with Vault unreachable: %q", n.Messages())
			}
		}
		proxy.SetMode(vaulttest.Pass)
		n.WaitFor(t, "READY=1", 0)
		if got := testkit.ReadFile(dest); got != "ok" {
			t.Errorf("READY=1 with %s = %q", dest, got)
		}
		if k := strings.Count(a.stderr.String(), "vault reachable again: "); k != 1 {
			t.Errorf("%d 'vault reachable again' lines, want 1", k)
		}
		if code := a.stop(t); code != 0 {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("name does not resolve", func(t *testing.T) {
		cfg, _ := bootConfig(t)
		n := testkit.ListenNotify(t)
		a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR=http://vault.invalid:8200", "NOTIFY_SOCKET="+n.Path)
		a.logged(t, `"msg":"login failed"`, 3)
		checkBootLog(t, a.stderr.String())
		if !strings.Contains(a.stderr.String(), "vault.invalid") {
			t.Errorf("the log does not name the address:\n%s", a.stderr.String())
		}
		for _, m := range n.Messages() {
			if m == "READY=1" {
				t.Fatalf("READY=1 with Vault unresolvable: %q", n.Messages())
			}
		}
		if code := a.stop(t); code != 0 {
			t.Errorf("exit %d, want 0: still running and stopped by SIGTERM", code)
		}
	})
}
