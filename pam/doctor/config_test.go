package doctor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/test/testkit"
)

// The config's warnings (what works, but probably not as meant) are WARN
// lines of the config check, one each, after its OK or FAIL; a config
// without any prints none.
func TestConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		src  string
		want []string
	}{
		"repeated key and a bad CIDR": {
			src: "vault_addr = \"https://v:8200\"\nallowed_roles = \"web\"\nallowed_cidr_list = \"10.0.0.0/8,nope\"\nallowed_roles = \"web, db\"\n",
			want: []string{
				`WARN config: FILE:3:21: allowed_cidr_list: "nope" is not a CIDR block or IP address: no address is admitted by it or the entries after it (vault-ssh-helper's rule) — fix: edit the file as the warning says (README: Configuration)`,
				`WARN config: FILE:4:1: key "allowed_roles" set again (first on line 2): the last value counts, as in vault-ssh-helper — fix: edit the file as the warning says (README: Configuration)`,
			},
		},
		"none": {src: "vault_addr = \"https://v:8200\"\nallowed_roles = \"web\"\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".hcl")
			testkit.Must(t, os.WriteFile(path, []byte(tc.src), 0o644))
			var out bytes.Buffer
			rp := &doctor.Report{Out: &out}
			if checkConfig(path, rp) == nil {
				t.Fatalf("config refused: %s", out.String())
			}
			lines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(out.String(), path, "FILE"), "\n"), "\n")
			if len(lines) != 1+len(tc.want) {
				t.Fatalf("got\n%s\nwant one config line and\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
			for i, w := range tc.want {
				if lines[1+i] != w {
					t.Errorf("line %d =\n%s\nwant\n%s", 2+i, lines[1+i], w)
				}
			}
			if len(tc.want) > 0 && rp.Worst() != doctor.Warn && !strings.HasPrefix(lines[0], "FAIL") {
				t.Errorf("worst = %v, want WARN", rp.Worst())
			}
		})
	}
}

// A config in a directory every user may write is refused by every login
// (latchkey-ssh-helper's CheckWriters): doctor fails it, naming the
// directory, though the file itself is root's and 0644.
func TestConfigInWritableDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	testkit.Must(t, os.Mkdir(dir, 0o755))
	testkit.Must(t, os.Chmod(dir, 0o777))
	path := filepath.Join(dir, "config.hcl")
	testkit.Must(t, os.WriteFile(path, []byte("vault_addr = \"https://v:8200\"\nallowed_roles = \"web\"\n"), 0o644))
	var out bytes.Buffer
	rp := &doctor.Report{Out: &out}
	checkConfig(path, rp)
	if rp.Worst() != doctor.Fail || !strings.Contains(out.String(), "its directory "+dir+" is writable by every user") {
		t.Fatalf("worst %v, want a FAIL naming %s:\n%s", rp.Worst(), dir, out.String())
	}
}
