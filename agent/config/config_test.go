package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// An existing Vault Agent config must load unchanged.
func TestLoadVaultAgentConfig(t *testing.T) {
	c, err := Load("testdata/vault-agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Vault.Client.Address != "https://vault.example.com:8200" || c.Vault.Client.CACert != "/etc/vault/ca.pem" || *c.Vault.NumRetries != 5 {
		t.Errorf("vault = %+v", c.Vault)
	}
	m := c.AutoAuth.Method
	if m.Type != "aws" || m.MountPath != "auth/aws-ec2" || m.Config["type"] != "ec2" || m.Config["role"] != "web" {
		t.Errorf("method = %+v", m)
	}
	if m.File != "testdata/vault-agent.hcl" || m.Line != 15 {
		t.Errorf("method position %s:%d", m.File, m.Line)
	}
	if c.AutoAuth.MinBackoff != time.Second || c.AutoAuth.MaxBackoff != 5*time.Minute {
		t.Errorf("backoff defaults %s %s", c.AutoAuth.MinBackoff, c.AutoAuth.MaxBackoff)
	}
	if len(c.AutoAuth.Sinks) != 1 || c.AutoAuth.Sinks[0].Path != "/run/vault/token" || c.AutoAuth.Sinks[0].Mode != 0o640 {
		t.Errorf("sinks = %+v", c.AutoAuth.Sinks)
	}
	if c.PidFile != "/run/vault-agent.pid" || c.LogLevel != "info" || c.StateDir != DefaultStateDir {
		t.Errorf("top level = %+v", c)
	}
	if !c.TemplateConfig.ExitOnRetryFailure || c.TemplateConfig.StaticSecretRenderInterval != 10*time.Minute || c.TemplateConfig.LeaseRenewalThreshold != 0.9 {
		t.Errorf("template_config = %+v", c.TemplateConfig)
	}
	if len(c.Templates) != 2 {
		t.Fatalf("templates = %+v", c.Templates)
	}
	t0, t1 := c.Templates[0], c.Templates[1]
	if t0.Source != "/etc/vault/templates/app.ctmpl" || *t0.Perms != 0o600 || !t0.CreateDestDirs ||
		strings.Join(t0.Exec.Command, " ") != "/bin/sh -c systemctl reload app" || t0.Exec.Timeout != 30*time.Second {
		t.Errorf("template 0 = %+v exec %+v", t0, t0.Exec)
	}
	if !strings.Contains(t1.Contents, `secret "secret/data/app"`) || strings.Join(t1.Exec.Command, " ") != "/usr/bin/touch /tmp/x" ||
		t1.Exec.Timeout != 5*time.Second || t1.Wait.Min != 2*time.Second || t1.Wait.Max != 10*time.Second || t1.Perms != nil {
		t.Errorf("template 1 = %+v exec %+v", t1, t1.Exec)
	}
}

func TestLoadUnlabeledBlocks(t *testing.T) {
	c, err := Load("testdata/unlabeled.hcl")
	if err != nil {
		t.Fatal(err)
	}
	m := c.AutoAuth.Method
	if m.Type != "approle" || m.MountPath != "auth/approle" || m.Config["remove_secret_id_file_after_reading"] != false ||
		m.Config["role_id_file_path"] != "/etc/latchkey/role-id" {
		t.Errorf("method = %+v", m)
	}
	s := c.AutoAuth.Sinks[0]
	if s.Mode != 0o600 || s.Owner != "app" || s.Group != "1001" || s.WrapTTL != 5*time.Minute {
		t.Errorf("sink = %+v", s)
	}
	if c.StateDir != "/tmp/state" {
		t.Errorf("state_dir = %q", c.StateDir)
	}
}

func TestLoadJSON(t *testing.T) {
	c, err := Load("testdata/agent.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoAuth.Method.Type != "token_file" || c.AutoAuth.Method.Config["token_file_path"] != "/etc/token" {
		t.Errorf("method = %+v", c.AutoAuth.Method)
	}
	// JSON can only write a mode in decimal: 416 == 0640 (Vault #9404).
	if s := c.AutoAuth.Sinks[0]; s.Mode != 0o640 || s.Path != "/run/t" {
		t.Errorf("sink = %+v", s)
	}
	if !c.ExitAfterAuth {
		t.Error("exit_after_auth")
	}
}

func TestLoadDirectoryMerges(t *testing.T) {
	dir := t.TempDir()
	testkit.WriteFile(t, filepath.Join(dir, "10-vault.hcl"), `vault { address = "https://a:8200" }`+"\nlog_level = \"debug\"\n")
	testkit.WriteFile(t, filepath.Join(dir, "20-auth.hcl"), minimal+"template {\n  contents = \"x\"\n  destination = \"/tmp/x\"\n}\n")
	testkit.WriteFile(t, filepath.Join(dir, "30-more.json"), `{"template": {"contents": "y", "destination": "/tmp/y"}, "vault": {"address": "https://b:8200"}}`)
	testkit.WriteFile(t, filepath.Join(dir, "README"), "not config")
	testkit.WriteFile(t, filepath.Join(dir, ".20-auth.hcl.swp"), "garbage {")
	testkit.WriteFile(t, filepath.Join(dir, ".hidden.hcl"), "garbage {")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Vault.Client.Address != "https://b:8200" || c.LogLevel != "debug" || len(c.Templates) != 2 || len(c.Files) != 3 {
		t.Errorf("merged = %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]struct{ body, want string }{
		"unsupported stanza": {
			body: "cache {\n  use_auto_auth_token = true\n}\n" + minimal,
			want: `agent.hcl:1:1: "cache" is a Vault Agent stanza latchkey-agent does not support`,
		},
		"listener": {
			body: "\nlistener \"tcp\" {\n address = \"127.0.0.1:8100\"\n}\n" + minimal,
			want: `agent.hcl:2:1: "listener" is a Vault Agent stanza latchkey-agent does not support`,
		},
		"byte order mark inside": {
			body: minimal + "\ufeff\n",
			want: `agent.hcl:7:1: want a key (key = value) or a block (name { ... }), found a byte order mark (U+FEFF, invisible in most editors; save the file as UTF-8 without a BOM)`,
		},
		"unknown top-level key": {
			body: "\nlog_levle = \"debug\"\n" + minimal,
			want: `agent.hcl:2:1: unknown key "log_levle"`,
		},
		"unknown vault key": {
			body: "vault {\n  adress = \"https://v\"\n}\n" + minimal,
			want: `agent.hcl:2:3: unknown key "adress" in vault`,
		},
		"unknown sink config key": {
			body: "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"/t\" }\n }\n sink \"file\" {\n config = {\n path = \"/t\"\n mod = 0640\n }\n }\n}\n",
			want: `agent.hcl:8:2: unknown key "mod" in sink config`,
		},
		"bad mode": {
			body: "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"/t\" }\n }\n sink \"file\" {\n config = {\n path = \"/t\"\n mode = 0980\n }\n }\n}\n",
			want: `agent.hcl:8:`,
		},
		"method wrap_ttl": {
			body: "auto_auth {\n method \"approle\" {\n  wrap_ttl = \"5m\"\n }\n}\n",
			want: `agent.hcl:3:3: method: wrap_ttl is not supported by latchkey-agent (wrap the token per sink: sink "file" { wrap_ttl = ... })`,
		},
		"unknown method type": {
			body: "auto_auth {\n method \"kubernetes\" {\n }\n}\n",
			want: `agent.hcl:2:2: method: type "kubernetes" is not supported`,
		},
		"no auto_auth": {
			body: `vault { address = "https://v:8200" }`,
			want: "no auto_auth stanza",
		},
		"template without destination": {
			body: "\ntemplate {\n contents = \"x\"\n}\n" + minimal,
			want: `agent.hcl:2:1: template: destination is required`,
		},
		"template source and contents": {
			body: "\ntemplate {\n source = \"a\"\n contents = \"x\"\n destination = \"/d\"\n}\n" + minimal,
			want: `template: source and contents are mutually exclusive`,
		},
		"encrypted sink": {
			body: "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"/t\" }\n }\n sink \"file\" {\n dh_type = \"curve25519\"\n config = { path = \"/t\" }\n }\n}\n",
			want: `agent.hcl:6:2: sink: dh_type (encrypted sinks) is not supported`,
		},
		"bad duration": {
			body: "auto_auth {\n method \"token_file\" {\n min_backoff = \"soon\"\n config = { token_file_path = \"/t\" }\n }\n}\n",
			want: `agent.hcl:3:`,
		},
		"backoff order": {
			body: "auto_auth {\n method \"token_file\" {\n min_backoff = \"10m\"\n max_backoff = \"1m\"\n config = { token_file_path = \"/t\" }\n }\n}\n",
			want: `agent.hcl:3:2: auto_auth: min_backoff (10m0s) is greater than max_backoff (1m0s)`,
		},
		"syntax": {
			body: "auto_auth {\n",
			want: `agent.hcl:1:`,
		},
		"login_splay too long": {
			body: "latchkey {\n  login_splay = \"1h\"\n}\n" + minimal,
			want: `agent.hcl:2:17: login_splay: want a duration from 0s to 10m, not 1h0m0s`,
		},
		"login_splay negative": {
			body: "latchkey {\n  login_splay = \"-1s\"\n}\n" + minimal,
			want: `agent.hcl:2:17: invalid value for "login_splay": want a duration such as "30s" or "5m"`,
		},
		"login_splay not a duration": {
			body: "latchkey {\n  login_splay = \"soon\"\n}\n" + minimal,
			want: `agent.hcl:2:17: invalid value for "login_splay"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.WriteFile(t, p, tc.body)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load("/nonexistent/agent.hcl"); err == nil || !strings.Contains(err.Error(), "read config /nonexistent/agent.hcl") {
		t.Fatalf("error = %v", err)
	}
}

// minimal is a one-line auth stanza so that error cases have one.
const minimal = `
auto_auth {
  method "token_file" {
    config = { token_file_path = "/t" }
  }
}
`

// The example installed as /etc/latchkey/agent.hcl must load as shipped.
func TestPackagedExampleLoads(t *testing.T) {
	c, err := Load("../../packaging/agent/agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoAuth.Method.Type != "aws" || len(c.AutoAuth.Sinks) != 1 || c.AutoAuth.Sinks[0].Mode != 0o640 || c.StateDir != DefaultStateDir {
		t.Errorf("example = %+v", c)
	}
}

// HCL 1 spells blocks as objects too (`vault = { ... }`), and Vault accepts
// that: each such stanza must be read like the block, never ignored.
func TestLoadObjectFormBlocks(t *testing.T) {
	const method = "auto_auth = {\n  method = {\n    type = \"approle\"\n    config = { role_id_file_path = \"/r\" }\n  }\n}\n"
	tests := map[string]struct {
		body  string
		check func(*Config) bool
		want  string // an error, instead of check
	}{
		"latchkey": {
			body:  minimal + "latchkey = { state_dir = \"/tmp/x\" }\n",
			check: func(c *Config) bool { return c.StateDir == "/tmp/x" },
		},
		"vault and retry": {
			body: minimal + "vault = {\n  address = \"https://v:8200\"\n  retry = { num_retries = 3 }\n}\n",
			check: func(c *Config) bool {
				return c.Vault.Client.Address == "https://v:8200" && *c.Vault.NumRetries == 3
			},
		},
		// num_retries as in Vault Agent: 0 (or unset) is the default, 12
		// retries; -1 is none; a template is tried once plus its retries.
		"retry in a vault block, 0 is the default": {
			body: minimal + "vault {\n  retry = {\n    num_retries = 0\n  }\n}\n",
			check: func(c *Config) bool {
				return *c.Vault.NumRetries == 12 && c.TemplateConfig.RetryAttempts == 13
			},
		},
		"retry unset is the default": {
			body: minimal + "vault {\n  address = \"https://v:8200\"\n}\n",
			check: func(c *Config) bool {
				return *c.Vault.NumRetries == 12 && c.TemplateConfig.RetryAttempts == 13
			},
		},
		"retry -1 is none": {
			body: minimal + "vault {\n  retry {\n    num_retries = -1\n  }\n}\n",
			check: func(c *Config) bool {
				return *c.Vault.NumRetries == 0 && c.TemplateConfig.RetryAttempts == 1
			},
		},
		"retry count": {
			body: minimal + "vault {\n  retry {\n    num_retries = 1\n  }\n}\n",
			check: func(c *Config) bool {
				return *c.Vault.NumRetries == 1 && c.TemplateConfig.RetryAttempts == 2
			},
		},
		"retry below -1": {
			body: minimal + "vault {\n  retry {\n    num_retries = -2\n  }\n}\n",
			want: `agent.hcl:9:19: vault.retry.num_retries: want -1 (no retries), 0 (the default, 12 retries) or a number of retries, not -2`,
		},
		"retry below -1 in JSON-like object form": {
			body: minimal + "vault = { retry = { num_retries = -5 } }\n",
			want: `agent.hcl:7:35: vault.retry.num_retries: want -1`,
		},
		"template_config": {
			body: minimal + "template_config = {\n  exit_on_retry_failure = true\n  static_secret_render_interval = \"1m\"\n}\n",
			check: func(c *Config) bool {
				return c.TemplateConfig.ExitOnRetryFailure && c.TemplateConfig.StaticSecretRenderInterval == time.Minute
			},
		},
		"auto_auth, method and sink": {
			body: "auto_auth = {\n  method = {\n    type = \"approle\"\n    mount_path = \"auth/ar\"\n    config = { role_id_file_path = \"/r\" }\n  }\n" +
				"  sink = {\n    type = \"file\"\n    config = {\n      path = \"/t\"\n      mode = 0600\n    }\n  }\n}\n",
			check: func(c *Config) bool {
				m := c.AutoAuth.Method
				return m.Type == "approle" && m.MountPath == "auth/ar" && m.Config["role_id_file_path"] == "/r" && m.Line == 2 &&
					len(c.AutoAuth.Sinks) == 1 && c.AutoAuth.Sinks[0].Path == "/t" && c.AutoAuth.Sinks[0].Mode == 0o600
			},
		},
		"template with wait and exec": {
			body: method + "template = {\n  contents = \"x\"\n  destination = \"/d\"\n  wait = { min = \"2s\" }\n  exec = { command = [\"/bin/true\"] }\n}\n",
			check: func(c *Config) bool {
				return len(c.Templates) == 1 && c.Templates[0].Destination == "/d" && c.Templates[0].Wait.Min == 2*time.Second &&
					c.Templates[0].Exec != nil && c.Templates[0].Exec.Command[0] == "/bin/true"
			},
		},
		"unknown key inside an object stanza": {
			body: minimal + "latchkey = {\n  state_dri = \"/tmp/x\"\n}\n",
			want: `agent.hcl:8:3: unknown key "state_dri" in latchkey`,
		},
		"unsupported stanza as an object": {
			body: minimal + "cache = { use_auto_auth_token = true }\n",
			want: `agent.hcl:7:1: "cache" is a Vault Agent stanza latchkey-agent does not support`,
		},
		"a stanza that is not an object": {
			body: minimal + "vault = \"https://v:8200\"\n",
			want: `agent.hcl:7:1: vault: want a block (vault { ... }) or an object (vault = { ... })`,
		},
		"a sink that is not an object": {
			body: "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/t\" }\n  }\n  sink = [\"/t\"]\n}\n",
			want: `agent.hcl:5:3: sink: want a block (sink { ... }) or an object (sink = { ... })`,
		},
		"a template wait that is not an object": {
			body: method + "template {\n  contents = \"x\"\n  destination = \"/d\"\n  wait = \"5s\"\n}\n",
			want: `agent.hcl:10:3: wait: want a block (wait { ... }) or an object (wait = { ... })`,
		},
		"a key given twice": {
			body: minimal + "latchkey = {\n  state_dir = \"/a\"\n  state_dir = \"/b\"\n}\n",
			want: `agent.hcl:9:3: latchkey: key "state_dir" given twice`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.WriteFile(t, p, tc.body)
			c, err := Load(p)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config read wrongly:\n%s\n%+v\nauto_auth %+v", tc.body, c, c.AutoAuth)
			}
		})
	}
}

// Several -config files are read in order: a value set in more than one is
// the last file's (auto_auth as a whole), templates add up.
func TestLoadSeveralFilesLaterWins(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.hcl"), filepath.Join(dir, "b.hcl")
	testkit.WriteFile(t, a, "vault { address = \"https://a:8200\" }\nlog_level = \"debug\"\ntemplate {\n  contents = \"a\"\n  destination = \"/tmp/a\"\n}\n"+minimal)
	testkit.WriteFile(t, b, "vault { address = \"https://b:8200\" }\npid_file = \"/run/b.pid\"\ntemplate {\n  contents = \"b\"\n  destination = \"/tmp/b\"\n}\n"+
		"auto_auth {\n  method \"approle\" {\n    config = { role_id_file_path = \"/r\" }\n  }\n}\n")
	tests := []struct {
		paths            []string
		address, method  string
		firstDestination string
	}{
		{[]string{a, b}, "https://b:8200", "approle", "/tmp/a"},
		{[]string{b, a}, "https://a:8200", "token_file", "/tmp/b"},
	}
	for _, tc := range tests {
		c, err := Load(tc.paths...)
		if err != nil {
			t.Fatal(err)
		}
		if c.Vault.Client.Address != tc.address || c.AutoAuth.Method.Type != tc.method || len(c.Templates) != 2 ||
			c.Templates[0].Destination != tc.firstDestination || c.LogLevel != "debug" || c.PidFile != "/run/b.pid" ||
			strings.Join(c.Files, " ") != strings.Join(tc.paths, " ") {
			t.Errorf("Load(%v): address %s, method %s, templates %+v, log_level %q, pid_file %q, files %v",
				tc.paths, c.Vault.Client.Address, c.AutoAuth.Method.Type, c.Templates, c.LogLevel, c.PidFile, c.Files)
		}
	}
}

// A sink without mode gets 0640 (Vault Agent's default), in HCL and JSON.
func TestSinkModeDefault(t *testing.T) {
	tests := map[string]string{
		"agent.hcl":  "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/t\" }\n  }\n  sink \"file\" {\n    config = { path = \"/run/t\" }\n  }\n}\n",
		"agent.json": `{"auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/t"}}, "sink": {"type": "file", "config": {"path": "/run/t"}}}}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			testkit.WriteFile(t, p, body)
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.AutoAuth.Sinks) != 1 || c.AutoAuth.Sinks[0].Mode != 0o640 {
				t.Errorf("sinks = %+v, want mode 0640", c.AutoAuth.Sinks)
			}
		})
	}
}

// latchkey { login_splay }: unset is 0; a later file's value wins, 0 too.
func TestLoginSplayMerges(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		testkit.WriteFile(t, p, body)
		return p
	}
	plain := file("plain.hcl", minimal)
	a := file("a.hcl", "latchkey {\n  login_splay = \"30s\"\n}\n"+minimal)
	zero := file("zero.hcl", "latchkey {\n  login_splay = 0\n}\n")
	other := file("other.hcl", "log_level = \"info\"\n")
	tests := []struct {
		paths []string
		want  time.Duration
	}{
		{[]string{plain}, 0},
		{[]string{a}, 30 * time.Second},
		{[]string{a, other}, 30 * time.Second},
		{[]string{a, zero}, 0},
		{[]string{zero, a}, 30 * time.Second},
	}
	for _, tc := range tests {
		cfg, err := Load(tc.paths...)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.LoginSplay != tc.want {
			t.Errorf("Load(%v): login_splay %s, want %s", tc.paths, cfg.LoginSplay, tc.want)
		}
	}
}

// A file the agent would write over its own config, or write as two
// different things, is refused at the later key's position; templates
// sharing a destination (Vault Agent's semantics) and sinks sharing a path
// are not.
func TestLoadRefusesOverlappingFiles(t *testing.T) {
	sinks := func(paths ...string) string {
		var b strings.Builder
		b.WriteString("auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/t\" }\n  }\n")
		for _, p := range paths {
			fmt.Fprintf(&b, "  sink \"file\" {\n    config = { path = %q }\n  }\n", p)
		}
		b.WriteString("}\n")
		return b.String()
	}
	tmpl := func(dest string) string {
		return fmt.Sprintf("template {\n  contents = \"x\"\n  destination = %q\n}\n", dest)
	}
	tests := map[string]struct {
		body func(conf string) string
		want string // "" = loads
	}{
		"template over the config": {func(conf string) string { return sinks("/run/t") + tmpl(conf) },
			"agent.hcl:11:3: template CONF is a config file of the agent's own: writing it would replace the config"},
		"sink over the config": {func(conf string) string { return sinks(conf) },
			"agent.hcl:6:16: sink CONF is a config file of the agent's own"},
		"sink and template": {func(string) string { return sinks("/run/app/token") + tmpl("/run/app/../app/token") },
			"agent.hcl:11:3: template /run/app/../app/token is also the sink at CONF:6:16: the file would flip between the two at every write"},
		"ssh trust file and template": {func(string) string {
			return sinks("/run/t") + tmpl("/etc/ssh/ca.pem") + "ssh {\n  trusted_user_ca_keys = \"/etc/ssh/ca.pem\"\n  pinned_user_ca_keys = \"/etc/ssh/pinned.pub\"\n}\n"
		}, "agent.hcl:14:3: ssh trust file /etc/ssh/ca.pem is also the template at CONF:11:3"},
		"two templates, one destination": {func(string) string { return sinks("/run/t") + tmpl("/etc/app") + tmpl("/etc/app") }, ""},
		"two sinks, one path":            {func(string) string { return sinks("/run/t", "/run/t") }, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.WriteFile(t, p, tc.body(p))
			_, err := Load(p)
			want := strings.ReplaceAll(tc.want, "CONF", p)
			if want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, want)
			}
		})
	}
}
