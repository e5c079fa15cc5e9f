package pam

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// agreedConfigs are files the helper's reader must read, each into the
// Config the HCL reader (loadHCL, the oracle) makes of it.
var agreedConfigs = map[string]string{
	"vault-ssh-helper's sample": "vault_addr = \"https://vault.example.com:8200\"\nssh_mount_point = \"ssh\"\nca_cert = \"\"\ntls_skip_verify = false\nallowed_roles = \"*\"\n",
	"comments and blanks":       "# the helper\n\n  // another\nvault_addr=\"https://v:8200\"   \n\tallowed_roles = [ \"web\" , \"db\", ]\n",
	"CRLF":                      "vault_addr = \"https://v:8200\"\r\nallowed_roles = \"a, b,,\"\r\n",
	"byte order mark":           "\ufeffvault_addr = \"https://v:8200\"\r\nallowed_roles = \"*\"\r\n", // Notepad's
	"everything":                "vault_addr = \"https://a:8200\"\nvault_addrs = [\"https://b:8200\", \"https://c\"]\nnamespace = \"team/a\"\ntls_server_name = \"vault\"\nproxy_addr = \"http://proxy:3128\"\nallowed_cidr_list = \"10.0.0.0/8, ::ffff:192.168.0.0/112 ,192.0.2.1\"\nallowed_roles = []\ntimeout = \"2.5s\"\naudit = \"off\"\naudit_file = \"/var/log/x.log\"\ntls_skip_verify = \"1\"\nssh_mount_point = \"/ssh/\"\n",
	"totp":                      "vault_addr = \"https://v\"\nmode = \"totp\"\ntoken_file = \"/run/token\"\ntotp_mount = \"/totp/\"\ntotp_key_pattern = \"ssh-{{user}}\"\ntimeout = \"30\"\n",
	"bool as a string key":      "vault_addr = \"https://v\"\nnamespace = true\n",
	"number":                    "vault_addr = \"https://v\"\ntimeout = 30\n",
	"fraction and exponent":     "vault_addr = \"https://v\"\ntimeout = 2.5e0\nnamespace = 1e3\n",
	// (007 is HCL 1's "007", HCL 2's "7": TestVaultSSHHelperAgrees.)
	"number as a string key":    "vault_addr = \"https://v\"\nnamespace = 42\nssh_mount_point = -3\n",
	"escape":                    "vault_addr = \"https://v\"\nnamespace = \"a\\tb\\\"c\\\\d\\u00e9\\U0001F600\"\n",
	"JSON content, .hcl name":   "{\"vault_addr\": \"https://v\", \"allowed_roles\": \"*\"}",
	"repeated keys":             "vault_addr = \"https://v\"\nallowed_roles = \"a\"\nvault_addr = \"https://w\"\nallowed_roles = [\"b\",\n \"c\"]\ntimeout = 5\ntimeout = \"7s\"\n",
	"trailing comment":          "vault_addr = \"https://v\" # prod\nallowed_roles = \"*\" // all\nmode = \"otp\" /* c */\n",
	"block comment":             "/* x\n y */\nvault_addr = \"https://v\"\n",
	"multi-line list":           "vault_addr = \"https://v\"\nallowed_roles = [\n  \"a\", # first\n  // none\n  \"b\",\n]\n",
	"list of numbers and bools": "vault_addr = \"https://v\"\nallowed_roles = [1, true, \"x\"]\n",
	"non-ASCII":                 "vault_addr = \"https://v\"\nnamespace = \"é\"\n",
	"null":                      "vault_addr = \"https://v\"\nnamespace = null\nallowed_roles = null\n",
	"heredoc":                   "vault_addr = <<EOF\nhttps://v\nEOF\nallowed_roles = <<-EOT\n    web,\n      db\n    EOT\n",
	"no final newline":          "vault_addr = \"https://v\"",
	"tab in a string":           "vault_addr = \"https://v\"\nnamespace = \"a\tb\"\n",
}

// refusedConfigs are files the helper refuses, with the exact message
// (config.hcl in a test's directory). The HCL reader refuses them too,
// except where noted in oracleAccepts.
var refusedConfigs = map[string]struct{ src, want string }{
	"unknown key": {"vault_addr = \"https://v\"\nbogus = \"x\"\n", `config.hcl:2:1: unknown key "bogus"`},
	// Invisible in an editor: '\ufeff' would not say what to do.
	"byte order mark inside": {"vault_addr = \"https://v\"\n\ufefftimeout = \"5s\"\n", `config.hcl:2:1: vault_addr: want a key, a value or one of = [ ] { } ,; found a byte order mark (U+FEFF, invisible in most editors; save the file as UTF-8 without a BOM)`},
	"block":                  {"vault {\n}\n", `config.hcl:1:7: vault: blocks are not part of this config; want vault = value`},
	"labelled block":         {"vault \"x\" {\n}\n", `config.hcl:1:7: vault: blocks are not part of this config; want vault = value`},
	"missing vault_addr":     {"allowed_roles = \"*\"\n", `config.hcl:1:1: missing key "vault_addr" (or "vault_addrs")`},
	"bad timeout":            {"vault_addr = \"https://v\"\ntimeout = \"0s\"\n", `config.hcl:2:11: timeout: want a positive duration such as "10s"`},
	"negative timeout":       {"vault_addr = \"https://v\"\ntimeout = -1\n", `config.hcl:2:11: invalid value for "timeout": want a non-negative duration`},
	"timeout text":           {"vault_addr = \"https://v\"\ntimeout = \"soon\"\n", `config.hcl:2:11: invalid value for "timeout": want a duration such as "30s" or "5m"`},
	"list for a string":      {"vault_addr = [\"https://v\"]\n", "config.hcl:1:14: invalid value for \"vault_addr\": want a string\nconfig.hcl:1:14: missing key \"vault_addr\" (or \"vault_addrs\")"},
	"bool list":              {"vault_addr = \"https://v\"\nallowed_roles = true\n", `config.hcl:2:17: invalid value for "allowed_roles": want a list of strings or a comma-separated string`},
	"nested list":            {"vault_addr = \"https://v\"\nallowed_roles = [[\"a\"]]\n", `config.hcl:2:18: invalid value for "allowed_roles": want a list of strings`},
	"null in a list":         {"vault_addr = \"https://v\"\nallowed_roles = [null]\n", `config.hcl:2:17: invalid value for "allowed_roles": want a list of strings`},
	"bad bool":               {"vault_addr = \"https://v\"\ntls_skip_verify = \"maybe\"\n", `config.hcl:2:19: invalid value for "tls_skip_verify": want true or false`},
	"unterminated":           {"vault_addr = \"https://v\n", `config.hcl:1:14: vault_addr: unterminated string (no closing " on the line)`},
	"quote inside":           {"vault_addr = \"https://v\"\"\n", `config.hcl:1:25: vault_addr: unterminated string (no closing " on the line)`},
	"http refused later":     {"vault_addr = \"ftp://v\"\n", `config.hcl:1:14: vault_addr: vault address "ftp://v": want http(s)://host[:port]`},
	"totp without token":     {"vault_addr = \"https://v\"\nmode = \"totp\"\n", `config.hcl:1:1: token_file: required when mode = "totp" (the helper never reads a token from the environment)`},
	"empty":                  {"", `config.hcl:1:1: missing key "vault_addr" (or "vault_addrs")`},
	"no value":               {"vault_addr = \n", `config.hcl:1:1: missing key "vault_addr" (or "vault_addrs")`},
	"no equals":              {"vault_addr \"https://v\"\n", `config.hcl:1:12: vault_addr: blocks are not part of this config; want vault_addr = value`},
	"bare word":              {"vault_addr = https\n", `config.hcl:1:14: vault_addr: https is not a value; a string is written in double quotes`},
	"bad escape":             {"vault_addr = \"https://v\\q\"\n", `config.hcl:1:24: vault_addr: invalid escape sequence "\\q" (known: \n \r \t \" \\ \a \b \f \v \xHH \OOO \uNNNN \UNNNNNNNN)`},
	"short unicode":          {"vault_addr = \"\\u12\"\n", `config.hcl:1:15: vault_addr: invalid escape sequence: \u wants 4 hex digits of a Unicode character`},
	"malformed number":       {"vault_addr = \"https://v\"\ntimeout = 1.\n", `config.hcl:2:11: timeout: malformed number; a string is written in double quotes`},
	"huge number":            {"vault_addr = \"https://v\"\ntimeout = 1e3000000\n", `config.hcl:2:11: timeout: number out of range (beyond ±1e308, or nearer 0 than 1e-323)`},
	"unterminated list":      {"vault_addr = \"https://v\"\nallowed_roles = [\"a\",\n", `config.hcl:2:17: allowed_roles: unterminated list (no ])`},
	"list without comma":     {"vault_addr = \"https://v\"\nallowed_roles = [\"a\" \"b\"]\n", `config.hcl:2:22: allowed_roles: want , or ] in the list, found '"'`},
	"unterminated comment":   {"/* x\nvault_addr = \"https://v\"\n", `config.hcl:1:1: unterminated /* comment`},
	"unterminated heredoc":   {"vault_addr = <<EOF\nhttps://v\n", `config.hcl:1:14: vault_addr: unterminated heredoc (no line "EOF")`},
	"NUL":                    {"vault_addr = \"https://v\x00\"\n", `config.hcl:1:24: vault_addr: control character in a string`},
	"invalid UTF-8":          {"vault_addr = \"https://v\"\nnamespace = \"\xff\"\n", `config.hcl:2:14: invalid UTF-8 (the file must be UTF-8 text)`},
	"non-ASCII key":          {"vault_addré = \"https://v\"\n", `config.hcl:1:1: unknown key "vault_addré"`},
	"several problems":       {"vault_addr = \"https://v\"\nmode = \"sms\"\naudit = \"file\"\n", "config.hcl:2:8: mode: want \"otp\" or \"totp\", not \"sms\"\nconfig.hcl:3:9: audit: want \"auto\", \"journal\", \"syslog\" or \"off\", not \"file\""},
	// What HCL 2 would evaluate beyond a literal: ${ and %{ are text, as in
	// vault-ssh-helper (nowAccepted); an expression is refused.
	"double dollar":  {"vault_addr = \"https://v\"\nnamespace = \"$${a} %%{b} $ %\"\n", `config.hcl:2:14: namespace: $${ is ambiguous: HCL 2 (and latchkey's reader before) reads it as ${, vault-ssh-helper as $${; write ${, which is taken literally`},
	"double percent": {"vault_addr = \"https://v\"\nnamespace = \"%%{b}\"\n", `config.hcl:2:14: namespace: %%{ is ambiguous: HCL 2 (and latchkey's reader before) reads it as %{, vault-ssh-helper as %%{; write %{, which is taken literally`},
	"expression":     {"vault_addr = \"https://v\"\ntimeout = 1 + 2\n", `config.hcl:2:13: timeout: want a key, a value or one of = [ ] { } ,; found '+'`},
}

// oracleAccepts are the refused files the HCL 2 reader reads: an expression,
// which HCL 1 (vault-ssh-helper) has not, and $${ and %%{, which HCL 2 reads
// as ${ and %{ and HCL 1 as they are (refused as ambiguous).
var oracleAccepts = map[string]bool{"expression": true, "double dollar": true, "double percent": true}

// nowAccepted were refused until the helper read vault-ssh-helper's files
// as HCL 1 does; vault-ssh-helper accepts each, the helper now too, the
// HCL 2 reader not (or, for a repeated key, only as the helper's warning
// says). TestVaultSSHHelperAgrees and TestConfigWarnings check their
// values and warnings.
var nowAccepted = map[string]string{
	"repeated key":        "vault_addr = \"https://v\"\nvault_addr = \"https://w\"\n",
	"two on a line":       "vault_addr = \"https://v\" mode = \"otp\"\n",
	"template":            "vault_addr = \"https://v\"\nnamespace = \"${\"a\"}\"\n",
	"directive":           "vault_addr = \"https://v\"\nnamespace = \"%{ if true }a%{ endif }\"\n",
	"json/repeated key":   "{\"vault_addr\": \"https://v\", \"vault_addr\": \"https://w\"}",
	"json/trailing comma": "{\"vault_addr\": \"https://v\",}",
	"json/truncated":      "{\"vault_addr\": \"https://v\"",
	"json/trailing":       "{\"vault_addr\": \"https://v\"} {}",
}

// The HCL 1 files of nowAccepted: the helper reads them, notes the HCL 1
// construct (so the HCL 2 oracle is not asked), and the HCL 2 reader
// refuses them or reads them otherwise.
func TestNowAccepted(t *testing.T) {
	for name, src := range nowAccepted {
		t.Run(name, func(t *testing.T) {
			path := "config.hcl"
			if strings.HasPrefix(name, "json/") {
				path = "c.json"
			}
			if _, err := parseConfig(path, []byte(src)); err != nil {
				t.Fatal(err)
			}
			p, _ := parseFile(path, []byte(src))
			if len(p.hcl1) == 0 {
				t.Fatal("no HCL 1 construct noted")
			}
			c, _ := parseConfig(path, []byte(src))
			if h, err := loadHCL(path, []byte(src)); err == nil && reflect.DeepEqual(h, c) {
				t.Fatalf("the HCL 2 reader reads it the same: nothing HCL 1 about it")
			}
		})
	}
}

// refusedJSON are .json configs refused, with the exact message.
var refusedJSON = map[string]struct{ src, want string }{
	"unknown key":   {"{\"vault_addr\": \"https://v\",\n \"bogus\": 1}", `c.json:2:2: unknown key "bogus"`},
	"not an object": {"[\"vault_addr\"]", `c.json:1:1: want a key (key = value), found '['`},
	"object value":  {"{\"vault_addr\": {\"a\": 1}}", `c.json:1:16: invalid value for "vault_addr": want a string, number, true, false or a list, not an object`},
	"missing":       {"{}", `c.json:1:1: missing key "vault_addr" (or "vault_addrs")`},
	"empty file":    {"", `c.json:1:1: missing key "vault_addr" (or "vault_addrs")`},
}

// agree loads src both ways: when the helper's reader accepts it, the HCL
// reader must read it into the same Config. It returns whether the helper's
// reader accepted it.
func agree(t *testing.T, path string, src []byte) bool {
	t.Helper()
	c, err := parseConfig(path, src)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error does not name the file: %v", err)
		}
		return false
	}
	p, _ := parseFile(path, src)
	if onlyRepeatedKeys(p) && !isJSON(src) {
		// HCL 2 refuses a repeated key, HCL 1 (vault-ssh-helper) takes the
		// last value, and so does the helper: the HCL 2 reader is given the
		// file without the earlier ones (blanked, lines kept).
		src = bytes.Clone(src)
		for _, it := range p.replaced {
			for i := it.keyOff; i < it.end; i++ {
				if src[i] != '\n' {
					src[i] = ' '
				}
			}
		}
	} else if len(p.hcl1) > 0 {
		// The file uses other HCL 1 rules where HCL 2's differ (a quoted
		// key, "007", ${ as text, ...): vault-ssh-helper's reading is the
		// reference for it, not HCL 2's; vshAgree (TestVaultSSHHelperAgrees,
		// FuzzVaultSSHHelperAgrees) checks it.
		return true
	}
	want, err := loadHCL(path, src)
	if err != nil {
		t.Fatalf("the helper read %q, the HCL reader refuses it: %v", src, err)
	}
	// Warnings are the helper's own (TestConfigWarnings).
	got := *c
	got.Warnings = nil
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("for %q:\nhelper = %+v\nHCL    = %+v", src, &got, want)
	}
	return true
}

// onlyRepeatedKeys reports whether a repeated key is the one HCL 1 rule
// that p's file uses.
func onlyRepeatedKeys(p *parsed) bool {
	for _, n := range p.hcl1 {
		if n != "repeated key" {
			return false
		}
	}
	return len(p.hcl1) > 0
}

func TestParserAgreesWithHCL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	for name, src := range agreedConfigs {
		t.Run(name, func(t *testing.T) {
			// Each is compared with the HCL 2 reader: none uses an HCL 1
			// rule that would skip it (but repeated keys, compared without
			// the earlier values).
			if p, err := parseFile(path, []byte(src)); err == nil && len(p.hcl1) > 0 && !onlyRepeatedKeys(p) {
				t.Fatalf("uses HCL 1 rules %q: the HCL 2 reader is not asked", p.hcl1)
			}
			if !agree(t, path, []byte(src)) {
				_, err := parseConfig(path, []byte(src))
				t.Fatalf("refused %q: %v", src, err)
			}
		})
	}
	for name, tc := range refusedConfigs {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig("config.hcl", []byte(tc.src))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error =\n%v\nwant\n%s", err, tc.want)
			}
			if _, herr := loadHCL("config.hcl", []byte(tc.src)); (herr == nil) != oracleAccepts[name] {
				t.Fatalf("the HCL reader: %v (oracleAccepts says %v)", herr, oracleAccepts[name])
			}
		})
	}
	for name, tc := range refusedJSON {
		t.Run("json/"+name, func(t *testing.T) {
			_, err := parseConfig("c.json", []byte(tc.src))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error =\n%v\nwant\n%s", err, tc.want)
			}
			if _, herr := loadHCL("c.json", []byte(tc.src)); herr == nil {
				t.Fatal("the HCL reader accepts it")
			}
		})
	}
	// Every file of testdata and of the fuzz corpus.
	files, _ := filepath.Glob("testdata/*.hcl")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !agree(t, f, b) {
			t.Errorf("%s refused", f)
		}
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

// JSON configs read as HCL's JSON reader reads them.
func TestParserAgreesWithHCLOnJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	for name, src := range map[string]string{
		"sample":  `{"vault_addr": "https://v:8200", "ssh_mount_point": "ssh", "tls_skip_verify": false, "allowed_roles": "*"}`,
		"lists":   `{"vault_addrs": ["https://a", "https://b"], "allowed_roles": ["web", 1, true], "allowed_cidr_list": "10.0.0.0/8, 192.0.2.1"}`,
		"numbers": "{\n  \"vault_addr\": \"https://v\",\n  \"timeout\": 2.5,\n  \"namespace\": 1e3\n}\n",
		"strings": `{"vault_addr": "https://v", "timeout": "3s", "tls_skip_verify": "true", "namespace": "a\tb\u00e9$${x} ${y} %{z}"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if !agree(t, path, []byte(src)) {
				_, err := parseConfig(path, []byte(src))
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
