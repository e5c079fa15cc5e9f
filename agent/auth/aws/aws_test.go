package aws

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
	"github.com/latchkey/latchkey/test/fakes/awsfake"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }

var seq atomic.Int32

var instance = awsfake.Instance{
	AccountID: "123456789012", InstanceID: "i-0abc1234def567890", Region: "eu-west-1",
	ImageID: "ami-0123456789abcdef0", State: "running", PendingTime: time.Now().Add(-time.Hour),
}

// setup starts a fake AWS and an aws auth mount in Vault that trusts it.
func setup(t *testing.T) (*awsfake.AWS, string) {
	t.Helper()
	fake, err := awsfake.New(instance)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	c := srv.Client
	mount := fmt.Sprintf("aws-%d", seq.Add(1))
	must(t, c.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "aws"}))
	_, err = c.Logical().Write("auth/"+mount+"/config/client", map[string]any{
		"access_key": "AKIDTEST", "secret_key": "test-secret", "endpoint": fake.API.URL,
		"sts_endpoint": fake.API.URL, "sts_region": "us-east-1", "max_retries": 0,
	})
	must(t, err)
	_, err = c.Logical().Write("auth/"+mount+"/config/certificate/test", map[string]any{"aws_public_cert": fake.Signer.CertPEM, "type": "pkcs7"})
	must(t, err)
	_, err = c.Logical().Write("auth/"+mount+"/role/web", map[string]any{"auth_type": "ec2", "bound_ami_id": instance.ImageID, "token_ttl": "1h"})
	must(t, err)
	return fake, mount
}

func newMethod(t *testing.T, fake *awsfake.AWS, mount, stateDir string, extra map[string]any) auth.Method {
	t.Helper()
	cfg := map[string]any{"type": "ec2", "role": "web", "metadata_endpoint": fake.IMDS.URL}
	if extra["type"] == "iam" {
		delete(cfg, "role")
	}
	for k, v := range extra {
		cfg[k] = v
	}
	m, err := New(auth.MethodConfig{Type: "aws", MountPath: "auth/" + mount, Config: cfg, File: "agent.hcl", Line: 3},
		auth.Env{StateDir: stateDir, Logger: zaptest.NewLogger(t), Getenv: func(string) string { return "" }})
	must(t, err)
	return m
}

func login(t *testing.T, m auth.Method) (*api.Secret, error) {
	t.Helper()
	c, err := srv.NewClient("")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.Login(ctx, c)
}

func TestEC2NonceKeptAcrossRestarts(t *testing.T) {
	fake, mount := setup(t)
	stateDir := filepath.Join(t.TempDir(), "state")

	s, err := login(t, newMethod(t, fake, mount, stateDir, nil))
	if err != nil {
		t.Fatalf("first login: %v", err)
	}
	if s.Auth == nil || s.Auth.ClientToken == "" || s.Auth.Metadata["account_id"] != instance.AccountID {
		t.Fatalf("login response: %+v", s.Auth)
	}
	accessListed(t, mount, instance.InstanceID)
	fi, err := os.Stat(stateDir)
	must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	rec := filepath.Join(stateDir, "aws-ec2-auth_"+mount+".json")
	fi, err = os.Stat(rec)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("nonce file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(rec)
	if !strings.Contains(string(b), instance.InstanceID) {
		t.Errorf("nonce record does not name the instance: %s", b)
	}

	// A restart is a new Method with the same state directory.
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatalf("login after restart: %v", err)
	}

	// Without the kept nonce Vault refuses (what Vault Agent users hit).
	if _, err := login(t, newMethod(t, fake, mount, t.TempDir(), nil)); err == nil || !strings.Contains(err.Error(), "client nonce mismatch") {
		t.Fatalf("login with a fresh nonce: %v, want client nonce mismatch", err)
	}
}

func TestEC2StateOfAnotherInstanceDiscarded(t *testing.T) {
	fake, mount := setup(t)
	stateDir := t.TempDir()
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(stateDir, "aws-ec2-auth_"+mount+".json")
	before, _ := os.ReadFile(rec)

	// The image (state and all) boots as another instance.
	other := instance
	other.InstanceID = "i-0fff0000aaaa11112"
	fake.SetInstance(other)
	s, err := login(t, newMethod(t, fake, mount, stateDir, nil))
	if err != nil {
		t.Fatalf("login as the new instance: %v", err)
	}
	if s.Auth.ClientToken == "" {
		t.Errorf("no token")
	}
	accessListed(t, mount, other.InstanceID)
	after, _ := os.ReadFile(rec)
	if string(after) == string(before) || !strings.Contains(string(after), other.InstanceID) {
		t.Errorf("nonce record not replaced:\nbefore %s\nafter %s", before, after)
	}
}

func TestEC2Refusals(t *testing.T) {
	t.Run("stopped instance", func(t *testing.T) {
		fake, mount := setup(t)
		fake.SetState(instance.InstanceID, "stopped")
		if _, err := login(t, newMethod(t, fake, mount, t.TempDir(), nil)); err == nil || !strings.Contains(err.Error(), "running") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("tampered document", func(t *testing.T) {
		fake, mount := setup(t)
		fake.Tamper(true)
		if _, err := login(t, newMethod(t, fake, mount, t.TempDir(), nil)); err == nil {
			t.Fatal("a tampered document logged in")
		}
	})
	t.Run("configured nonce", func(t *testing.T) {
		fake, mount := setup(t)
		dir := t.TempDir()
		m := newMethod(t, fake, mount, dir, map[string]any{"nonce": "my-own-nonce"})
		for i := 0; i < 2; i++ {
			if _, err := login(t, m); err != nil {
				t.Fatalf("login %d: %v", i, err)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a configured nonce was stored: %v", entries)
		}
	})
}

func TestIMDS(t *testing.T) {
	fake, mount := setup(t)
	t.Run("v2 required by default; env endpoint honoured", func(t *testing.T) {
		m, err := New(auth.MethodConfig{Type: "aws", MountPath: "auth/" + mount, Config: map[string]any{"type": "ec2", "role": "web"}},
			auth.Env{StateDir: t.TempDir(), Logger: zaptest.NewLogger(t), Getenv: func(k string) string {
				if k == "AWS_EC2_METADATA_SERVICE_ENDPOINT" {
					return fake.IMDS.URL
				}
				return ""
			}})
		must(t, err)
		if _, err := login(t, m); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad endpoint", func(t *testing.T) {
		_, err := New(auth.MethodConfig{Type: "aws", Config: map[string]any{"type": "ec2", "metadata_endpoint": "169.254.169.254"}, File: "a.hcl", Line: 2},
			auth.Env{Logger: zaptest.NewLogger(t)})
		if err == nil || !strings.Contains(err.Error(), "a.hcl:2") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := New(auth.MethodConfig{Type: "aws", Config: map[string]any{"type": "ec2", "rol": "web"}, File: "a.hcl", Line: 2},
			auth.Env{Logger: zaptest.NewLogger(t)})
		if err == nil || !strings.Contains(err.Error(), `a.hcl:2: method "aws": unknown config key "rol"`) {
			t.Fatalf("error = %v", err)
		}
	})
}

func TestParseIdentityBER(t *testing.T) {
	s, err := awsfake.NewSigner()
	must(t, err)
	body, err := s.SignRSA2048(awsfake.Document(instance))
	must(t, err)
	id, err := ParseIdentity(strings.Join(strings.Fields(body), ""))
	must(t, err)
	if id.InstanceID != instance.InstanceID || id.Region != "eu-west-1" || id.AccountID != "123456789012" {
		t.Errorf("identity = %+v", id)
	}
	if _, err := ParseIdentity("not base64!"); err == nil {
		t.Error("garbage parsed")
	}
}

// accessListed checks that Vault recorded a login of instance id.
func accessListed(t *testing.T, mount, id string) {
	t.Helper()
	s, err := srv.Client.Logical().Read("auth/" + mount + "/identity-accesslist/" + id)
	if err != nil || s == nil {
		t.Fatalf("instance %s not in the identity access list: %v", id, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestIAMLogin(t *testing.T) {
	fake, mount := setup(t)
	c := srv.Client
	_, err := c.Logical().Write("auth/"+mount+"/config/client", map[string]any{
		"access_key": "AKIDTEST", "secret_key": "test-secret", "endpoint": fake.API.URL,
		"sts_endpoint": fake.API.URL, "sts_region": "us-east-1", "max_retries": 0,
		"iam_server_id_header_value": "vault.example.com",
	})
	must(t, err)
	_, err = c.Logical().Write("auth/"+mount+"/role/iam-web", map[string]any{
		"auth_type": "iam", "resolve_aws_unique_ids": false, "token_ttl": "1h",
		"bound_iam_principal_arn": fmt.Sprintf("arn:aws:iam::%s:role/%s", instance.AccountID, awsfake.Profile),
	})
	must(t, err)
	iam := func(extra map[string]any) auth.Method {
		cfg := map[string]any{"type": "iam", "role": "iam-web", "header_value": "vault.example.com"}
		for k, v := range extra {
			cfg[k] = v
		}
		return newMethod(t, fake, mount, t.TempDir(), cfg)
	}

	before := fake.SigV4Checked()
	s, err := login(t, iam(nil))
	if err != nil {
		t.Fatalf("iam login with instance profile credentials: %v", err)
	}
	if s.Auth == nil || s.Auth.ClientToken == "" {
		t.Fatalf("no token: %+v", s)
	}
	if fake.SigV4Checked() <= before {
		t.Error("the fake STS did not verify the login's SigV4 signature")
	}
	if _, err := login(t, iam(map[string]any{"header_value": "other-vault"})); err == nil {
		t.Error("a request bound to another Vault server logged in")
	}
	// Keys the fake never issued: the replayed request is not the profile's,
	// so the ARN does not match the role.
	if _, err := login(t, iam(map[string]any{"access_key": "AKIDOTHER", "secret_key": "x"})); err == nil {
		t.Error("foreign static keys logged in")
	}
}
