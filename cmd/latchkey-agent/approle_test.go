package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// Defects: with remove_secret_id_file_after_reading = false and a
// response-wrapped secret id, every re-login (the token at its max TTL)
// unwrapped the file's spent wrapping token again and failed for ever
// ("wrapping token is not valid or does not exist"); and a role id file
// removed after the first login made every re-login fail, where Vault Agent
// goes on with the role id it read. Both now go on with what was read, also
// across a reload that changes the auth config but keeps the method.
func TestApproleCredentialsKeptForReLogins(t *testing.T) {
	tests := map[string]struct {
		wrapped      bool // the secret id file holds a wrapping token
		keepFile     bool // remove_secret_id_file_after_reading = false
		afterLogin   func(t *testing.T, dir string)
		wantFileLeft bool
	}{
		"wrapped secret id, file kept":    {wrapped: true, keepFile: true, wantFileLeft: true},
		"wrapped secret id, file removed": {wrapped: true},
		"role id file removed": {
			afterLogin: func(t *testing.T, dir string) { testkit.Must(t, os.Remove(filepath.Join(dir, "role-id"))) },
		},
		"role id file emptied": {
			keepFile:     true,
			wantFileLeft: true,
			afterLogin:   func(t *testing.T, dir string) { testkit.WriteFile(t, filepath.Join(dir, "role-id"), "\n") },
		},
	}
	n := 0
	for name, tc := range tests {
		n++
		mount := fmt.Sprintf("approle-kept-%d", n)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, sink := approleConfig(t, dir, mount, "")
			secretID := filepath.Join(dir, "secret-id")
			// A max TTL of 3s: the agent logs in again every few seconds.
			_, err := srv.Client.Logical().Write("auth/"+mount+"/role/web", map[string]any{"token_ttl": "2s", "token_max_ttl": "3s"})
			testkit.Must(t, err)
			var extra []string
			if tc.keepFile {
				extra = append(extra, "remove_secret_id_file_after_reading = false")
			}
			if tc.wrapped {
				wc, err := srv.Client.Clone()
				testkit.Must(t, err)
				wc.SetToken(srv.RootToken)
				wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
				w, err := wc.Logical().Write("auth/"+mount+"/role/web/secret-id", nil)
				testkit.Must(t, err)
				secretscan.Remember(w.WrapInfo.Token)
				testkit.WriteFile(t, secretID, w.WrapInfo.Token)
				extra = append(extra, fmt.Sprintf("secret_id_response_wrapping_path = %q", "auth/"+mount+"/role/web/secret-id"))
			}
			text := strings.Replace(testkit.ReadFile(cfg), "    config = {\n", "    config = {\n      "+strings.Join(extra, "\n      ")+"\n", 1)
			testkit.WriteFile(t, cfg, text)
			a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+srv.Addr)
			tokens := map[string]bool{}
			waitNew := func(what string) {
				t.Helper()
				testkit.Eventually(t, what, func() bool {
					tok := testkit.ReadFile(sink)
					if tok == "" || tokens[tok] {
						return false
					}
					secretscan.Remember(tok)
					tokens[tok] = true
					return true
				})
			}
			waitNew("the first token")
			if tc.afterLogin != nil {
				tc.afterLogin(t, dir)
			}
			waitNew("a token from a re-login")
			waitNew("a token from a second re-login")
			// A reload that changes the auth config (the address moves
			// into the file) but not the method: a login at once, with
			// what was read at start.
			testkit.WriteFile(t, cfg, fmt.Sprintf("vault {\n  address = %q\n}\n", srv.Addr)+testkit.ReadFile(cfg))
			a.signal(t, syscall.SIGHUP)
			a.logged(t, "reloaded; auth changed, logging in again", 1)
			waitNew("a token after the reload")
			if log := a.stderr.String(); strings.Contains(log, "login failed") {
				t.Errorf("a login failed:\n%s", log)
			}
			if _, err := os.Stat(secretID); (err == nil) != tc.wantFileLeft {
				t.Errorf("secret id file left = %v, want %v", err == nil, tc.wantFileLeft)
			}
			if code := a.stop(t); code != 0 {
				t.Errorf("exit code %d", code)
			}
		})
	}
}
