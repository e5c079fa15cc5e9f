package config

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// Several -config files merge key by key: a value a later file sets wins,
// one it leaves unset keeps the earlier file's (or the default).
func TestMergeKeyByKey(t *testing.T) {
	const base = `auto_auth {
  method "token_file" {
    config = { token_file_path = "/t" }
  }
}
`
	tests := map[string]struct {
		first, second string
		want          TemplateConfig
		exitAfterAuth bool
	}{
		"a later stanza setting one key keeps the others": {
			base + "template_config {\n  static_secret_render_interval = \"1m\"\n  max_connections_per_host = 3\n}\n",
			"template_config {\n  exit_on_retry_failure = true\n}\n",
			withTC(func(tc *TemplateConfig) {
				tc.ExitOnRetryFailure, tc.StaticSecretRenderInterval, tc.MaxConnectionsPerHost = true, time.Minute, 3
			}),
			false,
		},
		"a later file overrides a key": {
			base + "template_config {\n  static_secret_render_interval = \"1m\"\n}\n",
			"template_config {\n  static_secret_render_interval = \"2m\"\n}\n",
			withTC(func(tc *TemplateConfig) { tc.StaticSecretRenderInterval = 2 * time.Minute }),
			false,
		},
		"exit_after_auth set false by a later file": {
			base + "exit_after_auth = true\n", "exit_after_auth = false\n",
			DefaultTemplateConfig(), false,
		},
		"exit_after_auth unset in a later file": {
			base + "exit_after_auth = true\n", "log_level = \"debug\"\n",
			DefaultTemplateConfig(), true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "b.hcl")
			testkit.WriteFile(t, a, tc.first)
			testkit.WriteFile(t, b, tc.second)
			c, err := Load(a, b)
			testkit.Must(t, err)
			if c.TemplateConfig != tc.want {
				t.Errorf("template_config = %+v, want %+v", c.TemplateConfig, tc.want)
			}
			if c.ExitAfterAuth != tc.exitAfterAuth {
				t.Errorf("exit_after_auth = %v, want %v", c.ExitAfterAuth, tc.exitAfterAuth)
			}
		})
	}
}

// withTC returns the default template_config changed by set.
func withTC(set func(*TemplateConfig)) TemplateConfig {
	tc := DefaultTemplateConfig()
	set(&tc)
	return tc
}
