package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/sshtrust"
)

const sshAuth = "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/t\" }\n  }\n}\n"

func writeConf(t *testing.T, name, body string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSSHStanza(t *testing.T) {
	p := writeConf(t, "a.hcl", sshAuth+`ssh {
  trusted_user_ca_keys = "/etc/ssh/trusted-user-ca-keys.pem"
  user_ca_mounts       = ["ssh-client-signer", "ssh-client-signer-2"]
  pinned_user_ca_keys  = "/etc/latchkey/pinned-user-ca.pub"
  host_certificate {
    mount = "ssh-host-signer"
    role  = "host"
    ttl   = "72h"
  }
  check_command  = ["sshd", "-t"]
  reload_command = ["systemctl", "reload", "ssh"]
}
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := c.SSH.Trust()
	want := sshtrust.Config{
		TrustedUserCAKeys: "/etc/ssh/trusted-user-ca-keys.pem",
		UserCAMounts:      []string{"ssh-client-signer", "ssh-client-signer-2"},
		PinnedUserCAKeys:  "/etc/latchkey/pinned-user-ca.pub",
		RefreshInterval:   sshtrust.DefaultRefreshInterval,
		Host:              &sshtrust.HostCertificate{Mount: "ssh-host-signer", Role: "host", Keys: []string{sshtrust.DefaultHostKeys}, TTL: 72 * time.Hour},
		CheckCommand:      []string{"sshd", "-t"},
		ReloadCommand:     []string{"systemctl", "reload", "ssh"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ssh = %+v\nhost %+v\nwant %+v\nhost %+v", got, got.Host, want, want.Host)
	}
}

// A later file overrides the keys it gives and keeps the others.
func TestSSHMergesPerKey(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10.hcl"), []byte(sshAuth+"ssh {\n  trusted_user_ca_keys = \"/t\"\n  user_ca_mounts = [\"old\"]\n  host_certificate {\n    mount = \"h\"\n    role = \"r\"\n  }\n}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "20.hcl"), []byte("ssh {\n  user_ca_mounts = [\"old\", \"new\"]\n  host_certificate {\n    principals = [\"a.example.com\"]\n  }\n}\n"), 0o600)
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := c.SSH.Trust()
	if got.TrustedUserCAKeys != "/t" || !reflect.DeepEqual(got.UserCAMounts, []string{"old", "new"}) ||
		got.Host.Mount != "h" || got.Host.Role != "r" || !reflect.DeepEqual(got.Host.Principals, []string{"a.example.com"}) {
		t.Errorf("merged ssh = %+v host %+v", got, got.Host)
	}
}

func TestSSHErrorsNamePosition(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key": {"ssh {\n  trusted_user_ca_keys = \"/t\"\n  user_ca_mounts = [\"m\"]\n  bogus = 1\n}\n",
			`a.hcl:9:3: unknown key "bogus" in ssh`},
		"unknown host key": {"ssh {\n  host_certificate {\n    mount = \"h\"\n    role = \"r\"\n    kyes = []\n  }\n}\n",
			`a.hcl:10:5: unknown key "kyes" in ssh.host_certificate`},
		"wrong type": {"ssh {\n  trusted_user_ca_keys = \"/t\"\n  user_ca_mounts = [\"m\"]\n  refresh_interval = \"often\"\n}\n",
			`a.hcl:9:22: invalid value for "refresh_interval": want a duration such as "30s" or "5m"`},
		"validate at key": {"ssh {\n  trusted_user_ca_keys = \"/t\"\n}\n",
			"a.hcl:7:3: ssh: trusted_user_ca_keys: needs user_ca_mounts or pinned_user_ca_keys: the trust file is never written empty"},
		"validate at stanza": {"ssh {\n  host_certificate {\n    mount = \"h\"\n  }\n}\n",
			"a.hcl:7:3: ssh: host_certificate.role: is required (a role with allow_host_certificates=true)"},
		"validate empty": {"ssh {\n}\n",
			"a.hcl:6:1: ssh: trusted_user_ca_keys: the ssh block manages nothing: give trusted_user_ca_keys, host_certificate or both"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeConf(t, "a.hcl", sshAuth+tc.body))
			if err == nil {
				t.Fatal("loaded")
			}
			if got := err.Error(); !filepathSuffix(got, tc.want) {
				t.Errorf("error %q\nwant suffix %q", got, tc.want)
			}
		})
	}
}

// filepathSuffix reports whether err ends with want after the temp dir.
func filepathSuffix(got, want string) bool {
	return len(got) >= len(want) && got[len(got)-len(want):] == want
}
