// Command demo is `make demo`: it starts a local Vault dev server and walks
// through latchkey's main job, printing each step in plain words.
package main

import (
	"flag"
	"fmt"
	"os"

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

	return verifyOTP(srv, binDir, mount, otp)
}

// verifyOTP checks the OTP the way sshd's PAM stack would.
func verifyOTP(srv *vaulttest.Server, binDir, mount, otp string) error {
	step("Verifying the OTP with Vault (unauthenticated PUT %s/verify)", mount)
	anon, err := srv.NewClient("")
	if err != nil {
		return err
	}
	got, err := anon.Logical().Write(mount+"/verify", map[string]any{"otp": otp})
	if err != nil {
		return err
	}
	fmt.Printf("    Vault says: user %v, ip %v, role %v\n", got.Data["username"], got.Data["ip"], got.Data["role_name"])
	step("Verifying it again: Vault deleted it on first use, so it must be refused")
	if _, err := anon.Logical().Write(mount+"/verify", map[string]any{"otp": otp}); err == nil {
		return fmt.Errorf("a used OTP was accepted")
	}
	fmt.Println("    Refused, as it should be.")
	_ = binDir
	return nil
}
