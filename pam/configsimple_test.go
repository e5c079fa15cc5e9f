package pam

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// simpleConfigs are files loadSimple must read itself (the fast path is
// taken), each as the HCL parser reads it.
var simpleConfigs = map[string]string{
	"vault-ssh-helper's sample": "vault_addr = \"https://vault.example.com:8200\"\nssh_mount_point = \"ssh\"\nca_cert = \"\"\ntls_skip_verify = false\nallowed_roles = \"*\"\n",
	"comments and blanks":       "# the helper\n\n  // another\nvault_addr=\"https://v:8200\"   \n\tallowed_roles = [ \"web\" , \"db\", ]\n",
	"CRLF":                      "vault_addr = \"https://v:8200\"\r\nallowed_roles = \"a, b,,\"\r\n",
	"everything":                "vault_addr = \"https://a:8200\"\nvault_addrs = [\"https://b:8200\", \"https://c\"]\nnamespace = \"team/a\"\ntls_server_name = \"vault\"\nproxy_addr = \"http://proxy:3128\"\nallowed_cidr_list = \"10.0.0.0/8, ::ffff:192.168.0.0/112 ,192.0.2.1\"\nallowed_roles = []\ntimeout = \"2.5s\"\naudit = \"off\"\naudit_file = \"/var/log/x.log\"\ntls_skip_verify = \"1\"\nssh_mount_point = \"/ssh/\"\n",
	"totp":                      "vault_addr = \"https://v\"\nmode = \"totp\"\ntoken_file = \"/run/token\"\ntotp_mount = \"/totp/\"\ntotp_key_pattern = \"ssh-{{user}}\"\ntimeout = \"30\"\n",
	"bool as a string key":      "vault_addr = \"https://v\"\nnamespace = true\n",
}

// Files loadSimple leaves to the HCL parser (whatever that parser says).
var hclOnlyConfigs = map[string]string{
	"number":              "vault_addr = \"https://v\"\ntimeout = 30\n",
	"escape":              "vault_addr = \"https://v\"\nnamespace = \"a\\tb\"\n",
	"template":            "vault_addr = \"https://v\"\nnamespace = \"${\"a\"}\"\n",
	"trailing comment":    "vault_addr = \"https://v\" # prod\n",
	"block comment":       "/* x */\nvault_addr = \"https://v\"\n",
	"multi-line list":     "vault_addr = \"https://v\"\nallowed_roles = [\n  \"a\",\n]\n",
	"non-ASCII":           "vault_addr = \"https://v\"\nnamespace = \"é\"\n",
	"unknown key":         "vault_addr = \"https://v\"\nbogus = \"x\"\n",
	"repeated key":        "vault_addr = \"https://v\"\nvault_addr = \"https://w\"\n",
	"block":               "vault {\n}\n",
	"missing vault_addr":  "allowed_roles = \"*\"\n",
	"bad timeout":         "vault_addr = \"https://v\"\ntimeout = \"0s\"\n",
	"bad cidr":            "vault_addr = \"https://v\"\nallowed_cidr_list = \"nope\"\n",
	"list for a string":   "vault_addr = [\"https://v\"]\n",
	"bool list":           "vault_addr = \"https://v\"\nallowed_roles = true\n",
	"unterminated":        "vault_addr = \"https://v\n",
	"quote inside":        "vault_addr = \"https://v\"\"\n",
	"http refused later":  "vault_addr = \"ftp://v\"\n",
	"totp without token":  "vault_addr = \"https://v\"\nmode = \"totp\"\n",
	"empty":               "",
	"json-looking in hcl": "{\"vault_addr\": \"https://v\"}",
}

// agree loads src both ways: when loadSimple reads it, the HCL parser must
// read it too, into the same Config. It returns whether loadSimple read it.
func agree(t *testing.T, path string, src []byte) bool {
	t.Helper()
	c, ok := loadSimple(path, src)
	if !ok {
		return false
	}
	want, err := loadHCL(path, src)
	if err != nil {
		t.Fatalf("loadSimple read %q, the HCL parser refuses it: %v", src, err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("for %q:\nloadSimple = %+v\nHCL        = %+v", src, c, want)
	}
	return true
}

func TestSimpleLoaderAgreesWithHCL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	for name, src := range simpleConfigs {
		t.Run(name, func(t *testing.T) {
			if !agree(t, path, []byte(src)) {
				t.Fatalf("loadSimple left %q to the HCL parser", src)
			}
		})
	}
	for name, src := range hclOnlyConfigs {
		t.Run(name, func(t *testing.T) {
			if agree(t, path, []byte(src)) {
				t.Fatalf("loadSimple read %q itself", src)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		if _, ok := loadSimple(filepath.Join(dir, "c.json"), []byte(simpleConfigs["vault-ssh-helper's sample"])); ok {
			t.Fatal("loadSimple read a .json file")
		}
	})
	// Every file of testdata and of the fuzz corpus.
	files, _ := filepath.Glob("testdata/*.hcl")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, f, b)
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzLoadConfig/*")
	for _, f := range corpus {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if s, ok := strings.CutPrefix(line, "string("); ok {
				if src, err := strconv.Unquote(strings.TrimSuffix(s, ")")); err == nil {
					agree(t, path, []byte(src))
				}
			}
		}
	}
}
