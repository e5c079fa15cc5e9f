package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/latchkey/latchkey/pam"
)

// TestScripts runs the built binary through testdata/script/*.txtar, as an
// operator (or pam_exec) would: flags, exit codes, config errors, and
// logins against the package's real Vault. Each script gets vault.hcl in
// its work directory, pointing at that Vault with the mount "ssh-script".
//
// Extra commands:
//
//	exits CODE PROG ARGS...   like exec, but wants exit status CODE exactly
//	issue USER IP FILE [nul]  has Vault issue an OTP for USER@IP into FILE
//	                          (with pam_exec's trailing NUL on older Linux-PAM)
//	nosecret FILE             stdout and stderr do not contain FILE's content
func TestScripts(t *testing.T) {
	const mount = "ssh-script"
	c := srv.Client
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	if _, err := c.Logical().Write(mount+"/roles/web", map[string]any{
		"key_type": "otp", "default_user": "alice", "allowed_users": "alice,bob", "cidr_list": "0.0.0.0/0,::/0",
	}); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(helper)+string(os.PathListSeparator)+env.Getenv("PATH"))
			// A VAULT_ADDR the helper must ignore: only its config counts.
			env.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
			// An address of another interface than lo, for [otherif].
			if a := otherInterfaceAddr(); a.IsValid() {
				env.Setenv("OTHER_IF_ADDR", a.String())
			}
			cfg := fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\naudit = \"off\"\ntimeout = \"5s\"\n", srv.Addr, mount)
			return os.WriteFile(filepath.Join(env.WorkDir, "vault.hcl"), []byte(cfg), 0o600)
		},
		// [ipv6]: the host has ::1. [otherif]: it has an interface besides
		// loopback (its address is $OTHER_IF_ADDR).
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "ipv6":
				addrs, err := pam.HostAddrs()
				return slices.Contains(addrs, netip.IPv6Loopback()), err
			case "otherif":
				return otherInterfaceAddr().IsValid(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exits CODE PROG ARGS...")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("run %s: %v", args[1], err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
			"issue": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 3 || len(args) > 4 {
					ts.Fatalf("usage: issue USER IP FILE [nul]")
				}
				s, err := c.Logical().Write(mount+"/creds/web", map[string]any{"username": args[0], "ip": args[1]})
				ts.Check(err)
				otp, _ := s.Data["key"].(string)
				if len(args) == 4 {
					otp += "\x00"
				}
				ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(otp), 0o600))
			},
			"nosecret": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: nosecret FILE")
				}
				secret := strings.TrimSuffix(ts.ReadFile(args[0]), "\x00")
				for _, out := range []string{"stdout", "stderr"} {
					if strings.Contains(ts.ReadFile(out), secret) {
						ts.Fatalf("%s contains the secret from %s", out, args[0])
					}
				}
			},
		},
	})
}

// otherInterfaceAddr returns a global unicast address of this host (not
// loopback, not link-local), or the zero Addr when it has none.
func otherInterfaceAddr() netip.Addr {
	addrs, err := pam.HostAddrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if a.IsGlobalUnicast() || a.IsPrivate() {
			return a
		}
	}
	return netip.Addr{}
}
