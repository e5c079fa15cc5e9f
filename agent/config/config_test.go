package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

func TestExistingVaultAgentConfigParsesUnchanged(t *testing.T) {
	c, err := Load("testdata/vault-agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	wantVault := vaultclient.Config{Address: "https://vault.example.com:8200", CACert: "/etc/vault/ca.pem",
		TLSSkipVerify: vaultclient.Bool(false), MaxRetries: vaultclient.Int(5)}
	if !reflect.DeepEqual(c.Vault, wantVault) {
		t.Errorf("vault = %+v, want %+v", c.Vault, wantVault)
	}
	m := c.AutoAuth.Method
	if m.Type != "aws" || m.MountPath != "auth/aws-subaccount" || m.Namespace != "team-a" ||
		m.MinBackoff != time.Second || m.MaxBackoff != 5*time.Minute || m.ExitOnErr {
		t.Errorf("method = %+v", m)
	}
	if !reflect.DeepEqual(m.Config, map[string]any{"type": "ec2", "role": "web"}) {
		t.Errorf("method config = %#v", m.Config)
	}
	if m.Range.Filename != "testdata/vault-agent.hcl" || m.Range.Start.Line != 17 {
		t.Errorf("method range = %v", m.Range)
	}
	if len(c.AutoAuth.Sinks) != 2 {
		t.Fatalf("sinks = %+v", c.AutoAuth.Sinks)
	}
	s0, s1 := c.AutoAuth.Sinks[0], c.AutoAuth.Sinks[1]
	if s0.Type != "file" || s0.Path != "/run/vault-agent/token" || s0.Mode != 0o640 || s0.WrapTTL != 0 {
		t.Errorf("sink 0 = %+v", s0)
	}
	if s1.Type != "file" || s1.Path != "/run/vault-agent/wrapped-token" || s1.Mode != 0o640 || s1.WrapTTL != 5*time.Minute ||
		s1.Owner != "www-data" || s1.Group != "www-data" {
		t.Errorf("sink 1 = %+v", s1)
	}
	if c.PidFile != "/run/vault-agent/pidfile" || *c.ExitAfterAuth || c.LogLevel != "info" || c.Latchkey.StateDir != DefaultStateDir {
		t.Errorf("top level = %+v", c)
	}
	if !c.TemplateConfig.ExitOnRetryFailure || c.TemplateConfig.StaticSecretRenderInterval != 10*time.Minute ||
		c.TemplateConfig.LeaseRenewalThreshold != 0.9 || c.TemplateConfig.MaxConnectionsPerHost != 10 {
		t.Errorf("template_config = %+v", c.TemplateConfig)
	}
	if len(c.Templates) != 2 {
		t.Fatalf("templates = %+v", c.Templates)
	}
	t0, t1 := c.Templates[0], c.Templates[1]
	if t0.Source != "/etc/vault/templates/app.ctmpl" || t0.Destination != "/etc/app/config.yml" || *t0.Perms != 0o600 ||
		!t0.CreateDestDirs || !reflect.DeepEqual(t0.Exec, &Exec{Command: []string{"/bin/sh", "-c", "systemctl reload app"}, Timeout: 30 * time.Second}) {
		t.Errorf("template 0 = %+v exec %+v", t0, t0.Exec)
	}
	if t0.Range.Start.Line != 49 {
		t.Errorf("template 0 range = %v", t0.Range)
	}
	if !strings.Contains(t1.Contents, `{{ with secret "secret/data/db" }}`) || !t1.ErrorOnMissingKey || t1.Perms != nil ||
		!reflect.DeepEqual(t1.Exec, &Exec{Command: []string{"/usr/bin/touch", "/tmp/reloaded"}, Timeout: 10 * time.Second}) ||
		t1.Wait != (Wait{Min: 2 * time.Second, Max: 10 * time.Second}) {
		t.Errorf("template 1 = %+v exec %+v", t1, t1.Exec)
	}
}

func TestJSONConfig(t *testing.T) {
	c, err := Load("testdata/vault-agent.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	m := c.AutoAuth.Method
	want := map[string]any{"role_id_file_path": "/etc/vault/role-id", "secret_id_file_path": "/etc/vault/secret-id",
		"remove_secret_id_file_after_reading": false}
	if m.Type != "approle" || m.MountPath != "auth/approle" || !reflect.DeepEqual(m.Config, want) {
		t.Errorf("method = %+v", m)
	}
	if len(c.AutoAuth.Sinks) != 1 || c.AutoAuth.Sinks[0].Path != "/run/vault-agent/token" || c.AutoAuth.Sinks[0].Mode != 0o640 {
		t.Errorf("sinks = %+v", c.AutoAuth.Sinks)
	}
	if len(c.Templates) != 2 || *c.Templates[0].Perms != 0o644 || c.Templates[1].Contents != "x" {
		t.Errorf("templates = %+v", c.Templates)
	}
	if c.Latchkey.StateDir != "/var/lib/latchkey-test" || *c.Vault.MaxRetries != 5 {
		t.Errorf("config = %+v", c)
	}
}

func TestDirectoryMergesInNameOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-vault.hcl"), `vault { address = "http://a:8200" }
log_level = "debug"`)
	write(t, filepath.Join(dir, "20-auth.json"), `{"auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/t"}}},
 "vault": {"address": "http://b:8200"}}`)
	write(t, filepath.Join(dir, "30-sink.hcl"), `auto_auth {
  sink "file" {
    config = { path = "/run/t" }
  }
}
template {
  contents = "x"
  destination = "/tmp/x"
}`)
	write(t, filepath.Join(dir, "README"), `not config`)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Vault.Address != "http://b:8200" || c.LogLevel != "debug" || c.AutoAuth.Method.Type != "token_file" ||
		len(c.AutoAuth.Sinks) != 1 || len(c.Templates) != 1 || len(c.Files) != 3 {
		t.Errorf("merged = %+v", c)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

const minimal = `auto_auth {
  method "approle" {
    config = { role_id_file_path = "/r" }
  }
}
`

func TestErrors(t *testing.T) {
	tests := map[string]struct {
		name, src string
		want      string // exact, after "<dir>/"
	}{
		"unsupported stanza": {"a.hcl", minimal + "cache {\n  use_auto_auth_token = true\n}\n",
			`a.hcl:6:1: "cache" is not supported by latchkey-agent (it supports vault, auto_auth, template, template_config, pid_file, exit_after_auth, log_level, log_format, log_file and latchkey)`},
		"listener": {"a.hcl", minimal + "listener \"tcp\" {\n address = \"127.0.0.1:8100\"\n}\n",
			`a.hcl:6:1: "listener" is not supported by latchkey-agent (it supports vault, auto_auth, template, template_config, pid_file, exit_after_auth, log_level, log_format, log_file and latchkey)`},
		"unknown top key":   {"a.hcl", minimal + "bogus = 1\n", `a.hcl:6:1: unknown key "bogus"`},
		"unknown vault key": {"a.hcl", "vault {\n  adress = \"x\"\n}\n" + minimal, `a.hcl:2:3: unknown key "adress" in vault`},
		"unknown method key": {"a.hcl", "auto_auth {\n  method \"approle\" {\n    mout_path = \"x\"\n  }\n}\n",
			`a.hcl:3:5: unknown key "mout_path" in auto_auth method "approle"`},
		"unknown sink config key": {"a.hcl", minimal + "auto_auth {\n sink \"file\" {\n  config {\n   pth = \"/x\"\n  }\n }\n}\n",
			`a.hcl:9:4: unknown key "pth" in sink "file" config`},
		"bad mode": {"a.hcl", "auto_auth {\n sink \"file\" {\n  config = {\n   path = \"/x\"\n   mode = 0999\n  }\n }\n}\n",
			`a.hcl:5:11: invalid value for "mode": want a file mode such as 0640`},
		"method without type": {"a.hcl", "auto_auth {\n  method {\n    mount_path = \"auth/x\"\n  }\n}\n",
			`a.hcl:2:3: method: missing type (write method "<type>" { ... } or type = "<type>")`},
		"type contradicts label": {"a.hcl", "auto_auth {\n  method \"aws\" {\n    type = \"approle\"\n  }\n}\n",
			`a.hcl:3:5: method "aws": type "approle" contradicts the label`},
		"two methods": {"a.hcl", "auto_auth {\n  method \"aws\" {}\n  method \"approle\" {}\n}\n",
			`a.hcl:3:3: auto_auth: only one method is supported`},
		"bad duration": {"a.hcl", "auto_auth {\n  method \"aws\" {\n    min_backoff = \"soon\"\n  }\n}\n",
			`a.hcl:3:19: invalid value for "min_backoff": want a duration such as "30s" or "5m"`},
		"dh sink": {"a.hcl", minimal + "auto_auth {\n sink \"file\" {\n  dh_type = \"curve25519\"\n }\n}\n",
			`a.hcl:8:3: sink "file": "dh_type" is not supported by latchkey-agent (Diffie-Hellman encrypted sinks)`},
		"unknown template key": {"a.hcl", minimal + "template {\n  destnation = \"/x\"\n}\n", `a.hcl:7:3: unknown key "destnation" in template`},
		"json unknown key": {"a.json", "{\n  \"auto_auth\": {\"method\": {\"type\": \"aws\"}},\n  \"vault\": {\"adress\": \"x\"}\n}\n",
			`a.json:3:13: unknown key "adress" in vault`},
		"json unsupported": {"a.json", "{\n  \"cache\": {}\n}\n",
			`a.json:2:3: "cache" is not supported by latchkey-agent (it supports vault, auto_auth, template, template_config, pid_file, exit_after_auth, log_level, log_format, log_file and latchkey)`},
		"syntax error": {"a.hcl", "vault {\n  address = \n}\n", `a.hcl:2:13: Invalid expression: Expected the start of an expression, but found an invalid expression token`},
		"negative retries": {"a.hcl", "vault {\n retry {\n  num_retries = -2\n }\n}\n",
			`a.hcl:3:17: invalid value for "num_retries": want -1 (no retries), 0 (default) or more`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.name)
			write(t, path, tc.src)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.TrimPrefix(err.Error(), dir+"/")
			if got != tc.want {
				t.Fatalf("error\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string // exact, after "<dir>/"
	}{
		"no method": {`vault { address = "http://v" }`, `a.hcl: auto_auth: a method stanza is required`},
		"unsupported method": {"auto_auth {\n method \"kubernetes\" {}\n}\n",
			`a.hcl:2:2: auto_auth method "kubernetes" is not supported (supported: aws, alicloud, approle, token_file)`},
		"backoff order": {"auto_auth {\n method \"aws\" {\n  min_backoff = \"10m\"\n }\n}\n",
			`a.hcl:2:2: auto_auth method: min_backoff (10m0s) is greater than max_backoff (5m0s)`},
		"sink type":                    {minimal + "auto_auth {\n sink \"socket\" {}\n}\n", `a.hcl:7:2: sink type "socket" is not supported (supported: file)`},
		"sink path":                    {minimal + "auto_auth {\n sink \"file\" {}\n}\n", `a.hcl:7:2: sink "file": config.path is required`},
		"template without source":      {minimal + "template {\n destination = \"/x\"\n}\n", `a.hcl:6:1: template: one of source or contents is required`},
		"template without destination": {minimal + "template {\n contents = \"x\"\n}\n", `a.hcl:6:1: template: destination is required`},
		"wrap_ttl and templates": {"auto_auth {\n method \"aws\" {\n  wrap_ttl = \"1m\"\n }\n}\ntemplate {\n contents = \"x\"\n destination = \"/x\"\n}\n",
			`a.hcl:2:2: auto_auth method: wrap_ttl cannot be used with templates (the agent never sees the wrapped token)`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.hcl")
			write(t, path, tc.src)
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.ReplaceAll(err.Error(), dir+"/", "")
			if got != tc.want {
				t.Fatalf("error\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestSameAuth(t *testing.T) {
	a, err := ParseBytes("a.hcl", []byte(minimal+"template {\n contents = \"x\"\n destination = \"/x\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBytes("b.hcl", []byte("\n\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	a.Finalize()
	b.Finalize()
	if !SameAuth(a, b) {
		t.Error("templates or positions changed the auth")
	}
	b.AutoAuth.Method.Config["role_id_file_path"] = "/other"
	if SameAuth(a, b) {
		t.Error("a changed method config kept the auth")
	}
}
