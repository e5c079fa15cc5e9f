// Package differential runs Vault Agent (the test Vault binary contains it:
// `vault agent`) and latchkey-agent on the same templates against the same
// Vault and requires byte-identical output files.
package differential

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }

// templates in the shapes Vault's documentation and real configs use.
var templates = map[string]string{
	"kv2-with.txt": `{{ with secret "app-kv2/app/rds" }}user={{ .Data.data.username }}
password={{ .Data.data.password }}
dash={{ index .Data.data "key-with-dash" }}
port={{ .Data.data.port }}
version={{ .Data.metadata.version }}
{{ end }}`,
	"kv2-data-path.txt": `{{- with secret "app-kv2/data/app/rds" -}}
{{ .Data.data.username }}
{{- end }}`,
	"kv1.env": `{{ with secret "app-kv1/app" }}{{ range $k, $v := .Data }}{{ $k | toUpper }}={{ $v }}
{{ end }}{{ end }}`,
	"range.conf": `{{ with secret "app-kv2/app/rds" -}}
{{ range $k, $v := .Data.data -}}
{{ $k }}: {{ $v }}
{{ end -}}
{{ end }}`,
	"json.json": `{{ with secret "app-kv2/app/rds" }}{{ .Data.data | toJSON }}
{{ .Data.data | toJSONPretty }}
{{ end }}`,
	"yaml.yml": `{{ with secret "app-kv2/app/rds" }}{{ .Data.data | toYAML }}{{ end }}
`,
	"helpers.txt": `{{ with secret "app-kv2/app/rds" -}}
{{ .Data.data.username | base64Encode }}
{{ .Data.data.username | base64Encode | base64Decode }}
{{ .Data.data.hosts | split "," | join ";" }}
{{ .Data.data.username | replaceAll "a" "4" }}
{{ .Data.data.hosts | split "," | contains "db2" }}
{{ (.Data.data.blob | parseJSON).nested.x }}
{{ .Data.data.username | sprig_upper }} {{ "  x  " | trimSpace }} {{ env "LATCHKEY_DIFF_ENV" }}
{{ .Data.data.mixed | toLower }} {{ .Data.data.username | toUpper | toLower }}
{{- end }}`,
	// the rest of consul-template's helpers (agent/template/funcs_more.go).
	"helpers-more.txt": `{{ define "inner" }}[{{ . }}]{{ end -}}
{{ with secret "app-kv2/app/rds" -}}
{{ .Data.data.username | toTitle }} {{ .Data.data.password | sha256Hex }} {{ .Data.data.password | md5sum }} {{ hmacSHA256Hex .Data.data.password "k" }}
{{ .Data.data.hosts | regexReplaceAll "db([0-9])" "node-$1" }} {{ .Data.data.hosts | regexMatch "^db" }}
{{ "xxhixx" | trim "x" }} {{ envOrDefault "LATCHKEY_NOPE" "dflt" }} {{ mustEnv "LATCHKEY_DIFF_ENV" }}
{{ .Data.data | toTOML }}
{{ .Data.data | toUnescapedJSON }}
{{ .Data.data.blob | parseJSON | toUnescapedJSONPretty }}
{{ "a=1,b=2, c" | splitToMap "," "=" }}
{{ add 1 2 }} {{ 10 | subtract 3 }} {{ multiply 2 2.5 }} {{ 7 | divide 2 }} {{ 7 | modulo 3 }} {{ minimum 3 1 }} {{ maximum 3 1.5 }} {{ add 1 (.Data.data.port | print | parseInt) }}
{{ range loop 3 }}{{ . }},{{ end }} {{ range loop 5 8 }}{{ . }}{{ end }}
{{ parseInt "" }} {{ parseBool "" }} {{ parseFloat "" }} {{ parseUint "42" }} {{ (parseYAML "a: [1, 2]").a }}
{{ scratch.Set "k" "v" }}{{ scratch.Get "k" }} {{ scratch.MapSet "m" "b" 2 }}{{ scratch.MapSet "m" "a" 1 }}{{ scratch.MapValues "m" }} {{ scratch.Key "zz" }}
{{ executeTemplate "inner" "dot" }} {{ executeTemplate "inner" }}
{{ containsAll (sprig_list "db1" "db2") (.Data.data.hosts | split ",") }} {{ containsNone (sprig_list "zz") (.Data.data.hosts | split ",") }} {{ in (.Data.data.hosts | split ",") "db3" }}
{{ explodeMap (sprig_dict "a/b" "1" "a/c" "2") }} {{ mergeMap (sprig_dict "a" "1") (sprig_dict "a" "2" "b" "3") }} {{ mergeMapWithOverride (sprig_dict "a" "1") (sprig_dict "a" "2" "b" "3") }}
{{ "line1\nline2" | indent 2 }}
{{- end }}`,
	"kv2-version.txt": `{{ with secret "app-kv2/app/rds?version=1" }}{{ .Data.data.username }} v{{ .Data.metadata.version }}{{ end }}`,
	// the write form, on a deterministic endpoint.
	"write.txt": `{{ with secret "sys/tools/hash/sha2-256" "input=aGVsbG8=" "format=hex" }}{{ .Data.sum }}{{ end }}
{{ range secrets "app-kv1/" }}{{ . }},{{ end }}`,
	// the form in Vault's documentation: .Data.Cert, .Data.Key, .Data.CA.
	"cert-data.pem": `{{- with pkiCert "pki-diff/issue/web" "common_name=web.example.com" "ttl=1h" -}}
{{ .Data.Cert }}{{ .Data.Key }}{{ .Data.CA }}{{ .CaChainContains .Data.CA }}
{{- end }}`,
	// issued afresh by each program (not copied over): compared with the
	// PEM bodies masked, for layout (newlines, which block goes where).
	"cert-fresh.pem": `{{ with pkiCert "pki-diff/issue/web" "common_name=fresh.example.com" "ttl=1h" }}{{ .Data.Cert }}{{ .Data.Key }}
{{ .Data.CA }}|{{ len .Data.CAChain }}{{ end }}`,
	"list.txt": `{{ range secrets "app-kv2/app/" }}{{ . }}
{{ end }}`,
	"missing-key.txt": `{{ with secret "app-kv2/app/rds" }}[{{ .Data.data.nope }}]{{ end }}`,
	"cert.pem": `{{ with pkiCert "pki-diff/issue/web" "common_name=web.example.com" "ttl=1h" }}{{ .Cert }}
{{ .Key }}
{{ .CA }}{{ end }}`,
}

func setup(t *testing.T) {
	c := srv.Client
	srv.MountT(t, "app-kv2", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	srv.MountT(t, "app-kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}})
	_, err := c.Logical().Write("app-kv2/data/app/rds", map[string]any{"data": map[string]any{
		"username": "app_user", "password": "s3cr3t", "key-with-dash": "dash-value", "port": 5432,
		"hosts": "db1,db2,db3", "mixed": "MiXeD-Case_Ä", "blob": `{"nested":{"x":"deep"}}`,
	}})
	testkit.Must(t, err)
	_, err = c.Logical().Write("app-kv2/data/app/cache", map[string]any{"data": map[string]any{"k": "v"}})
	testkit.Must(t, err)
	_, err = c.Logical().Write("app-kv1/app", map[string]any{"db_host": "db.internal", "db_name": "orders"})
	testkit.Must(t, err)
	srv.MountT(t, "pki-diff", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}})
	_, err = c.Logical().Write("pki-diff/root/generate/internal", map[string]any{"common_name": "Diff Root", "ttl": "87000h"})
	testkit.Must(t, err)
	_, err = c.Logical().Write("pki-diff/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "72h"})
	testkit.Must(t, err)
}

// config is the agent config both programs read, differing only in where
// files go.
func config(t *testing.T, dir, tokenFile, tmplDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vault {\n  address = %q\n}\n", srv.Addr)
	fmt.Fprintf(&b, "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\n", tokenFile)
	b.WriteString("exit_after_auth = true\n")
	b.WriteString("template_config {\n  exit_on_retry_failure = true\n}\n")
	for name := range templates {
		fmt.Fprintf(&b, "template {\n  source = %q\n  destination = %q\n}\n", filepath.Join(tmplDir, name+".tmpl"), filepath.Join(dir, name))
	}
	// inline contents, and other delimiters (the shapes of templates
	// embedded in HCL next to files that use {{ }} themselves).
	fmt.Fprintf(&b, "template {\n  contents = %q\n  destination = %q\n}\n",
		`{{ with secret "app-kv1/app" }}host={{ .Data.db_host }}{{ end }}`+"\n", filepath.Join(dir, "inline.txt"))
	fmt.Fprintf(&b, "template {\n  contents = %q\n  left_delimiter = \"[[\"\n  right_delimiter = \"]]\"\n  destination = %q\n}\n",
		`{{ literal }} [[ with secret "app-kv2/app/rds" ]][[ .Data.data.username ]][[ end ]]`, filepath.Join(dir, "delims.txt"))
	p := filepath.Join(dir, "agent.hcl")
	testkit.Must(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

func TestSameOutputAsVaultAgent(t *testing.T) {
	setup(t)
	root := t.TempDir()
	tmplDir := filepath.Join(root, "templates")
	testkit.Must(t, os.Mkdir(tmplDir, 0o755))
	for name, body := range templates {
		testkit.Must(t, os.WriteFile(filepath.Join(tmplDir, name+".tmpl"), []byte(body), 0o644))
	}
	tokenFile := filepath.Join(root, "token")
	testkit.Must(t, os.WriteFile(tokenFile, []byte(srv.RootToken), 0o600))
	bins, err := testbin.Build(filepath.Join(root, "bin"), "./cmd/latchkey-agent")
	testkit.Must(t, err)

	ours := filepath.Join(root, "latchkey")
	theirs := filepath.Join(root, "vault-agent")
	testkit.Must(t, os.Mkdir(ours, 0o755))
	testkit.Must(t, os.Mkdir(theirs, 0o755))
	run(t, bins[0], "-config", config(t, ours, tokenFile, tmplDir))
	// pkiCert reuses a still-valid certificate at its destination (both
	// programs do). Ours again, as after a restart: the certificate must not
	// be re-issued. Then Vault Agent gets our file, so that both render from
	// the same certificate read back from disk.
	first, err := os.ReadFile(filepath.Join(ours, "cert.pem"))
	testkit.Must(t, err)
	run(t, bins[0], "-config", filepath.Join(ours, "agent.hcl"))
	cert, err := os.ReadFile(filepath.Join(ours, "cert.pem"))
	testkit.Must(t, err)
	if firstCert(t, first) != firstCert(t, cert) {
		t.Error("a restart re-issued a still-valid certificate")
	}
	testkit.Must(t, os.WriteFile(filepath.Join(theirs, "cert.pem"), cert, 0o644))
	certData, err := os.ReadFile(filepath.Join(ours, "cert-data.pem"))
	testkit.Must(t, err)
	testkit.Must(t, os.WriteFile(filepath.Join(theirs, "cert-data.pem"), certData, 0o644))
	vault, err := vaulttest.BinPath()
	testkit.Must(t, err)
	run(t, vault, "agent", "-config", config(t, theirs, tokenFile, tmplDir))

	names := []string{"inline.txt", "delims.txt"}
	for name := range templates {
		names = append(names, name)
	}
	for _, name := range names {
		a, err := os.ReadFile(filepath.Join(ours, name))
		testkit.Must(t, err)
		b, err := os.ReadFile(filepath.Join(theirs, name))
		testkit.Must(t, err)
		if name == "cert-fresh.pem" {
			a, b = pemBodies.ReplaceAll(a, []byte("<$1>")), pemBodies.ReplaceAll(b, []byte("<$1>"))
		}
		if string(a) != string(b) {
			t.Errorf("%s differs\nlatchkey:\n%s\nvault agent:\n%s", name, a, b)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(ours, "delims.txt")); string(got) != "{{ literal }} app_user" {
		t.Errorf("delims.txt = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(ours, "write.txt")); string(got) != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\napp," {
		t.Errorf("write.txt = %q", got)
	}
	// Identical could also mean both empty: check a line of each kind.
	more, _ := os.ReadFile(filepath.Join(ours, "helpers-more.txt"))
	for _, want := range []string{"3 7 5 3 1 1 3 5433\n0,1,2, 567\n", "0 false 0 42 [1 2]\n", "[dot] [<no value>]\n",
		"map[a:map[b:1 c:2]] map[a:1 b:3] map[a:2 b:3]\n", "dflt from-env\n"} {
		if !strings.Contains(string(more), want) {
			t.Errorf("helpers-more.txt lacks %q:\n%s", want, more)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(ours, "helpers.txt")); !strings.Contains(string(got), "\nmixed-case_ä app_user") {
		t.Errorf("helpers.txt lacks the toLower line:\n%s", got)
	}
	if got, _ := os.ReadFile(filepath.Join(ours, "missing-key.txt")); string(got) != "[<no value>]" {
		t.Errorf("missing-key.txt = %q", got)
	}
}

var pemBodies = regexp.MustCompile(`(?s)-----BEGIN ([A-Z ]+)-----.*?-----END [A-Z ]+-----`)

// firstCert is the first PEM block of a rendered file.
func firstCert(t *testing.T, b []byte) string {
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return string(blk.Bytes)
}

func run(t *testing.T, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LATCHKEY_DIFF_ENV=from-env"}
	var out testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	testkit.ScanOutput(t, cmd)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
}
