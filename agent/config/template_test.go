package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/test/testkit"
)

// Every key of a template stanza and of template_config is read, in HCL
// and in JSON, with the values it was given.
func TestLoadTemplateEveryKey(t *testing.T) {
	const hclBody = minimal + `
template_config {
  static_secret_render_interval = "90s"
  lease_renewal_threshold       = 0.75
  exit_on_retry_failure         = true
  max_connections_per_host      = 3
}

template {
  source               = "/etc/app/a.ctmpl"
  destination          = "/etc/app/a.conf"
  create_dest_dirs     = false
  perms                = 0640
  user                 = "app"
  group                = "app-readers"
  backup               = true
  error_on_missing_key = true
  left_delimiter       = "[["
  right_delimiter      = "]]"
  command              = "systemctl reload app"
  command_timeout      = "7s"
}

template {
  contents    = "{{ with secret \"kv/data/b\" }}{{ .Data.data.k }}{{ end }}"
  destination = "/etc/app/b.conf"
  perms       = "0600"
  uid         = 1001
  gid         = 1002
  exec {
    command = ["/usr/bin/pkill", "-HUP", "app"]
    timeout = "12s"
  }
  wait {
    min = "2s"
    max = "20s"
  }
}

template {
  contents    = "x"
  destination = "/etc/app/c.conf"
  exec {
    command = "echo rendered >> /var/log/app"
  }
  wait = {
    min = "1s"
  }
}
`
	const jsonBody = `{
  "auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/t"}}},
  "template_config": {"static_secret_render_interval": "90s", "lease_renewal_threshold": 0.75,
    "exit_on_retry_failure": true, "max_connections_per_host": 3},
  "template": [
    {"source": "/etc/app/a.ctmpl", "destination": "/etc/app/a.conf", "create_dest_dirs": false, "perms": 416,
     "user": "app", "group": "app-readers", "backup": true, "error_on_missing_key": true,
     "left_delimiter": "[[", "right_delimiter": "]]", "command": "systemctl reload app", "command_timeout": "7s"},
    {"contents": "{{ with secret \"kv/data/b\" }}{{ .Data.data.k }}{{ end }}", "destination": "/etc/app/b.conf",
     "perms": "0600", "uid": 1001, "gid": 1002,
     "exec": {"command": ["/usr/bin/pkill", "-HUP", "app"], "timeout": "12s"}, "wait": {"min": "2s", "max": "20s"}},
    {"contents": "x", "destination": "/etc/app/c.conf", "exec": {"command": "echo rendered >> /var/log/app"}, "wait": {"min": "1s"}}
  ]
}`
	p0640, p0600 := os.FileMode(0o640), os.FileMode(0o600)
	uid, gid := 1001, 1002
	want := []Template{{
		Source: "/etc/app/a.ctmpl", Destination: "/etc/app/a.conf", CreateDestDirs: false, Perms: &p0640,
		User: "app", Group: "app-readers", Backup: true, ErrorOnMissingKey: true, LeftDelim: "[[", RightDelim: "]]",
		Exec: &Exec{Command: []string{"/bin/sh", "-c", "systemctl reload app"}, Timeout: 7 * time.Second},
	}, {
		Contents: `{{ with secret "kv/data/b" }}{{ .Data.data.k }}{{ end }}`, Destination: "/etc/app/b.conf", CreateDestDirs: true,
		Perms: &p0600, UID: &uid, GID: &gid,
		Exec: &Exec{Command: []string{"/usr/bin/pkill", "-HUP", "app"}, Timeout: 12 * time.Second},
		Wait: Wait{Min: 2 * time.Second, Max: 20 * time.Second},
	}, {
		Contents: "x", Destination: "/etc/app/c.conf", CreateDestDirs: true,
		Exec: &Exec{Command: []string{"/bin/sh", "-c", "echo rendered >> /var/log/app"}, Timeout: 30 * time.Second},
		Wait: Wait{Min: time.Second},
	}}
	wantTC := DefaultTemplateConfig()
	wantTC.StaticSecretRenderInterval, wantTC.LeaseRenewalThreshold = 90*time.Second, 0.75
	wantTC.ExitOnRetryFailure, wantTC.MaxConnectionsPerHost = true, 3

	tests := map[string]struct {
		file, body string
		lines      bool // stanza positions are lines (HCL only)
	}{
		"hcl":  {"agent.hcl", hclBody, true},
		"json": {"agent.json", jsonBody, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.file)
			testkit.WriteFile(t, p, tc.body)
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if c.TemplateConfig != wantTC {
				t.Errorf("template_config = %+v, want %+v", c.TemplateConfig, wantTC)
			}
			if len(c.Templates) != len(want) {
				t.Fatalf("%d templates, want %d", len(c.Templates), len(want))
			}
			// each stanza's line: where "template {" stands in the file
			var lines []int
			for i, l := range strings.Split(tc.body, "\n") {
				if l == "template {" {
					lines = append(lines, i+1)
				}
			}
			for i, got := range c.Templates {
				if got.Range.Filename != p {
					t.Errorf("template %d declared in %q, want %q", i, got.Range.Filename, p)
				}
				if tc.lines && got.Range.Start.Line != lines[i] {
					t.Errorf("template %d declared at line %d, want %d", i, got.Range.Start.Line, lines[i])
				}
				for k, r := range got.Keys {
					if r.Filename != p || r.Start.Line == 0 {
						t.Errorf("template %d: key %s at %s, want a line of %s", i, k, hclconf.Pos(r), p)
					}
				}
				got.Range, got.Keys = want[i].Range, want[i].Keys
				if !reflect.DeepEqual(got, want[i]) {
					t.Errorf("template %d =\n%s\nwant\n%s", i, show(got), show(want[i]))
				}
			}
		})
	}
}

// show prints a template with its pointers followed.
func show(t Template) string {
	s := fmt.Sprintf("%+v", t)
	if t.Perms != nil {
		s += fmt.Sprintf(" perms=%v", *t.Perms)
	}
	if t.UID != nil {
		s += fmt.Sprintf(" uid=%d", *t.UID)
	}
	if t.GID != nil {
		s += fmt.Sprintf(" gid=%d", *t.GID)
	}
	if t.Exec != nil {
		s += fmt.Sprintf(" exec=%+v", *t.Exec)
	}
	return s
}

// perms = 0, in any spelling, is unset, as in Vault Agent (the existing
// file's mode, else 0644): as a mode it was written 0600 and rewritten at
// every refresh.
func TestTemplatePermsZeroIsUnset(t *testing.T) {
	tests := map[string]string{
		"number":        "perms = 0",
		"octal":         "perms = 0000",
		"string":        `perms = "0000"`,
		"short string":  `perms = "0"`,
		"set (control)": "perms = 0640",
	}
	for name, line := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.WriteFile(t, p, minimal+"template {\n  contents = \"x\"\n  destination = \"/etc/app/x\"\n  "+line+"\n}\n")
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Templates[0].Perms
			if name == "set (control)" {
				if got == nil || *got != 0o640 {
					t.Errorf("perms = %v, want 0640", got)
				}
				return
			}
			if got != nil {
				t.Errorf("perms = %04o, want unset", *got)
			}
		})
	}
}

// exec takes what it leaves unset from the template's command and
// command_timeout, as consul-template finalizes a template (Vault Agent
// runs "command" beside "exec { timeout }"; latchkey-agent refused it).
func TestTemplateExecFallsBackToCommand(t *testing.T) {
	sh := func(s string) []string { return []string{"/bin/sh", "-c", s} }
	tests := map[string]struct {
		keys    string
		want    *Exec
		wantErr string
	}{
		"command, exec timeout": {keys: "command = \"a\"\n exec {\n timeout = \"9s\"\n }", want: &Exec{Command: sh("a"), Timeout: 9 * time.Second}},
		"command_timeout, exec command": {keys: "command_timeout = \"8s\"\n command = \"a\"\n exec {\n command = [\"/bin/b\"]\n }",
			want: &Exec{Command: []string{"/bin/b"}, Timeout: 8 * time.Second}},
		"exec over command":     {keys: "command = \"a\"\n command_timeout = \"8s\"\n exec {\n command = \"b\"\n timeout = \"2s\"\n }", want: &Exec{Command: sh("b"), Timeout: 2 * time.Second}},
		"exec alone":            {keys: "exec {\n command = \"b\"\n }", want: &Exec{Command: sh("b"), Timeout: DefaultCommandTimeout}},
		"command alone":         {keys: "command = \"a\"", want: &Exec{Command: sh("a"), Timeout: DefaultCommandTimeout}},
		"exec without commands": {keys: "exec {\n timeout = \"9s\"\n }", wantErr: "agent.hcl:10:2: template.exec: command is required (in exec, or as the template's command)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.WriteFile(t, p, minimal+"template {\n contents = \"x\"\n destination = \"/etc/app/x\"\n "+tc.keys+"\n}\n")
			c, err := Load(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			testkit.Must(t, err)
			if got := c.Templates[0].Exec; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("exec = %+v, want %+v", got, tc.want)
			}
		})
	}
}
