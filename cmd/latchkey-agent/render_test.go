package main

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/agent/config"
)

// The render subcommand's client bounds its connections as the agent's
// does: template_config { max_connections_per_host }, default 10.
func TestRenderClientMaxConnectionsPerHost(t *testing.T) {
	const auth = "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/nonexistent\" }\n  }\n}\n"
	tests := map[string]struct {
		extra string
		want  int
	}{
		"configured": {"template_config {\n  max_connections_per_host = 4\n}\n", 4},
		"default":    {"", 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			write(t, p, auth+tc.extra)
			cfg, err := config.Load(p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := renderClient(cfg, func(k string) string {
				if k == "VAULT_ADDR" {
					return "http://127.0.0.1:1"
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			tr, ok := c.CloneConfig().HttpClient.Transport.(*http.Transport)
			if !ok {
				t.Fatalf("transport %T", c.CloneConfig().HttpClient.Transport)
			}
			if tr.MaxConnsPerHost != tc.want {
				t.Errorf("MaxConnsPerHost = %d, want %d", tr.MaxConnsPerHost, tc.want)
			}
		})
	}
}
