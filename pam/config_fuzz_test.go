package pam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Any config file: no panic, a refusal names the file, and whatever the
// helper's reader accepts the HCL reader reads the same (agree).
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"vault_addr = \"https://vault:8200\"\n",
		"vault_addrs = [\"https://a:8200\", \"https://b:8200\"]\nallowed_roles = \"*\"\ntimeout = \"5s\"\n",
		"vault_addr = \"https://v\"\nallowed_cidr_list = \"10.0.0.0/8,::1/128\"\nmode = \"totp\"\ntotp_key_pattern = \"ssh-{{user}}\"\n",
		"vault_addr = 1\n", "# c\nvault_addr = \"https://v\"\r\nallowed_roles = [\"a\", \"b\",]\ntls_skip_verify = \"t\"\n", "{\"vault_addr\": \"https://v\"}", "a = b = c", "\x00\xff",
		"vault_addr = <<-EOF\n  https://v\n  EOF\nallowed_roles = [\n 1, # c\n true,\n]\n", "/* */ vault_addr = \"\\u00e9$${\" // x\ntimeout = 1.5e1\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		p := filepath.Join(dir, "config.hcl")
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(p)
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name the file: %v", err)
		}
		agree(t, p, []byte(src))
	})
}
