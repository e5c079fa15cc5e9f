package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// A panic fails closed: the exit code is exitInternal (not Go's 2, which
// would read as "usage"), an audit record says "internal error: ...", and
// the password shows nowhere. The hook panics inside pam.Helper.Run
// (HostAddrs, after Vault accepted the OTP).
func TestPanicFailsClosed(t *testing.T) {
	c := srv.Client
	const mount = "ssh-panic"
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	if _, err := c.Logical().Write(mount+"/roles/web", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	old := hostAddrs
	t.Cleanup(func() { hostAddrs = old })
	hostAddrs = func() ([]netip.Addr, error) { panic("test hook panics") }

	audit := filepath.Join(t.TempDir(), "audit.log")
	cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\naudit = \"off\"\naudit_file = %q\n", srv.Addr, mount, audit))
	s, err := c.Logical().Write(mount+"/creds/web", map[string]any{"ip": "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	otp := s.Data["key"].(string)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-config=" + cfg, "-dev", "-log-level=trace"}, strings.NewReader(otp+"\x00"), &stdout, &stderr,
		env("PAM_USER", "alice", "PAM_TYPE", "auth", "PAM_SERVICE", "sshd", "PAM_RHOST", "127.0.0.1"))
	if code != exitInternal {
		t.Fatalf("exit code %d, want %d (internal error)\nstderr: %s", code, exitInternal, stderr.String())
	}
	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Result, Reason, Pam_user string }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("audit file %q: %v", b, err)
	}
	if rec.Result != "failure" || !strings.HasPrefix(rec.Reason, "internal error: ") || !strings.Contains(rec.Reason, "test hook panics") {
		t.Errorf("audit record %s, want a failure with reason \"internal error: ...test hook panics\"", b)
	}
	if !strings.Contains(stderr.String(), "test hook panics") {
		t.Errorf("stderr does not log the panic: %s", stderr.String())
	}
	for name, text := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "audit file": string(b)} {
		if strings.Contains(text, otp) {
			t.Errorf("%s contains the password: %s", name, text)
		}
	}
}

// run's own recover: a panic outside pam.Helper.Run still exits
// exitInternal and leaves a record through the configured auditor.
func TestPanicOutsideHelperFailsClosed(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.log")
	cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\naudit = \"off\"\naudit_file = %q\n", srv.Addr, audit))
	var stderr bytes.Buffer
	// getenv("PAM_SERVICE") is first called by Helper.Run while it builds
	// the record, outside the part its own recover covers.
	calls := 0
	getenv := func(k string) string {
		if k == "PAM_SERVICE" {
			calls++
			if calls == 1 {
				panic("getenv hook panics")
			}
		}
		return map[string]string{"PAM_USER": "alice", "PAM_TYPE": "auth"}[k]
	}
	code := run([]string{"-config=" + cfg, "-dev"}, strings.NewReader("x"), &bytes.Buffer{}, &stderr, getenv)
	if code != exitInternal {
		t.Fatalf("exit code %d, want %d\nstderr: %s", code, exitInternal, stderr.String())
	}
	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Result, Reason string }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("audit file %q: %v", b, err)
	}
	if rec.Result != "failure" || rec.Reason != "internal error: panic: getenv hook panics" {
		t.Errorf("audit record %s", b)
	}
}
