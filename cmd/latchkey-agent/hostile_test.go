package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
)

// Another user who can write a destination's directory plants a FIFO there
// (mkfifo d/.f && mv -T d/.f d/app.conf): the agent refuses that one
// destination, renders the others, and SIGTERM still stops it (issue 15).
func TestFIFOAtDestinationDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "app.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.conf")
	cfg := rootTokenConfig(t, dir, fmt.Sprintf(`template {
  contents    = "A=1"
  destination = %q
}
template {
  contents    = "B=2"
  destination = %q
}
`, fifo, other))
	var stderr syncBuffer
	cmd := agentCmd([]string{"-config", cfg})
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second) // a bound against hanging
	for {
		b, _ := os.ReadFile(other)
		if string(b) == "B=2" && strings.Contains(stderr.String(), "not a regular file") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other template not rendered or FIFO not refused:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		_ = waitErr // the exit status after a failing template is the runner's business
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not stop on SIGTERM\n%s", stderr.String())
	}
}

// Defect: a template reading through `file` a FIFO (or a device such as
// /dev/zero), or a pkiCert template whose destination is a FIFO (the
// destination is read back to reuse its certificate), blocked its render
// round for ever: no other template rendered, and SIGTERM no longer stopped
// the agent (systemd had to SIGKILL it); /dev/zero would have been read
// without end. Now `file` reads regular files only (symlinks to them
// followed) and the pkiCert read-back opens the destination as every read
// of a destination does: that template fails, named, the others render and
// the agent stops on SIGTERM.
func TestNonRegularFilesDoNotBlockTemplates(t *testing.T) {
	srv.MountT(t, "pki-fifo", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}})
	_, err := srv.Client.Logical().Write("pki-fifo/root/generate/internal", map[string]any{"common_name": "test root", "ttl": "87600h"})
	testkit.Must(t, err)
	_, err = srv.Client.Logical().Write("pki-fifo/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "2h"})
	testkit.Must(t, err)
	tests := map[string]struct {
		// contents and destination of the hostile template, given the
		// test's directory, in which a FIFO "fifo" exists.
		contents func(dir string) string
		dest     func(dir string) string
		want     string
	}{
		"file of a FIFO": {
			contents: func(dir string) string { return fmt.Sprintf(`{{ file %q }}`, filepath.Join(dir, "fifo")) },
			dest:     func(dir string) string { return filepath.Join(dir, "a.conf") },
			want:     "not a regular file",
		},
		"file of a symlink to a FIFO": {
			contents: func(dir string) string { return fmt.Sprintf(`{{ file %q }}`, filepath.Join(dir, "link")) },
			dest:     func(dir string) string { return filepath.Join(dir, "a.conf") },
			want:     "not a regular file",
		},
		"file of /dev/zero": {
			contents: func(string) string { return `{{ file "/dev/zero" }}` },
			dest:     func(dir string) string { return filepath.Join(dir, "a.conf") },
			want:     "not a regular file",
		},
		"pkiCert at a FIFO destination": {
			contents: func(string) string {
				return `{{ with pkiCert "pki-fifo/issue/web" "common_name=a.example.com" "ttl=1h" }}{{ .Cert }}{{ end }}`
			},
			dest: func(dir string) string { return filepath.Join(dir, "fifo") },
			want: "not a regular file",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			testkit.Must(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
			testkit.Must(t, os.Symlink(filepath.Join(dir, "fifo"), filepath.Join(dir, "link")))
			other := filepath.Join(dir, "other.conf")
			cfg := rootTokenConfig(t, dir, fmt.Sprintf(`template {
  contents    = %q
  destination = %q
}
template {
  contents    = "B=2"
  destination = %q
}
`, tc.contents(dir), tc.dest(dir), other))
			a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
			testkit.Eventually(t, "the other template rendered", func() bool { return testkit.ReadFile(other) == "B=2" })
			a.logged(t, tc.want, 1)
			if code := a.stop(t); code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}
}

// Defect: a FIFO where the agent reads a credential (token_file, an
// approle role id or secret id file) blocked the login for ever, and
// SIGTERM no longer stopped the agent; a FIFO as vault { ca_cert } blocked
// the start and validate. Now each is read as a regular file only: the
// login fails naming the file ("is a FIFO: not a regular file") and is
// retried, SIGTERM stops the agent, and a FIFO CA is a config error.
func TestFIFOCredentialFilesDoNotBlock(t *testing.T) {
	tests := map[string]struct {
		// method is the auto_auth method stanza, given the FIFO's path.
		method func(t *testing.T, dir, fifo string) string
		vault  func(fifo string) string // the vault stanza ("" for none)
		code   int                      // exit code: 0 runs until SIGTERM
	}{
		"token_file": {
			method: func(t *testing.T, dir, fifo string) string {
				return fmt.Sprintf("method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }", fifo)
			},
		},
		"approle role id": {
			method: func(t *testing.T, dir, fifo string) string {
				return fmt.Sprintf("method \"approle\" {\n    mount_path = \"auth/approle-fifo\"\n    config = {\n      role_id_file_path = %q\n      secret_id_file_path = %q\n    }\n  }", fifo, filepath.Join(dir, "no-secret-id"))
			},
		},
		"approle secret id": {
			method: func(t *testing.T, dir, fifo string) string {
				roleID := filepath.Join(dir, "role-id")
				testkit.WriteFile(t, roleID, "some-role-id-of-enough-length")
				return fmt.Sprintf("method \"approle\" {\n    mount_path = \"auth/approle-fifo\"\n    config = {\n      role_id_file_path = %q\n      secret_id_file_path = %q\n    }\n  }", roleID, fifo)
			},
		},
		"alicloud identity_cert_file": {
			method: func(t *testing.T, dir, fifo string) string {
				return fmt.Sprintf("method \"alicloud\" {\n    config = {\n      role = \"web\"\n      region = \"cn-hangzhou\"\n      metadata_endpoint = \"http://127.0.0.1:1\"\n      identity_cert_file = %q\n    }\n  }", fifo)
			},
			code: exitConfig,
		},
		"vault ca_cert": {
			method: func(t *testing.T, dir, fifo string) string {
				tok := filepath.Join(dir, "root-token")
				testkit.WriteFile(t, tok, srv.RootToken)
				return fmt.Sprintf("method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }", tok)
			},
			vault: func(fifo string) string { return fmt.Sprintf("vault {\n  ca_cert = %q\n}\n", fifo) },
			code:  exitConfig,
		},
		"vault client_cert": {
			method: func(t *testing.T, dir, fifo string) string {
				tok := filepath.Join(dir, "root-token")
				testkit.WriteFile(t, tok, srv.RootToken)
				return fmt.Sprintf("method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }", tok)
			},
			vault: func(fifo string) string {
				return fmt.Sprintf("vault {\n  client_cert = %q\n  client_key = %q\n}\n", fifo, fifo)
			},
			code: exitConfig,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "fifo")
			testkit.Must(t, syscall.Mkfifo(fifo, 0o600))
			vault := ""
			if tc.vault != nil {
				vault = tc.vault(fifo)
			}
			cfg := filepath.Join(dir, "agent.hcl")
			testkit.WriteFile(t, cfg, fmt.Sprintf("%sauto_auth {\n  %s\n}\nlatchkey {\n  state_dir = %q\n}\n", vault, tc.method(t, dir, fifo), filepath.Join(dir, "state")))
			if tc.code != exitOK {
				for _, args := range [][]string{{"validate", "-config", cfg}, {"-config", cfg}} {
					cmd := agentCmd(args)
					var stderr syncBuffer
					cmd.Stderr = &stderr
					if code := exitCodeWithin(t, cmd, 30*time.Second); code != tc.code || !strings.Contains(stderr.String(), "is a FIFO: not a regular file") {
						t.Errorf("%v: exit %d, want %d naming the FIFO\n%s", args, code, tc.code, stderr.String())
					}
				}
				return
			}
			a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
			a.logged(t, fifo+" is a FIFO: not a regular file", 1)
			if code := a.stop(t); code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}
}

// Defect: the ssh stanza read its files (the trust file before replacing
// it, the host certificate, public keys) with os.ReadFile, so a FIFO as
// trusted_user_ca_keys hung the ssh component for ever and SIGTERM no
// longer stopped the agent. Now a FIFO there is an error naming it, the
// FIFO is left as it is, and the agent stops on SIGTERM.
func TestFIFOSSHTrustFileDoesNotBlock(t *testing.T) {
	srv.MountT(t, "ssh-fifo", &api.MountInput{Type: "ssh"})
	_, err := srv.Client.Logical().Write("ssh-fifo/config/ca", map[string]any{"generate_signing_key": true})
	testkit.Must(t, err)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "trusted-user-ca-keys.pem")
	testkit.Must(t, syscall.Mkfifo(fifo, 0o644))
	cfg := rootTokenConfig(t, dir, fmt.Sprintf(`ssh {
  trusted_user_ca_keys = %q
  user_ca_mounts       = ["ssh-fifo"]
  check_command        = ["true"]
  reload_command       = ["true"]
}
`, fifo))
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
	a.logged(t, fifo+" is a FIFO: not a regular file", 1)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced (%v, %v)", fi, err)
	}
}
