package pam

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.hcl")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The file from a public Alibaba Cloud golden-image demo must load unchanged.
func TestLoadConfigAlibabaDemo(t *testing.T) {
	c, err := LoadConfig("testdata/alibaba-demo.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.VaultAddrs; len(got) != 1 || got[0] != "http://127.0.0.1:8200" {
		t.Errorf("VaultAddrs = %q", got)
	}
	if c.SSHMountPoint != "ssh-otp" || !c.TLSSkipVerify || c.Namespace != "" {
		t.Errorf("config = %+v", c)
	}
	if !c.RoleAllowed("anything") {
		t.Error(`allowed_roles = "*" must admit any role`)
	}
	if len(c.AllowedCIDRs) != 1 || c.AllowedCIDRs[0] != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("AllowedCIDRs = %v", c.AllowedCIDRs)
	}
	if c.Timeout != DefaultTimeout || c.Mode != ModeOTP || c.Audit != AuditAuto {
		t.Errorf("defaults: timeout %s mode %s audit %s", c.Timeout, c.Mode, c.Audit)
	}
	if err := c.CheckSchemes(true); err != nil {
		t.Errorf("-dev with http: %v", err)
	}
	if err := c.CheckSchemes(false); err == nil || !strings.Contains(err.Error(), "http:// is refused without -dev") {
		t.Errorf("http without -dev: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr string // substring; "" = must load
		check   func(t *testing.T, c *Config)
	}{
		"spaces in lists": {
			body: `vault_addr = "https://v:8200"
allowed_cidr_list = " 10.0.0.0/8 , 192.168.1.0/24,2001:db8::/32, 172.16.0.1 "
allowed_roles = " web , db "`,
			check: func(t *testing.T, c *Config) {
				want := []string{"10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "172.16.0.1/32"}
				if len(c.AllowedCIDRs) != len(want) {
					t.Fatalf("AllowedCIDRs = %v", c.AllowedCIDRs)
				}
				for i, w := range want {
					if c.AllowedCIDRs[i].String() != w {
						t.Errorf("cidr %d = %s, want %s", i, c.AllowedCIDRs[i], w)
					}
				}
				if !c.RoleAllowed("web") || !c.RoleAllowed("db") || c.RoleAllowed("*") || c.RoleAllowed("") {
					t.Errorf("roles = %q", c.AllowedRoles)
				}
			},
		},
		"empty roles refuse all": {
			body: `vault_addr = "https://v:8200"
allowed_roles = ""`,
			check: func(t *testing.T, c *Config) {
				if c.RoleAllowed("web") {
					t.Error("empty allowed_roles admitted a role")
				}
			},
		},
		"failover list after vault_addr": {
			body: `vault_addr = "https://a:8200"
vault_addrs = ["https://b:8200", "https://c:8200"]
timeout = "3s"`,
			check: func(t *testing.T, c *Config) {
				if strings.Join(c.VaultAddrs, " ") != "https://a:8200 https://b:8200 https://c:8200" {
					t.Errorf("VaultAddrs = %q", c.VaultAddrs)
				}
				if c.Timeout != 3*time.Second {
					t.Errorf("Timeout = %s", c.Timeout)
				}
			},
		},
		"vault_addrs alone": {
			body: `vault_addrs = ["https://b:8200"]`,
		},
		"totp": {
			body: `vault_addr = "https://v:8200"
mode = "totp"
token_file = "/run/latchkey/token"
totp_key_pattern = "ssh-{{user}}"`,
			check: func(t *testing.T, c *Config) {
				if c.Mode != ModeTOTP || c.TOTPMount != "totp" || c.TOTPKeyPattern != "ssh-{{user}}" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		"unknown key": {
			body:    "vault_addr = \"https://v:8200\"\nallowed_role = \"*\"\n",
			wantErr: `config.hcl:2:1: unknown key "allowed_role"`,
		},
		"missing vault_addr": {
			body:    `ssh_mount_point = "ssh"`,
			wantErr: `missing key "vault_addr" (or "vault_addrs")`,
		},
		"bad address": {
			body:    `vault_addr = "vault:8200"`,
			wantErr: `config.hcl:1:14: vault_addr: vault address "vault:8200": want http(s)://host[:port]`,
		},
		// vault-ssh-helper's rule: the entries before a bad one still
		// work, it and those after admit nothing; a warning says so.
		"bad cidr": {
			body: "vault_addr = \"https://v:8200\"\nallowed_cidr_list = \"10.0.0.0/8, 10.0.0/33, 192.168.0.0/16\"",
			check: func(t *testing.T, c *Config) {
				if len(c.AllowedCIDRs) != 1 || c.AllowedCIDRs[0].String() != "10.0.0.0/8" {
					t.Errorf("AllowedCIDRs = %v", c.AllowedCIDRs)
				}
				if want := `config.hcl:2:21: allowed_cidr_list: "10.0.0/33" is not a CIDR block: no address is admitted by it or the entries after it (vault-ssh-helper's rule)`; len(c.Warnings) != 1 || !strings.HasSuffix(c.Warnings[0], want) {
					t.Errorf("warnings = %q, want %q", c.Warnings, want)
				}
			},
		},
		"bad bool": {
			body:    "vault_addr = \"https://v:8200\"\ntls_skip_verify = \"maybe\"",
			wantErr: `config.hcl:2:`,
		},
		"bad mode": {
			body:    "vault_addr = \"https://v:8200\"\nmode = \"sms\"",
			wantErr: `config.hcl:2:8: mode: want "otp" or "totp", not "sms"`,
		},
		"totp without token_file": {
			body:    "vault_addr = \"https://v:8200\"\nmode = \"totp\"",
			wantErr: `token_file: required when mode = "totp"`,
		},
		"zero timeout": {
			body:    "vault_addr = \"https://v:8200\"\ntimeout = \"0s\"",
			wantErr: `config.hcl:2:11: timeout: want a positive duration`,
		},
		"syntax error": {
			body:    "vault_addr = \n",
			wantErr: `config.hcl:1:`,
		},
		"ca_cert missing": {
			body:    "vault_addr = \"https://v:8200\"\nca_cert = \"/nonexistent/ca.pem\"",
			wantErr: `config.hcl:2:11: ca_cert: open /nonexistent/ca.pem: no such file or directory`,
		},
		"ca_cert not PEM": {
			body:    "vault_addr = \"https://v:8200\"\nca_cert = \"/etc/passwd\"",
			wantErr: `config.hcl:2:11: ca_cert: /etc/passwd holds no PEM certificate`,
		},
		"ca_path not a directory": {
			body:    "vault_addr = \"https://v:8200\"\nca_path = \"/etc/passwd\"",
			wantErr: `config.hcl:2:11: ca_path: /etc/passwd is not a directory`,
		},
		"ca_path directory": {
			body: "vault_addr = \"https://v:8200\"\nca_path = \"/etc\"",
		},
		"bad audit": {
			body:    "vault_addr = \"https://v:8200\"\naudit = \"file\"",
			wantErr: `audit: want "auto", "journal", "syslog" or "off", not "file"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := LoadConfig(writeConfig(t, tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// A config that cannot be read says so and names the path (vault-ssh-helper
// said `missing config "vault_addr"` for a missing file).
func TestLoadConfigUnreadable(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		path, want string
	}{
		"missing file": {filepath.Join(dir, "nope.hcl"), "no such file"},
		"a directory":  {dir, "is a directory"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := LoadConfig(tc.path)
			if c != nil || err == nil || !strings.HasPrefix(err.Error(), "read config "+tc.path+": ") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want \"read config %s: ...%s\"", err, tc.path, tc.want)
			}
		})
	}
}

func TestCheckSchemesDev(t *testing.T) {
	c := &Config{VaultAddrs: []string{"https://v:8200"}, Path: "c.hcl"}
	if err := c.CheckSchemes(true); err == nil || !strings.Contains(err.Error(), "-dev allows only http://") {
		t.Errorf("https with -dev: %v", err)
	}
	if err := c.CheckSchemes(false); err != nil {
		t.Errorf("https: %v", err)
	}
}
