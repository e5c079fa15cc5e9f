package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/test/testkit"
)

// `ssh status` reads the files alone: usage and config errors have their
// exit codes, and each key is printed with its fingerprint and source.
func TestSSHStatusCommand(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := ssh.NewPublicKey(pub)
	trust := filepath.Join(dir, "trusted.pem")
	testkit.WriteFile(t, trust, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))+" pinned:/etc/latchkey/pinned.pub\n")
	auth := "auto_auth {\n  method \"token_file\" {\n    config = { token_file_path = \"/t\" }\n  }\n}\n"
	good := filepath.Join(dir, "good.hcl")
	testkit.WriteFile(t, good, auth+"ssh {\n  trusted_user_ca_keys = \""+trust+"\"\n  pinned_user_ca_keys = \"/etc/latchkey/pinned.pub\"\n}\n")
	none := filepath.Join(dir, "none.hcl")
	testkit.WriteFile(t, none, auth)
	for name, tc := range map[string]struct {
		args         []string
		code         int
		stdout, errs string
	}{
		"status":        {[]string{"ssh", "status", "-config", good}, exitOK, ssh.FingerprintSHA256(k) + " ssh-ed25519 pinned /etc/latchkey/pinned.pub", ""},
		"no subcommand": {[]string{"ssh"}, exitUsage, "", "latchkey-agent ssh status -config"},
		"no config":     {[]string{"ssh", "status"}, exitUsage, "", "-config is required"},
		"no ssh stanza": {[]string{"ssh", "status", "-config", none}, exitConfig, "", "the config has no ssh stanza"},
		"missing file":  {[]string{"ssh", "status", "-config", filepath.Join(dir, "absent.hcl")}, exitConfig, "", "absent.hcl"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr, os.Getenv)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.errs) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.errs)
			}
		})
	}
}
