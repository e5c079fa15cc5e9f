// Command demo is `make demo`: it starts a local Vault dev server and walks
// through latchkey's main job, printing each step in plain words.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/vaulttest"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built latchkey binaries")
	flag.Parse()
	if err := run(*binDir); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(binDir string) error {
	step("Starting a local Vault dev server (the test build in bin/vault)")
	srv, err := vaulttest.Start(vaulttest.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("    Vault is up at %s\n", srv.Addr)

	c := srv.Client
	const mount = "ssh-otp"
	step("Mounting the SSH secrets engine at %s/ and creating an OTP role for user alice", mount)
	if err := c.Sys().Mount(mount, &api.MountInput{Type: "ssh"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write(mount+"/roles/demo", map[string]any{
		"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8",
	}); err != nil {
		return err
	}

	step("Issuing a one-time password for alice@127.0.0.1 (what `vault ssh` does for a person)")
	creds, err := c.Logical().Write(mount+"/creds/demo", map[string]any{"ip": "127.0.0.1"})
	if err != nil {
		return err
	}
	otp, _ := creds.Data["key"].(string)
	fmt.Printf("    Vault issued an OTP (%d characters; the demo does not print secrets)\n", len(otp))

	if err := verifyOTP(srv, binDir, mount, otp); err != nil {
		return err
	}
	return agentDemo(srv, binDir)
}

// agentDemo runs latchkey-agent once (exit_after_auth), as a Packer build
// or cloud-init would: AppRole login, a token sink, a rendered config file.
func agentDemo(srv *vaulttest.Server, binDir string) error {
	c := srv.Client
	step("latchkey-agent: enabling AppRole and a KV v2 secret at secret/app/web/rds")
	if err := c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		return err
	}
	if err := c.Sys().PutPolicy("web", `path "secret/data/app/web/*" { capabilities = ["read"] }`); err != nil {
		return err
	}
	if _, err := c.Logical().Write("auth/approle/role/web", map[string]any{"token_policies": "web", "token_ttl": "1h"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write("secret/data/app/web/rds", map[string]any{"data": map[string]any{"username": "web", "password": "demo-password"}}); err != nil {
		return err
	}
	roleID, err := c.Logical().Read("auth/approle/role/web/role-id")
	if err != nil {
		return err
	}
	secretID, err := c.Logical().Write("auth/approle/role/web/secret-id", nil)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "latchkey-demo-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(p("role-id"), []byte(roleID.Data["role_id"].(string)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(p("secret-id"), []byte(secretID.Data["secret_id"].(string)), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`vault {
  address = %q
}
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" {
    config = {
      path = %q
      mode = 0640
    }
  }
}
exit_after_auth = true
template {
  contents    = "DB_USER={{ with secret \"secret/app/web/rds\" }}{{ .Data.data.username }}\nDB_PASSWORD={{ .Data.data.password }}{{ end }}\n"
  destination = %q
  perms       = 0600
}
latchkey {
  state_dir = %q
}
`, srv.Addr, p("role-id"), p("secret-id"), p("token"), p("app.env"), p("state"))
	if err := os.WriteFile(p("agent.hcl"), []byte(cfg), 0o600); err != nil {
		return err
	}
	fmt.Printf("    agent config %s (Vault Agent's format):\n%s", p("agent.hcl"), indent(cfg))
	agent, err := filepath.Abs(filepath.Join(binDir, "latchkey-agent"))
	if err != nil {
		return err
	}
	step("latchkey-agent -config %s   (exit_after_auth: log in, write the sink, render, exit)", p("agent.hcl"))
	cmd := exec.Command(agent, "-config", p("agent.hcl"), "-log-format", "standard")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	fmt.Print(indent(string(out)))
	if err != nil {
		return fmt.Errorf("latchkey-agent: %w", err)
	}
	for _, f := range []string{"token", "app.env"} {
		fi, err := os.Stat(p(f))
		if err != nil {
			return err
		}
		fmt.Printf("    %s written, mode %v\n", p(f), fi.Mode().Perm())
	}
	env, err := os.ReadFile(p("app.env"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(env), "DB_PASSWORD=demo-password") {
		return fmt.Errorf("app.env does not hold the secret")
	}
	fmt.Println("    app.env holds DB_USER and DB_PASSWORD from Vault (not printed: it is a secret).")
	if _, err := os.Stat(p("secret-id")); err == nil {
		return fmt.Errorf("the secret id file was not removed after reading")
	}
	fmt.Println("    The secret id file was removed after the login, as Vault Agent does.")
	return nil
}

// verifyOTP checks the OTP the way sshd's PAM stack would: it runs the built
// latchkey-ssh-helper with the OTP on stdin and PAM_USER set, as pam_exec does.
func verifyOTP(srv *vaulttest.Server, binDir, mount, otp string) error {
	dir, err := os.MkdirTemp("", "latchkey-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.hcl")
	// vault-ssh-helper's own config keys; http:// needs -dev.
	audit := filepath.Join(dir, "audit.jsonl")
	body := fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"*\"\naudit = \"off\"\naudit_file = %q\n", srv.Addr, mount, audit)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return err
	}
	helper, err := filepath.Abs(filepath.Join(binDir, "latchkey-ssh-helper"))
	if err != nil {
		return err
	}
	fmt.Printf("    helper config %s:\n%s", cfg, indent(body))

	step("sshd's PAM stack runs: latchkey-ssh-helper -dev -config=%s  (OTP on stdin, PAM_USER=alice)", cfg)
	code, out, err := runHelper(helper, cfg, otp)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	if code != 0 {
		return fmt.Errorf("the helper refused a valid OTP (exit %d)", code)
	}
	fmt.Println("    Exit 0: PAM lets alice in.")

	step("The same OTP again: Vault deleted it on first use, so the helper must refuse")
	code, out, err = runHelper(helper, cfg, otp)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	if code == 0 {
		return fmt.Errorf("a used OTP was accepted")
	}
	fmt.Printf("    Exit %d: PAM refuses the login, as it should.\n", code)

	step("The audit trail: one record per attempt (here audit_file; on a server also the journal), never the OTP")
	records, err := os.ReadFile(audit)
	if err != nil {
		return err
	}
	fmt.Print(indent(string(records)))
	if strings.Contains(string(records), otp) {
		return fmt.Errorf("the audit trail contains the OTP")
	}
	return nil
}

func runHelper(helper, cfg, otp string) (int, string, error) {
	cmd := exec.Command(helper, "-dev", "-config="+cfg)
	cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=127.0.0.1"}
	cmd.Stdin = strings.NewReader(otp)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, "", fmt.Errorf("run %s: %w", helper, err)
	}
	return cmd.ProcessState.ExitCode(), string(out), nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("      " + l + "\n")
	}
	return b.String()
}
