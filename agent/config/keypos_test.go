package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/test/testkit"
)

// Errors about a method's config keys, raised by the auth methods after
// parsing, name the key's own file:line:col (the config block's, or the
// stanza's, when the key is missing), in HCL and in JSON.
func TestMethodConfigKeyPositions(t *testing.T) {
	// hcl puts the config entries from line 5, column 7, after a method
	// stanza at 2:3 and a config object at 4:5.
	hcl := func(typ, entries string) string {
		return "auto_auth {\n  method \"" + typ + "\" {\n    mount_path = \"auth/x\"\n    config = {\n" + entries + "    }\n  }\n}\n"
	}
	// block is hcl with `config { ... }`.
	block := func(typ, entries string) string {
		return strings.Replace(hcl(typ, entries), "config = {", "config {", 1)
	}
	// json is the same layout: entries from 5:7, config at 4:5, method at 3:5.
	json := func(typ, entries string) string {
		return "{\n  \"auto_auth\": {\n    \"method\": {\n    \"config\": {\n" + entries + "\n    },\n    \"type\": \"" + typ + "\"\n    }\n  }\n}\n"
	}
	tests := map[string]struct {
		file, body, want string
	}{
		"hcl unknown key": {"a.hcl", hcl("approle", "      bogus = 1\n      role_id_file_path = \"/r\"\n"),
			`a.hcl:5:7: method "approle": unknown config key "bogus"`},
		"hcl unknown keys, first in the file": {"a.hcl", hcl("approle", "      zz = 1\n      aa = 1\n      role_id_file_path = \"/r\"\n"),
			`a.hcl:5:7: method "approle": unknown config key "zz"`},
		"hcl wrong type": {"a.hcl", hcl("approle", "      role_id_file_path = [\"/r\"]\n"),
			`a.hcl:5:7: method "approle": config key "role_id_file_path": want a string`},
		"hcl wrong type, bool": {"a.hcl", hcl("approle", "      role_id_file_path = \"/r\"\n      remove_secret_id_file_after_reading = \"maybe\"\n"),
			`a.hcl:6:7: method "approle": config key "remove_secret_id_file_after_reading": want true or false`},
		"hcl wrong type, duration": {"a.hcl", hcl("alicloud", "      role = \"web\"\n      region = \"cn-hangzhou\"\n      credential_poll_interval = \"often\"\n"),
			`a.hcl:7:7: method "alicloud": config key "credential_poll_interval": want a duration such as "30s"`},
		"hcl missing required key": {"a.hcl", hcl("approle", "      secret_id_file_path = \"/s\"\n"),
			`a.hcl:4:5: method "approle": config key "role_id_file_path" is required`},
		"hcl missing required key, config block": {"a.hcl", block("aws", "      type = \"iam\"\n"),
			`a.hcl:4:5: method "aws": config key "role" is required`},
		"hcl missing required key, no config": {"a.hcl", "auto_auth {\n  method \"approle\" {\n  }\n}\n",
			`a.hcl:2:3: method "approle": config key "role_id_file_path" is required`},
		"hcl invalid value": {"a.hcl", hcl("aws", "      region = \"us-east-1.evil\"\n      type = \"iam\"\n      role = \"web\"\n"),
			`a.hcl:5:7: method "aws": config key "region": "us-east-1.evil" is not a region name such as eu-west-1`},
		"hcl invalid type value": {"a.hcl", hcl("aws", "      type = \"ecs\"\n      role = \"web\"\n"),
			`a.hcl:5:7: method "aws": config key "type": "ecs": want ec2 or iam`},
		"hcl keys that go together": {"a.hcl", hcl("aws", "      type = \"iam\"\n      role = \"web\"\n      secret_key = \"s\"\n"),
			`a.hcl:7:7: method "aws": config keys "access_key" and "secret_key" go together`},
		"hcl key needing another": {"a.hcl", hcl("approle", "      role_id_file_path = \"/r\"\n      secret_id_response_wrapping_path = \"auth/x\"\n"),
			`a.hcl:6:7: method "approle": config key "secret_id_response_wrapping_path" needs secret_id_file_path`},
		"hcl unsupported key": {"a.hcl", hcl("alicloud", "      role = \"web\"\n      region = \"cn-hangzhou\"\n      role_arn = \"acs:ram::1:role/x\"\n"),
			`a.hcl:7:7: method "alicloud": config key "role_arn": not supported by latchkey (use the ECS RAM role or access_key/access_secret)`},
		"json unknown key": {"a.json", json("approle", "      \"bogus\": 1,\n      \"role_id_file_path\": \"/r\""),
			`a.json:5:7: method "approle": unknown config key "bogus"`},
		"json wrong type": {"a.json", json("approle", "      \"role_id_file_path\": [\"/r\"]"),
			`a.json:5:7: method "approle": config key "role_id_file_path": want a string`},
		"json missing required key": {"a.json", json("approle", "      \"secret_id_file_path\": \"/s\""),
			`a.json:4:5: method "approle": config key "role_id_file_path" is required`},
		"json invalid value": {"a.json", json("aws", "      \"region\": \"us-east-1.evil\",\n      \"type\": \"iam\",\n      \"role\": \"web\""),
			`a.json:5:7: method "aws": config key "region": "us-east-1.evil" is not a region name such as eu-west-1`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tc.file)
			testkit.WriteFile(t, p, tc.body)
			c, err := Load(p)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			_, err = methods.New(c.AutoAuth.Method, auth.Env{StateDir: dir})
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if got := strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)); got != tc.want {
				t.Errorf("error = %s\nwant    %s", got, tc.want)
			}
		})
	}
}

// The positions kept for a sink's config keys and for min_backoff.
func TestSinkAndBackoffKeyPositions(t *testing.T) {
	for _, tc := range []struct {
		file string
		line int
		body string
	}{
		{"a.hcl", 9, "auto_auth {\n  method \"token_file\" {\n    min_backoff = \"1s\"\n    config = { token_file_path = \"/t\" }\n  }\n  sink \"file\" {\n    config = {\n      path = \"/x\"\n      owner = \"root\"\n    }\n  }\n}\n"},
		{"a.json", 8, "{\n  \"auto_auth\": {\n    \"method\": {\"type\": \"token_file\",\n    \"min_backoff\": \"1s\", \"config\": {\"token_file_path\": \"/t\"}},\n    \"sink\": {\"type\": \"file\",\n    \"config\": {\n      \"path\": \"/x\",\n      \"owner\": \"root\"\n    }\n    }\n  }\n}\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.file)
			testkit.WriteFile(t, p, tc.body)
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			r := c.AutoAuth.Sinks[0].KeyRange("owner")
			if r.Filename != p || r.Start.Line != tc.line || r.Start.Column != 7 {
				t.Errorf("owner at %s:%d:%d, want %s:%d:7", r.Filename, r.Start.Line, r.Start.Column, p, tc.line)
			}
			if r := c.AutoAuth.MinBackoffRange; r.Start.Line == 0 {
				t.Errorf("min_backoff position not kept")
			}
		})
	}
}
