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
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/fakes/alifake"
	"github.com/latchkey/latchkey/test/testkit"
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
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// The stock Vault process reaches the fake STS under its real name
	// through the CONNECT proxy, and trusts the test CA.
	code := vaulttest.Run(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{Env: []string{
		"HTTPS_PROXY=" + cloud.Proxy.URL, "SSL_CERT_FILE=" + cloud.CABundle,
	}}})
	// Not deferred: os.Exit runs no deferred calls.
	cloud.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var seq atomic.Int32

func mountAlicloud(t *testing.T, roleName string) string {
	t.Helper()
	mount := fmt.Sprintf("alicloud-%d", seq.Add(1))
	c := srv.Client
	testkit.Must(t, c.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "alicloud"}))
	_, err := c.Logical().Write("auth/"+mount+"/role/web", map[string]any{
		"arn": fmt.Sprintf("acs:ram::%s:role/%s", instance.AccountID, roleName), "token_ttl": "1h",
	})
	testkit.Must(t, err)
	return mount
}

func newMethod(t *testing.T, mount string, extra map[string]any) auth.Method {
	t.Helper()
	return newMethodEnv(t, mount, extra, nil)
}

// newMethodEnv builds the method for the fake (its metadata service, its
// identity certificate) with extra config and environment env.
func newMethodEnv(t *testing.T, mount string, extra map[string]any, env map[string]string) auth.Method {
	t.Helper()
	certFile := filepath.Join(t.TempDir(), "identity.pem")
	testkit.Must(t, os.WriteFile(certFile, cloud.Identity.CertPEM, 0o644))
	cfg := map[string]any{"role": "web", "region": instance.RegionID, "metadata_endpoint": cloud.Metadata.URL, "identity_cert_file": certFile}
	for k, v := range extra {
		cfg[k] = v
	}
	m, err := New(auth.MethodConfig{Type: "alicloud", MountPath: "auth/" + mount, Config: cfg, File: "agent.hcl", Line: 4},
		auth.Env{StateDir: filepath.Join(t.TempDir(), "state"), Logger: zaptest.NewLogger(t), Getenv: func(k string) string { return env[k] }})
	testkit.Must(t, err)
	return m
}

func login(t *testing.T, m auth.Method) (*vaultclient.Secret, error) {
	c := srv.AgentClient(t, "")
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

	// Without identity_cert_file the pinned Alibaba Cloud certificate is
	// used, and the fake (not Alibaba) cannot sign for it.
	cfg := map[string]any{"role": "web", "region": instance.RegionID, "metadata_endpoint": cloud.Metadata.URL, "verify_identity": true}
	prod, err := New(auth.MethodConfig{Type: "alicloud", MountPath: "auth/" + mount, Config: cfg, File: "agent.hcl", Line: 4},
		auth.Env{StateDir: t.TempDir(), Logger: zaptest.NewLogger(t), Getenv: func(string) string { return "" }})
	testkit.Must(t, err)
	if _, err := login(t, prod); err == nil || !strings.Contains(err.Error(), "not signed by the pinned certificate (serial 6666d187)") {
		t.Fatalf("document not signed by Alibaba Cloud, pinned certificate: %v", err)
	}

	cloud.Spoof(true)
	defer cloud.Spoof(false)
	_, before := cloud.STSCalls()
	okBefore, _ := cloud.STSCalls()
	_, err = login(t, newMethod(t, mount, map[string]any{"verify_identity": true}))
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
	// A known key with the wrong secret: the signature does not match, STS
	// quotes its string to sign (with the security token) and Vault passes
	// it on; the error the agent logs must not carry the token.
	const token = "CAIS-secret-sts-token-0042"
	cloud.AddKey("LTAIwrongsecret", "right-secret", token)
	m = newMethod(t, mount, map[string]any{"access_key": "LTAIwrongsecret", "access_secret": "wrong-secret", "access_token": token})
	_, err := login(t, m)
	if err == nil || !strings.Contains(err.Error(), "string to sign") {
		t.Fatalf("error = %v, want the signature mismatch", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("login error carries a secret: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := func(kv ...any) map[string]any {
		m := map[string]any{"role": "web", "region": "cn-hangzhou"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := map[string]struct {
		cfg  map[string]any
		env  map[string]string
		want string // "" = valid
	}{
		"minimal":               {ok(), nil, ""},
		"static keys":           {ok("access_key", "LTAI", "access_secret", "s", "access_token", "t", "credential_poll_interval", int64(30)), nil, ""},
		"secret_key alias":      {ok("access_key", "LTAI", "secret_key", "s"), nil, ""},
		"role_name":             {ok("role_name", "web-role", "verify_identity", "true", "credential_poll_interval", "45"), nil, ""},
		"no role":               {map[string]any{"region": "cn-hangzhou"}, nil, `agent.hcl:4: method "alicloud": config key "role" is required`},
		"no region":             {map[string]any{"role": "web"}, nil, `agent.hcl:4: method "alicloud": config key "region" is required`},
		"half static key":       {ok("access_key", "x"), nil, `config keys "access_key" and "access_secret" go together`},
		"both secret names":     {ok("access_key", "x", "access_secret", "a", "secret_key", "b"), nil, `"access_secret" and "secret_key" are the same setting`},
		"token without keys":    {ok("access_token", "t"), nil, `config key "access_token" needs`},
		"unknown key":           {ok("regoin", "x"), nil, `agent.hcl:4: method "alicloud": unknown config key "regoin"`},
		"bad bool":              {ok("verify_identity", "perhaps"), nil, `config key "verify_identity": want true or false`},
		"role not a string":     {ok("role", map[string]any{"a": "b"}), nil, `config key "role": want a string`},
		"bad interval":          {ok("credential_poll_interval", "soon"), nil, `config key "credential_poll_interval"`},
		"zero interval":         {ok("credential_poll_interval", int64(0)), nil, `config key "credential_poll_interval": want a positive`},
		"role_arn unsupported":  {ok("role_arn", "acs:ram::1:role/x"), nil, `agent.hcl:4: method "alicloud": config key "role_arn": not supported`},
		"key pair unsupported":  {ok("private_key", "k", "public_key_id", "p"), nil, `not supported by latchkey`},
		"role_arn from the env": {ok(), map[string]string{"ALICLOUD_ROLE_ARN": "acs:ram::1:role/x"}, `environment variable ALICLOUD_ROLE_ARN: not supported`},
		"bad endpoint":          {ok("metadata_endpoint", "100.100.100.200"), nil, `metadata endpoint "100.100.100.200"`},
		"bad region":            {ok("region", "evil.example.com/x"), nil, `config key "region": "evil.example.com/x" is not a region id`},
		"missing cert file":     {ok("identity_cert_file", "/nonexistent/cert.pem"), nil, `config key "identity_cert_file"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(auth.MethodConfig{Type: "alicloud", Config: tc.cfg, File: "agent.hcl", Line: 4},
				auth.Env{Logger: zaptest.NewLogger(t), Getenv: func(k string) string { return tc.env[k] }})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// Vault Agent's credential chain: environment, then config, then the RAM
// role; keys the fake STS knows log in, so the winner is observable.
func TestCredentialChain(t *testing.T) {
	mount := mountAlicloud(t, instance.RAMRole)
	cloud.AddKey("LTAIenv", "env-secret", "env-token")
	cloud.AddKey("LTAIconf", "conf-secret", "")
	env := map[string]string{"ALICLOUD_ACCESS_KEY": "LTAIenv", "ALICLOUD_SECRET_KEY": "env-secret", "ALICLOUD_ACCESS_KEY_STS_TOKEN": "env-token"}
	bogusConf := map[string]any{"access_key": "LTAIbogus", "access_secret": "x"}

	fetches := cloud.CredentialFetches()
	if _, err := login(t, newMethodEnv(t, mount, bogusConf, env)); err != nil {
		t.Fatalf("environment keys (before the config's): %v", err)
	}
	if _, err := login(t, newMethod(t, mount, map[string]any{"access_key": "LTAIconf", "secret_key": "conf-secret"})); err != nil {
		t.Fatalf("config keys: %v", err)
	}
	if cloud.CredentialFetches() != fetches {
		t.Error("RAM role credentials fetched although keys were given")
	}
	if _, err := login(t, newMethod(t, mount, map[string]any{"role_name": instance.RAMRole})); err != nil {
		t.Fatalf("role_name: %v", err)
	}
	if _, err := login(t, newMethodEnv(t, mount, nil, map[string]string{"ALICLOUD_ROLE_NAME": "no-such-role"})); err == nil {
		t.Fatal("ALICLOUD_ROLE_NAME of a role the instance does not have logged in")
	}
	if cloud.CredentialFetches() != fetches+1 {
		t.Errorf("RAM credential fetches: %d, want %d", cloud.CredentialFetches(), fetches+1)
	}
}

// RAM credentials are reused within credential_poll_interval and fetched
// again once it passes or when they are about to expire.
func TestCredentialRefresh(t *testing.T) {
	mount := mountAlicloud(t, instance.RAMRole)
	m := newMethod(t, mount, map[string]any{"credential_poll_interval": int64(60)}).(*Method)
	now := time.Now()
	m.now = func() time.Time { return now }
	n := cloud.CredentialFetches()
	step := func(name string, advance time.Duration, wantFetches int) {
		t.Helper()
		now = now.Add(advance)
		if _, err := login(t, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := cloud.CredentialFetches() - n; got != wantFetches {
			t.Fatalf("%s: %d credential fetches, want %d", name, got, wantFetches)
		}
	}
	step("first login", 0, 1)
	step("within the poll interval", 30*time.Second, 1)
	step("after the poll interval", 31*time.Second, 2)
	cloud.SetCredentialTTL(4 * time.Minute)
	defer cloud.SetCredentialTTL(time.Hour)
	step("poll interval passed again", 61*time.Second, 3) // these expire within 5 minutes
	step("about to expire", time.Second, 4)
}

// The pinned production certificate parses and is the one the reference names.
func TestPinnedCert(t *testing.T) {
	c, err := pinned()
	testkit.Must(t, err)
	if c.SerialNumber.Text(16) != "6666d187" {
		t.Errorf("pinned certificate serial %s", c.SerialNumber.Text(16))
	}
}

// State baked into an image belongs to the build instance: the verified
// instance id replaces it.
func TestIdentityStateOfAnotherInstance(t *testing.T) {
	mount := mountAlicloud(t, instance.RAMRole)
	stateDir := t.TempDir()
	rec := filepath.Join(stateDir, "alicloud-identity.json")
	testkit.Must(t, os.WriteFile(rec, []byte(`{"instance_id":"i-bp1buildhost","region_id":"cn-hangzhou"}`), 0o600))
	certFile := filepath.Join(t.TempDir(), "identity.pem")
	testkit.Must(t, os.WriteFile(certFile, cloud.Identity.CertPEM, 0o644))
	cfg := map[string]any{"role": "web", "region": instance.RegionID, "metadata_endpoint": cloud.Metadata.URL,
		"identity_cert_file": certFile, "verify_identity": true}
	m, err := New(auth.MethodConfig{Type: "alicloud", MountPath: "auth/" + mount, Config: cfg, File: "agent.hcl", Line: 4},
		auth.Env{StateDir: stateDir, Logger: zaptest.NewLogger(t), Getenv: func(string) string { return "" }})
	testkit.Must(t, err)
	if _, err := login(t, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(rec)
	testkit.Must(t, err)
	if !strings.Contains(string(b), instance.InstanceID) || strings.Contains(string(b), "buildhost") {
		t.Errorf("identity record not replaced: %s", b)
	}
}
