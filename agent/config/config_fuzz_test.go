package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Any agent config file: no panic, and a refusal names the file.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		"vault {\n  address = \"https://v:8200\"\n  addresses = [\"https://a\", \"https://b\"]\n  timeout = \"3s\"\n}\n" +
			"auto_auth {\n  method \"approle\" {\n    config = { role_id_file_path = \"/r\" }\n  }\n  sink \"file\" {\n    config = { path = \"/t\" }\n  }\n}\n",
		"auto_auth { method { type = \"token_file\" config = { token_file_path = \"/t\" } } }\ntemplate {\n  contents = \"{{ .x }}\"\n  destination = \"/tmp/x\"\n}\n",
		"template_config {\n  static_secret_render_interval = \"1s\"\n}\n",
		"vault = { retry = { num_retries = -1 } }", "cache {}", "x", "\xff",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		p := filepath.Join(dir, "agent.hcl")
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
