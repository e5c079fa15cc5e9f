package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/hclconf/hcloracle"
	"github.com/latchkey/latchkey/test/testkit"
)

// The agent reads its config with internal/hclconf's own reader; hcl/v2
// (what it used before, through hcloracle.Tree) is the oracle it must agree
// with. loadBoth decodes files with both into Configs.
func loadBoth(paths ...string) (ours, oracle *Config, errOurs, errOracle error) {
	ours, errOurs = Load(paths...)
	oracle, errOracle = load(paths, hcloracle.Tree)
	return
}

// configsFrom are the agent configs the repository ships or documents:
// testdata, the packaged example, the README's ```hcl blocks (each with a
// method added when it has none, so that it loads), and a table of the
// syntax a config may use.
func configsFrom(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, glob := range []string{"testdata/*.hcl", "testdata/*.json", "../../packaging/agent/*.hcl"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = string(src)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		body := m[1]
		if !strings.Contains(body, "auto_auth") {
			body += minimal
		}
		out["readme-"+string(rune('a'+i))+".hcl"] = body
	}
	for name, body := range syntaxCases {
		out[name] = body
	}
	return out
}

// syntaxCases are the forms of HCL and JSON a config may be written in.
// Those named refused-* are expressions hcl/v2 evaluates and the agent's
// reader refuses on purpose (the config holds literals only).
var syntaxCases = map[string]string{
	"comments-and-escapes.hcl":          "# a comment\n// another\n/* a block\n comment */\nvault {\n  address = \"https://v:8200\" # trailing\n  namespace = \"a\\tb\\\"c\\u00e9\\\\ $${x} %%{y}\"\n}\n" + minimal,
	"heredocs.hcl":                      "template {\n  contents = <<EOF\nline one\n  {{ .x }}\nEOF\n  destination = \"/d\"\n}\ntemplate {\n  contents = <<-EOT\n    a\n  \n\t\n      b\n    EOT\n  destination = \"/e\"\n}\n" + minimal,
	"numbers-and-bools.hcl":             "exit_after_auth = \"true\"\nvault {\n  timeout = 30\n  retry { num_retries = \"-1\" }\n  tls_skip_verify = true\n}\ntemplate_config {\n  lease_renewal_threshold = 0.75\n  max_connections_per_host = 1e1\n  static_secret_render_interval = \"90s\"\n}\n" + minimal,
	"modes.hcl":                         "template {\n  contents = \"x\"\n  destination = \"/d\"\n  perms = 0600\n  uid = 1001\n}\ntemplate {\n  contents = \"x\"\n  destination = \"/e\"\n  perms = \"644\"\n}\ntemplate {\n  contents = \"x\"\n  destination = \"/f\"\n  perms = 416\n}\n" + minimal,
	"lists-and-objects.hcl":             "vault {\n  addresses = [\n    \"https://a:8200\",\n    \"https://b:8200\", # a comment\n  ]\n}\nauto_auth {\n  method \"aws\" {\n    mount_path = \"auth/aws-x\"\n    config = {\n      type = \"iam\"\n      role = \"web\"\n      header_value = null\n      nested = { a = [1, 2.5, \"x\", true], \"b c\" : { d = -3 } }\n    }\n  }\n  sink \"file\" {\n    wrap_ttl = \"5m\"\n    config = {\n      path = \"/run/t\"\n      mode = 0600\n      owner = 0\n      group = \"adm\"\n    }\n  }\n}\n",
	"object-form.hcl":                   "auto_auth = {\n  method = {\n    type = \"approle\"\n    config = { role_id_file_path = \"/r\", secret_id_file_path = \"/s\" }\n  }\n  sink = { type = \"file\", config = { path = \"/t\" } }\n}\nvault = { retry = { num_retries = 2 } }\ntemplate = {\n  contents = \"x\"\n  destination = \"/d\"\n  wait = { min = \"1s\", max = \"2s\" }\n  exec = { command = \"echo hi\", timeout = 5 }\n}\n",
	"single-line-blocks.hcl":            "latchkey { state_dir = \"/var/lib/x\" }\nvault { address = \"https://v\" }\ncache {}\n" + minimal,
	"labels.hcl":                        "auto_auth {\n  method approle {\n    config { role_id_file_path = \"/r\" }\n  }\n  sink file {\n    config {\n      path = \"/t\"\n    }\n  }\n}\n",
	"ssh.hcl":                           "ssh {\n  trusted_user_ca_keys = \"/etc/ssh/ca.pem\"\n  user_ca_mounts = \"a, b\"\n  refresh_interval = 60\n  host_certificate {\n    mount = \"ssh-host\"\n    role = \"host\"\n    principals = [\"web1\"]\n    ttl = \"72h\"\n  }\n  reload_command = [\"systemctl\", \"reload\", \"ssh\"]\n}\n" + minimal,
	"byte-order-mark.hcl":               "\ufeffvault {\n  address = \"https://v\"\n}\n" + minimal, // Notepad's: skipped, as hcl/v2 skips it
	"errors-byte-order-mark-inside.hcl": minimal + "\ufeff\n",
	"crlf.hcl":                          strings.ReplaceAll("vault {\n  address = \"https://v\"\n}\n"+minimal, "\n", "\r\n"),
	"errors-unknown.hcl":                "vault {\n  adress = \"x\"\n}\nbogus = 1\n" + minimal,
	"errors-types.hcl":                  "vault {\n  timeout = [1]\n  tls_skip_verify = \"maybe\"\n}\n" + minimal,
	"errors-template.hcl":               "vault {\n  address = \"${var.x}\"\n}\n" + minimal,
	"errors-variable.hcl":               "vault {\n  address = foo\n}\n" + minimal,
	"refused-operator.hcl":              "vault {\n  timeout = 1 + 2\n}\n" + minimal,
	"errors-call.hcl":                   "vault {\n  address = upper(\"x\")\n}\n" + minimal,
	"errors-duplicate-object-key.hcl":   "vault = {\n  address = \"a\"\n  address = \"b\"\n}\n" + minimal,
	"refused-conditional.hcl":           "vault {\n  tls_skip_verify = true ? false : true\n}\n" + minimal,
	"refused-index.hcl":                 "vault {\n  address = [\"a\"][0]\n}\n" + minimal,
	"errors-syntax.hcl":                 "vault {\n  address = \"x\n}\n",
	"blocks.json": `{
  "vault": {"address": "https://v:8200", "retry": {"num_retries": 3}},
  "auto_auth": {
    "method": [{"type": "approle", "mount_path": "auth/ar", "config": {"role_id_file_path": "/r", "n": 1.5, "l": ["a", 2], "o": {"x": null}}}],
    "sink": [{"type": "file", "config": {"path": "/a", "mode": 384}}, {"type": "file", "config": {"path": "/b", "mode": "0600"}}]
  },
  "template": [{"contents": "a \\"${x}\\" \\u00e9", "destination": "/d"}, {"source": "/s", "destination": "/e", "perms": 420}],
  "template_config": {"exit_on_retry_failure": true},
  "exit_after_auth": false,
  "//": "a comment"
}`,
	"errors.json":        `{"vault": {"adress": 1}, "auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/t"}}}}`,
	"errors-syntax.json": `{"vault": {"address": "x",}}`,
}

// Every config the repository ships or documents, and every form of the
// syntax, reads the same with the agent's reader and with hcl/v2: the same
// Config (positions included), or both refuse it.
func TestReaderAgreesWithHCL(t *testing.T) {
	for name, body := range configsFrom(t) {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			testkit.WriteFile(t, p, body)
			ours, oracle, errOurs, errOracle := loadBoth(p)
			switch {
			case strings.HasPrefix(name, "refused-"):
				if errOurs == nil || !strings.Contains(errOurs.Error(), p+":2:") {
					t.Errorf("error = %v, want a refusal at %s:2:...", errOurs, p)
				}
			case errOurs != nil && errOracle != nil:
				if !strings.HasPrefix(errOurs.Error(), p+":") && !strings.Contains(errOurs.Error(), p) {
					t.Errorf("error does not name the file: %v", errOurs)
				}
			case errOurs != nil || errOracle != nil:
				t.Fatalf("readers disagree:\nours:  %v\nhcl/v2: %v", errOurs, errOracle)
			case !reflect.DeepEqual(ours, oracle):
				t.Errorf("configs differ:\nours:   %+v\nhcl/v2: %+v\nauto_auth ours %+v\nhcl/v2 %+v", ours, oracle, ours.AutoAuth, oracle.AutoAuth)
			}
		})
	}
}

// What the agent's reader accepts, hcl/v2 reads into the same Config; a
// refusal names the file. (The reader may refuse more: operators and other
// expressions, a key given twice in an object, a /* comment */ over several
// lines ending a line.)
func FuzzReaderAgreesWithHCL(f *testing.F) {
	for name, body := range syntaxCases {
		if strings.HasSuffix(name, ".hcl") {
			f.Add(body)
		}
	}
	f.Add(minimal)
	f.Add("vault = { retry = { num_retries = -1 } }\n" + minimal)
	f.Add("template {\n  contents = <<EOF\n$${a}\nEOF\n  destination = \"/d\"\n}\n" + minimal)
	fuzzAgree(f, "agent.hcl")
}

// The same for JSON configs.
func FuzzJSONReaderAgreesWithHCL(f *testing.F) {
	for name, body := range syntaxCases {
		if strings.HasSuffix(name, ".json") {
			f.Add(body)
		}
	}
	f.Add(`{"auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/t"}}, "sink": {"type": "file", "config": {"path": "/run/t", "mode": 416}}}}`)
	fuzzAgree(f, "agent.json")
}

func fuzzAgree(f *testing.F, name string) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		ours, oracle, errOurs, errOracle := loadBoth(p)
		if errOurs != nil {
			if !strings.Contains(errOurs.Error(), p) {
				t.Fatalf("error does not name the file: %v", errOurs)
			}
			return
		}
		if errOracle != nil {
			if strings.Contains(errOracle.Error(), "Duplicate argument") {
				return // hcloracle.Tree's JSON limit, not a disagreement
			}
			t.Fatalf("ours accepts what hcl/v2 refuses: %v\n%q", errOracle, src)
		}
		if !isASCII(src) {
			// hcl/v2 counts columns in grapheme clusters, this reader
			// in characters: compare all but columns.
			stripColumns(ours)
			stripColumns(oracle)
		}
		if !reflect.DeepEqual(ours, oracle) {
			t.Fatalf("configs differ for %q:\nours:   %+v\nhcl/v2: %+v", src, ours, oracle)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// stripColumns zeroes c's columns (lines and bytes stay).
func stripColumns(c *Config) {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if f := v.FieldByName("Column"); f.IsValid() && f.CanSet() && v.Type().Name() == "Position" {
				f.SetInt(0)
				return
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.Map:
			if v.Type().Elem().Name() == "Range" {
				for _, k := range v.MapKeys() {
					r := reflect.New(v.Type().Elem()).Elem()
					r.Set(v.MapIndex(k))
					walk(r)
					v.SetMapIndex(k, r)
				}
			}
		}
	}
	walk(reflect.ValueOf(c))
}

// Loading the packaged example with the agent's reader and with hcl/v2.
func BenchmarkLoad(b *testing.B) {
	files := []string{"../../packaging/agent/agent.hcl"}
	for _, r := range []struct {
		name  string
		parse func(string, []byte) (*hclconf.Body, error)
	}{{"hclconf", hclconf.ParseBytes}, {"hcl-v2", hcloracle.Tree}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := load(files, r.parse); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
