package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/cloud/awsmeta"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/fakes/awsfake"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }

var seq atomic.Int32

// tamperRefusal is what Vault says of a document altered after signing.
const tamperRefusal = "failed to verify the signature: pkcs7: Message digest mismatch"

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
	testkit.Must(t, c.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "aws"}))
	_, err = c.Logical().Write("auth/"+mount+"/config/client", map[string]any{
		"access_key": "AKIDTEST", "secret_key": "test-secret", "endpoint": fake.API.URL,
		"sts_endpoint": fake.API.URL, "sts_region": "us-east-1", "max_retries": 0,
	})
	testkit.Must(t, err)
	_, err = c.Logical().Write("auth/"+mount+"/config/certificate/test", map[string]any{"aws_public_cert": fake.Signer.CertPEM, "type": "pkcs7"})
	testkit.Must(t, err)
	_, err = c.Logical().Write("auth/"+mount+"/role/web", map[string]any{"auth_type": "ec2", "bound_ami_id": instance.ImageID, "token_ttl": "1h"})
	testkit.Must(t, err)
	return fake, mount
}

func newMethod(t *testing.T, fake *awsfake.AWS, mount, stateDir string, extra map[string]any) auth.Method {
	t.Helper()
	cfg := map[string]any{"type": "ec2", "role": "web", "metadata_endpoint": fake.IMDS.URL}
	for k, v := range extra {
		cfg[k] = v
	}
	return newMethodEnv(t, mount, stateDir, cfg, nil)
}

// newMethodEnv builds the method with cfg exactly and environment env.
func newMethodEnv(t *testing.T, mount, stateDir string, cfg map[string]any, env map[string]string) auth.Method {
	t.Helper()
	m, err := New(auth.MethodConfig{Type: "aws", MountPath: "auth/" + mount, Config: cfg, File: "agent.hcl", Line: 3},
		auth.Env{StateDir: stateDir, Logger: zaptest.NewLogger(t), Getenv: func(k string) string { return env[k] }})
	testkit.Must(t, err)
	return m
}

func login(t *testing.T, m auth.Method) (*vaultclient.Secret, error) {
	t.Helper()
	c := srv.AgentClient(t, "")
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
	testkit.Must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	rec := filepath.Join(stateDir, "aws-ec2-auth_"+mount+"."+instance.InstanceID+".json")
	fi, err = os.Stat(rec)
	testkit.Must(t, err)
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

	// Without the kept nonce Vault refuses (what Vault Agent users hit),
	// and the error says what an operator can do.
	_, err = login(t, newMethod(t, fake, mount, t.TempDir(), nil))
	if err == nil || !strings.Contains(err.Error(), "client nonce mismatch") ||
		!strings.Contains(err.Error(), "auth/"+mount+"/identity-accesslist/"+instance.InstanceID) {
		t.Fatalf("login with a fresh nonce: %v, want client nonce mismatch and the access list path", err)
	}
}

func TestEC2StateOfAnotherInstanceDiscarded(t *testing.T) {
	fake, mount := setup(t)
	stateDir := t.TempDir()
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatal(err)
	}
	old := records(t, stateDir)[instance.InstanceID]
	if old.Nonce == "" {
		t.Fatalf("no nonce record for %s", instance.InstanceID)
	}

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
	recs := records(t, stateDir)
	got, ok := recs[other.InstanceID]
	if !ok || got.Nonce == "" {
		t.Fatalf("no nonce record for the new instance: %+v", recs)
	}
	// Another instance's nonce is never reused, whatever Vault would accept.
	if got.Nonce == old.Nonce {
		t.Error("the new instance reuses the nonce of the instance the state came from")
	}
	// The old instance's record goes once the new instance logged in.
	if _, ok := recs[instance.InstanceID]; ok || len(recs) != 1 {
		t.Errorf("records after the new instance's login: %+v", recs)
	}
}

// A document altered after signing (a spoofed or glitching IMDS) shows
// another instance id. Vault refuses it; the nonce kept for the real
// instance must survive, or the next genuine login is refused for good
// ("client nonce mismatch").
func TestEC2TamperedDocumentKeepsNonce(t *testing.T) {
	fake, mount := setup(t)
	stateDir := t.TempDir()
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatalf("genuine login: %v", err)
	}
	kept := records(t, stateDir)[instance.InstanceID].Nonce
	if kept == "" {
		t.Fatal("no nonce kept")
	}

	fake.Tamper(true)
	_, err := login(t, newMethod(t, fake, mount, stateDir, nil))
	// Vault refused it (an HTTP answer), not a local parse error.
	var re *vaultclient.ResponseError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), tamperRefusal) {
		t.Fatalf("tampered login: %v, want Vault's %q", err, tamperRefusal)
	}

	fake.Tamper(false)
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatalf("genuine login after a tampered document: %v", err)
	}
	recs := records(t, stateDir)
	if recs[instance.InstanceID].Nonce != kept {
		t.Errorf("nonce of %s changed: %+v", instance.InstanceID, recs)
	}
	// The tampered document's record goes with the genuine login.
	if len(recs) != 1 {
		t.Errorf("records after the genuine login: %+v", recs)
	}
}

// A state directory written by an earlier latchkey (one record per mount,
// aws-ec2-<mount>.json) keeps working: its nonce is used, then the record
// moves to the per-instance name.
func TestEC2LegacyRecordAdopted(t *testing.T) {
	fake, mount := setup(t)
	stateDir := t.TempDir()
	if _, err := login(t, newMethod(t, fake, mount, stateDir, map[string]any{"nonce": "nonce-of-an-older-latchkey"})); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(stateDir, "aws-ec2-auth_"+mount+".json")
	testkit.Must(t, os.WriteFile(legacy, []byte(fmt.Sprintf(`{"instance_id": %q, "mount": %q, "nonce": "nonce-of-an-older-latchkey"}`,
		instance.InstanceID, "auth/"+mount)), 0o600))
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatalf("login with the legacy record: %v", err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("legacy record left: %v", err)
	}
	if got := records(t, stateDir)[instance.InstanceID].Nonce; got != "nonce-of-an-older-latchkey" {
		t.Errorf("nonce = %q, want the legacy record's", got)
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
	t.Run("stopped after login: renewal refused", func(t *testing.T) {
		fake, mount := setup(t)
		s, err := login(t, newMethod(t, fake, mount, t.TempDir(), nil))
		if err != nil {
			t.Fatal(err)
		}
		c, err := srv.NewClient(s.Auth.ClientToken)
		testkit.Must(t, err)
		if _, err := c.Auth().Token().RenewSelf(0); err != nil {
			t.Fatalf("renewal while running: %v", err)
		}
		fake.SetState(instance.InstanceID, "stopped")
		if _, err := c.Auth().Token().RenewSelf(0); err == nil {
			t.Fatal("a stopped instance renewed its token")
		}
	})
	t.Run("tampered document", func(t *testing.T) {
		fake, mount := setup(t)
		fake.Tamper(true)
		_, err := login(t, newMethod(t, fake, mount, t.TempDir(), nil))
		var re *vaultclient.ResponseError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), tamperRefusal) {
			t.Fatalf("tampered document: %v, want Vault's %q", err, tamperRefusal)
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
	ec2 := map[string]any{"type": "ec2", "role": "web"}
	// One instance: every login must present its kept nonce.
	state := t.TempDir()
	t.Run("v2 by default; AWS_EC2_METADATA_SERVICE_ENDPOINT honoured", func(t *testing.T) {
		m := newMethodEnv(t, mount, state, ec2, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.IMDS.URL})
		if _, err := login(t, m); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("IMDSv1 refused unless allow_imdsv1", func(t *testing.T) {
		fake.OnlyV1(true)
		defer fake.OnlyV1(false)
		before := fake.IMDSGets("/latest/dynamic/instance-identity/rsa2048")
		if _, err := login(t, newMethod(t, fake, mount, state, nil)); err == nil || !strings.Contains(err.Error(), "HttpPutResponseHopLimit") {
			t.Fatalf("logged in through IMDSv1 without allow_imdsv1, or no hint: %v", err)
		}
		if fake.IMDSGets("/latest/dynamic/instance-identity/rsa2048") != before {
			t.Fatal("the document was read without a session token")
		}
		if _, err := login(t, newMethod(t, fake, mount, state, map[string]any{"allow_imdsv1": "true"})); err != nil {
			t.Fatalf("allow_imdsv1: %v", err)
		}
	})
	t.Run("IPv6 endpoint", func(t *testing.T) {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Fatalf("IPv6 loopback: %v", err)
		}
		srv6 := &http.Server{Handler: fake.IMDSHandler()}
		go srv6.Serve(ln)
		t.Cleanup(func() { srv6.Close() })
		ep := "http://" + ln.Addr().String() // http://[::1]:port
		if _, err := login(t, newMethod(t, fake, mount, state, map[string]any{"metadata_endpoint": ep})); err != nil {
			t.Fatalf("config endpoint %s: %v", ep, err)
		}
		if _, err := login(t, newMethodEnv(t, mount, state, ec2, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": ep})); err != nil {
			t.Fatalf("env endpoint %s: %v", ep, err)
		}
	})
	t.Run("AWS_EC2_METADATA_DISABLED", func(t *testing.T) {
		m := newMethodEnv(t, mount, state, map[string]any{"type": "ec2", "role": "web", "metadata_endpoint": fake.IMDS.URL},
			map[string]string{"AWS_EC2_METADATA_DISABLED": "true"})
		if _, err := login(t, m); err == nil {
			t.Fatal("IMDS used although AWS_EC2_METADATA_DISABLED=true")
		}
	})
}

func TestEndpointChoice(t *testing.T) {
	tests := []struct {
		endpoint string
		env      map[string]string
		want     string
	}{
		{"", nil, awsmeta.EndpointIPv4},
		{"", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}, "http://[fd00:ec2::254]"},
		{"", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://[fd00:ec2::254]", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv4"}, "http://[fd00:ec2::254]"},
		{"http://10.0.0.1:8080", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://192.0.2.1"}, "http://10.0.0.1:8080"},
	}
	for _, tc := range tests {
		c, err := awsmeta.New(awsmeta.Options{Endpoint: tc.endpoint, Getenv: func(k string) string { return tc.env[k] }})
		testkit.Must(t, err)
		if c.Endpoint != tc.want {
			t.Errorf("endpoint %q env %v: got %s, want %s", tc.endpoint, tc.env, c.Endpoint, tc.want)
		}
	}
	if _, err := awsmeta.New(awsmeta.Options{Getenv: func(k string) string {
		return map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv5"}[k]
	}}); err == nil {
		t.Error("endpoint mode IPv5 accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"type": "ec2", "role": "web"}
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
		"ec2":                      {base(), nil, ""},
		"iam with every key":       {base("type", "iam", "region", "eu-west-1", "header_value", "v", "access_key", "AKID", "secret_key", "s", "session_token", "t", "credential_poll_interval", int64(30)), nil, ""},
		"numbers and bools quoted": {base("credential_poll_interval", "60", "allow_imdsv1", "true"), nil, ""},
		"no type":                  {map[string]any{"role": "web"}, nil, `a.hcl:7: method "aws": config key "type" is required`},
		"no role":                  {map[string]any{"type": "iam"}, nil, `a.hcl:7: method "aws": config key "role" is required`},
		"bad type":                 {base("type", "ecs"), nil, `a.hcl:7: method "aws": config key "type": "ecs": want ec2 or iam`},
		"unknown key":              {base("rol", "web"), nil, `a.hcl:7: method "aws": unknown config key "rol"`},
		"role not a string":        {base("role", []any{"a"}), nil, `a.hcl:7: method "aws": config key "role": want a string`},
		"bad bool":                 {base("allow_imdsv1", "perhaps"), nil, `config key "allow_imdsv1": want true or false`},
		"bad interval":             {base("credential_poll_interval", "soon"), nil, `config key "credential_poll_interval"`},
		"zero interval":            {base("credential_poll_interval", int64(0)), nil, `config key "credential_poll_interval": want a positive`},
		"half static key":          {base("access_key", "AKID"), nil, `config keys "access_key" and "secret_key" go together`},
		"token without keys":       {base("session_token", "t"), nil, `config key "session_token" needs`},
		"long nonce":               {base("nonce", strings.Repeat("n", 129)), nil, `config key "nonce" is longer than`},
		"bad region":               {base("region", "us-east-1.evil"), nil, `a.hcl:7: method "aws": config key "region": "us-east-1.evil" is not a region name`},
		"bad endpoint":             {base("metadata_endpoint", "169.254.169.254"), nil, `a.hcl:7: method "aws": metadata endpoint "169.254.169.254"`},
		"bad endpoint mode":        {base(), map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv5"}, `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE="IPv5"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(auth.MethodConfig{Type: "aws", MountPath: "auth/aws", Config: tc.cfg, File: "a.hcl", Line: 7},
				auth.Env{StateDir: t.TempDir(), Logger: zaptest.NewLogger(t), Getenv: func(k string) string { return tc.env[k] }})
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

// The STS URL is the one Vault Agent (aws-sdk-go v1) signs.
func TestSTSURL(t *testing.T) {
	tests := []struct {
		region   string
		regional bool
		want     string
	}{
		{"us-east-1", false, "https://sts.amazonaws.com/"},
		{"eu-west-1", false, "https://sts.amazonaws.com/"},
		{"eu-west-1", true, "https://sts.eu-west-1.amazonaws.com/"},
		{"ap-east-1", false, "https://sts.ap-east-1.amazonaws.com/"},
		{"cn-north-1", false, "https://sts.cn-north-1.amazonaws.com.cn/"},
	}
	for _, tc := range tests {
		if got := stsURL(tc.region, tc.regional); got != tc.want {
			t.Errorf("stsURL(%s, %v) = %s, want %s", tc.region, tc.regional, got, tc.want)
		}
	}
}

func TestParseIdentityBER(t *testing.T) {
	s, err := awsfake.NewSigner()
	testkit.Must(t, err)
	body, err := s.SignRSA2048(awsfake.Document(instance))
	testkit.Must(t, err)
	if !strings.HasPrefix(body, "MIAGCSqGSIb3DQEHAqCA") || !strings.Contains(body, "\n") {
		t.Fatalf("not AWS's format (indefinite-length BER, wrapped):\n%s", body)
	}
	id, err := ParseIdentity(strings.Join(strings.Fields(body), ""))
	testkit.Must(t, err)
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

// records returns the nonce records in dir by instance id.
func records(t *testing.T, dir string) map[string]NonceRecord {
	t.Helper()
	out := map[string]NonceRecord{}
	entries, err := os.ReadDir(dir)
	testkit.Must(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		testkit.Must(t, err)
		var rec NonceRecord
		testkit.Must(t, json.Unmarshal(b, &rec))
		if _, dup := out[rec.InstanceID]; dup {
			t.Fatalf("two records of %s in %s", rec.InstanceID, dir)
		}
		out[rec.InstanceID] = rec
	}
	return out
}

func TestIAMLogin(t *testing.T) {
	fake, mount := setup(t)
	c := srv.Client
	_, err := c.Logical().Write("auth/"+mount+"/config/client", map[string]any{
		"access_key": "AKIDTEST", "secret_key": "test-secret", "endpoint": fake.API.URL,
		"sts_endpoint": fake.API.URL, "sts_region": "us-east-1", "max_retries": 0,
		"iam_server_id_header_value": "vault.example.com",
	})
	testkit.Must(t, err)
	_, err = c.Logical().Write("auth/"+mount+"/role/iam-web", map[string]any{
		"auth_type": "iam", "resolve_aws_unique_ids": false, "token_ttl": "1h",
		"bound_iam_principal_arn": fmt.Sprintf("arn:aws:iam::%s:role/%s", instance.AccountID, awsfake.Profile),
	})
	testkit.Must(t, err)
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
	// Keys from the environment come before the instance profile.
	fake.AddKey("AKIAENVKEY", "env-secret", "env-token")
	profileReads := fake.IMDSGets("/latest/meta-data/iam/security-credentials/" + awsfake.Profile)
	envCfg := map[string]any{"type": "iam", "role": "iam-web", "header_value": "vault.example.com", "metadata_endpoint": fake.IMDS.URL}
	m := newMethodEnv(t, mount, t.TempDir(), envCfg, map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token"})
	if _, err := login(t, m); err != nil {
		t.Fatalf("iam login with keys from the environment: %v", err)
	}
	if fake.IMDSGets("/latest/meta-data/iam/security-credentials/"+awsfake.Profile) != profileReads {
		t.Error("the instance profile was read although the environment has keys")
	}
	// A known key with the wrong secret: STS quotes its canonical request
	// (session token included), Vault passes it on; the error must not.
	fake.AddKey("AKIAWRONGSECRET", "right", "FwoGZXIvYXdzEXAMPLESESSIONTOKEN")
	m = newMethodEnv(t, mount, t.TempDir(), envCfg, map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAWRONGSECRET", "AWS_SECRET_ACCESS_KEY": "wrong", "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"})
	_, err = login(t, m)
	if err == nil || !strings.Contains(err.Error(), "Canonical String") {
		t.Fatalf("error = %v, want the signature mismatch", err)
	}
	if strings.Contains(err.Error(), "FwoGZXIvYXdzEXAMPLESESSIONTOKEN") {
		t.Fatalf("login error carries the session token: %v", err)
	}
	// Keys the fake never issued: the replayed request is not the profile's,
	// so the ARN does not match the role.
	if _, err := login(t, iam(map[string]any{"access_key": "AKIDOTHER", "secret_key": "x"})); err == nil {
		t.Error("foreign static keys logged in")
	}
}

// Defect: a nonce record that could not be read for a moment (EIO,
// EMFILE, a wrong owner) was handled as a corrupt one: a new nonce was
// saved over the good one, and Vault then refused every later login as a
// nonce mismatch. Such a login now fails (and is retried) with the record
// untouched; only a corrupt record is replaced.
func TestEC2UnreadableNonceStateKept(t *testing.T) {
	fake, mount := setup(t)
	stateDir := t.TempDir()
	if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
		t.Fatalf("first login: %v", err)
	}
	rec := filepath.Join(stateDir, "aws-ec2-auth_"+mount+"."+instance.InstanceID+".json")
	kept := testkit.ReadFile(rec)

	tests := []struct {
		name    string
		breakIt func()
		mendIt  func()
		wantErr string // of the login while broken
		kept    bool   // the record's bytes survive
	}{
		{"owned by another user: not read, kept", func() { testkit.Must(t, os.Chown(rec, 65534, 65534)) },
			func() { testkit.Must(t, os.Chown(rec, os.Geteuid(), os.Getegid())) }, "nonce state (not replaced; the login is retried)", true},
		{"a directory in its place: not read, not replaced", func() {
			testkit.Must(t, os.Rename(rec, rec+".away"))
			testkit.Must(t, os.Mkdir(rec, 0o700))
		}, func() {
			testkit.Must(t, os.Remove(rec))
			testkit.Must(t, os.Rename(rec+".away", rec))
		}, "nonce state (not replaced; the login is retried)", true},
		// Corrupt: the nonce is lost; a new one is tried (and refused by
		// Vault, which remembers the old one).
		{"corrupt: replaced", func() { testkit.WriteFile(t, rec, "{") }, nil, "client nonce mismatch", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.name, "owned") && os.Geteuid() != 0 {
				t.Skip("needs root to chown") // CI runs as root
			}
			tc.breakIt()
			_, err := login(t, newMethod(t, fake, mount, stateDir, nil))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("login: %v, want %q", err, tc.wantErr)
			}
			if !tc.kept {
				return
			}
			tc.mendIt()
			if got := testkit.ReadFile(rec); got != kept {
				t.Fatalf("the record changed:\n%s\nwas\n%s", got, kept)
			}
			if _, err := login(t, newMethod(t, fake, mount, stateDir, nil)); err != nil {
				t.Fatalf("login once the record is readable again: %v", err)
			}
		})
	}
}
