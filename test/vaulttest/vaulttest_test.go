package vaulttest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

var plain, secure *Server

func TestMain(m *testing.M) {
	Main(m, Spec{Into: &plain}, Spec{Options: Options{TLS: true}, Into: &secure})
}

// TestSSHOTPRoundTrip is the whole OTP life cycle the helper relies on,
// against a real server over HTTP and over TLS.
func TestSSHOTPRoundTrip(t *testing.T) {
	for name, srv := range map[string]*Server{"http": plain, "tls": secure} {
		t.Run(name, func(t *testing.T) {
			if name == "tls" && !strings.HasPrefix(srv.Addr, "https://") {
				t.Fatalf("TLS server address %s", srv.Addr)
			}
			c := srv.Client
			mount := "ssh-rt-" + name
			srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
			_, err := c.Logical().Write(mount+"/roles/otp", map[string]any{
				"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8",
			})
			if err != nil {
				t.Fatal(err)
			}
			creds, err := c.Logical().Write(mount+"/creds/otp", map[string]any{"ip": "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			otp, _ := creds.Data["key"].(string)
			if len(otp) != 36 {
				t.Fatalf("OTP %q is not a UUID", otp)
			}

			// verify is unauthenticated: use a client without a token.
			anon, err := srv.NewClient("")
			if err != nil {
				t.Fatal(err)
			}
			got, err := anon.Logical().Write(mount+"/verify", map[string]any{"otp": otp})
			if err != nil {
				t.Fatal(err)
			}
			if got.Data["username"] != "alice" || got.Data["ip"] != "127.0.0.1" || got.Data["role_name"] != "otp" {
				t.Fatalf("verify data = %v", got.Data)
			}
			_, err = anon.Logical().Write(mount+"/verify", map[string]any{"otp": otp})
			if err == nil || !strings.Contains(err.Error(), "OTP not found") {
				t.Fatalf("second verify: err = %v, want OTP not found", err)
			}
		})
	}
}

func TestTLSRefusesUntrustedClient(t *testing.T) {
	cfg := secure.ClientConfig()
	cfg.CACert = ""
	c, err := vaultclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("health without the CA: err = %v, want a certificate error", err)
	}
	// The server's certificate is valid for its loopback address.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", secure.Addr+"/v1/sys/health", nil)
	resp, err := secure.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health status %d", resp.StatusCode)
	}
}

func TestStartTAndStop(t *testing.T) {
	s := StartT(t, Options{})
	pid := s.PID()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !s.Stopped() {
		t.Fatal("server still running after Stop")
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
		t.Fatalf("process %d still exists", pid)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("server directory %s not removed", s.Dir)
	}
	if _, err := s.Client.Sys().Health(); err == nil {
		t.Fatal("stopped server still answers")
	}
}

func TestMissingBinarySaysMakeVault(t *testing.T) {
	t.Setenv("LATCHKEY_VAULT_BIN", filepath.Join(t.TempDir(), "vault"))
	_, err := Start(Options{})
	if err == nil || !strings.Contains(err.Error(), "make vault") {
		t.Fatalf("error = %v, want a hint to run make vault", err)
	}
}
