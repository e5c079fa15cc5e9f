package alicloud

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/test/fakes/alifake"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var (
	srv   *vaulttest.Server
	cloud *alifake.Cloud
)

var instance = alifake.Instance{AccountID: "5123456789012345", InstanceID: "i-bp1testinstance01", RegionID: "cn-hangzhou", RAMRole: "web-role"}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alifake-")
	if err != nil {
		panic(err)
	}
	cloud, err = alifake.New(instance, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The stock Vault process reaches the fake STS under its real name
	// through the CONNECT proxy, and trusts the test CA.
	vaulttest.Main(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{Env: []string{
		"HTTPS_PROXY=" + cloud.Proxy.URL, "SSL_CERT_FILE=" + cloud.CABundle,
	}}})
}

var seq atomic.Int32

func mountAlicloud(t *testing.T, roleName string) string {
	t.Helper()
	mount := fmt.Sprintf("alicloud-%d", seq.Add(1))
	c := srv.Client
	must(t, c.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "alicloud"}))
	_, err := c.Logical().Write("auth/"+mount+"/role/web", map[string]any{
		"arn": fmt.Sprintf("acs:ram::%s:role/%s", instance.AccountID, roleName), "token_ttl": "1h",
	})
	must(t, err)
	return mount
}

func newMethod(t *testing.T, mount string, extra map[string]any) auth.Method {
	t.Helper()
	certFile := filepath.Join(t.TempDir(), "identity.pem")
	must(t, os.WriteFile(certFile, cloud.Identity.CertPEM, 0o644))
	cfg := map[string]any{"role": "web", "region": instance.RegionID, "metadata_endpoint": cloud.Metadata.URL, "identity_cert_file": certFile}
	for k, v := range extra {
		cfg[k] = v
	}
	m, err := New(auth.MethodConfig{Type: "alicloud", MountPath: "auth/" + mount, Config: cfg, File: "agent.hcl", Line: 4},
		auth.Env{StateDir: filepath.Join(t.TempDir(), "state"), Logger: zaptest.NewLogger(t), Getenv: func(string) string { return "" }})
	must(t, err)
	return m
}

func login(t *testing.T, m auth.Method) (*api.Secret, error) {
	c, err := srv.NewClient("")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.Login(ctx, c)
}

func TestLogin(t *testing.T) {
	mount := mountAlicloud(t, instance.RAMRole)
	okBefore, _ := cloud.STSCalls()
	s, err := login(t, newMethod(t, mount, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.Auth == nil || s.Auth.ClientToken == "" {
		t.Fatalf("no token: %+v", s)
	}
	if ok, _ := cloud.STSCalls(); ok != okBefore+1 {
		t.Errorf("fake STS verified %d calls, want 1 more than %d", ok, okBefore)
	}
}

func TestWrongRoleRefused(t *testing.T) {
	mount := mountAlicloud(t, "another-role")
	if _, err := login(t, newMethod(t, mount, nil)); err == nil || !strings.Contains(err.Error(), "arn") {
		t.Fatalf("error = %v, want an arn mismatch", err)
	}
}

func TestVerifiedIdentity(t *testing.T) {
	mount := mountAlicloud(t, instance.RAMRole)
	m := newMethod(t, mount, map[string]any{"verify_identity": true})
	if _, err := login(t, m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Describe(), instance.InstanceID) {
		t.Errorf("Describe() = %q", m.Describe())
	}

	cloud.Spoof(true)
	defer cloud.Spoof(false)
	_, before := cloud.STSCalls()
	okBefore, _ := cloud.STSCalls()
	_, err := login(t, newMethod(t, mount, map[string]any{"verify_identity": true}))
	if err == nil || !strings.Contains(err.Error(), "not signed by the pinned certificate") {
		t.Fatalf("spoofed document: %v", err)
	}
	if ok, denied := cloud.STSCalls(); ok != okBefore || denied != before {
		t.Error("a spoofed metadata service still led to a login attempt")
	}
}

func TestStaticCredentialsSignatureChecked(t *testing.T) {
	mount := mountAlicloud(t, instance.RAMRole)
	// Keys the fake STS never issued: Vault's replay is refused.
	m := newMethod(t, mount, map[string]any{"access_key": "LTAIunknown", "access_secret": "nope"})
	if _, err := login(t, m); err == nil {
		t.Fatal("unknown static keys logged in")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := map[string]struct {
		cfg  map[string]any
		want string
	}{
		"no role":         {map[string]any{"region": "cn-hangzhou"}, `agent.hcl:4: method "alicloud": config key "role" is required`},
		"no region":       {map[string]any{"role": "web"}, `config key "region" is required`},
		"half static key": {map[string]any{"role": "web", "region": "r", "access_key": "x"}, "access_key and access_secret go together"},
		"unknown key":     {map[string]any{"role": "web", "region": "r", "regoin": "x"}, `unknown config key "regoin"`},
		"bad bool":        {map[string]any{"role": "web", "region": "r", "verify_identity": "perhaps"}, `"verify_identity": want true or false`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(auth.MethodConfig{Type: "alicloud", Config: tc.cfg, File: "agent.hcl", Line: 4}, auth.Env{Logger: zaptest.NewLogger(t), Getenv: func(string) string { return "" }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// The pinned production certificate parses and is the one the reference names.
func TestPinnedCert(t *testing.T) {
	c, err := pinned()
	must(t, err)
	if c.SerialNumber.Text(16) != "6666d187" {
		t.Errorf("pinned certificate serial %s", c.SerialNumber.Text(16))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
