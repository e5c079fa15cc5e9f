package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
)

// Defects, token_file: a token that could not be renewed further was
// "logged in again" at two thirds of what it had left, over and over (the
// file holds the same token: each round bumped the login, and templates
// fetched their leases again each time), until Vault's TTL, counted in whole
// seconds, read 0 and the agent took the dying token for one that never
// expires and held it, saying so in STATUS=, for up to a minute after it
// died. A new token written to the file was not read until then either.
// Now the token is held to its end with one warning, the file is watched,
// and a new token in it is used within seconds.
func TestTokenFileLifecycle(t *testing.T) {
	tests := map[string]struct {
		create *api.TokenCreateRequest
		// replaceAfter is when the test writes another token to the file.
		replaceAfter time.Duration
		// wantHeld: the agent says it holds the token to its end.
		wantHeld bool
	}{
		"non-renewable token held to its end, then the file's new one": {
			create:       &api.TokenCreateRequest{TTL: "6s", Renewable: new(bool), Policies: []string{"default"}},
			replaceAfter: 8 * time.Second,
			wantHeld:     true,
		},
		"a new token in the file replaces a long-lived one": {
			create:       &api.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}},
			replaceAfter: time.Second,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := srv.Client.Auth().Token().Create(tc.create)
			testkit.Must(t, err)
			tokFile, sink := filepath.Join(dir, "in-token"), filepath.Join(dir, "token")
			testkit.WriteFile(t, tokFile, first.Auth.ClientToken+"\n")
			cfg := filepath.Join(dir, "agent.hcl")
			testkit.WriteFile(t, cfg, fmt.Sprintf(`latchkey {
  state_dir = %q
}
auto_auth {
  method "token_file" {
    min_backoff = "1s"
    max_backoff = "2s"
    config = {
      token_file_path = %q
    }
  }
  sink "file" {
    config = {
      path = %q
    }
  }
}
`, filepath.Join(dir, "state"), tokFile, sink))
			a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+srv.Addr)
			testkit.Eventually(t, "the first token", func() bool { return testkit.ReadFile(sink) == first.Auth.ClientToken })
			time.Sleep(tc.replaceAfter)
			if n := strings.Count(a.stderr.String(), `"msg":"logged in"`); n != 1 {
				t.Errorf("%d logins with the file's one token before it was replaced, want 1", n)
			}
			if held := strings.Contains(a.stderr.String(), "holding it until it expires"); held != tc.wantHeld {
				t.Errorf("held to its end = %v, want %v", held, tc.wantHeld)
			}
			if strings.Contains(a.stderr.String(), "does not expire") {
				t.Error("a token that expires was taken for one that does not")
			}
			second, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
			testkit.Must(t, err)
			testkit.WriteFile(t, tokFile, second.Auth.ClientToken+"\n")
			start := time.Now()
			testkit.Eventually(t, "the file's new token in the sink", func() bool { return testkit.ReadFile(sink) == second.Auth.ClientToken })
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the new token took %s to reach the sink", took)
			}
			if !tc.wantHeld {
				// Replaced, not revoked: the old token is the operator's.
				c, err := srv.NewClient(first.Auth.ClientToken)
				testkit.Must(t, err)
				if _, err := c.Auth().Token().LookupSelf(); err != nil {
					t.Errorf("the replaced token no longer works: %v", err)
				}
			}
			if code := a.stop(t); code != 0 {
				t.Errorf("exit code %d", code)
			}
		})
	}
}
