// Package cloudagent runs the built latchkey-agent against a real Vault and
// the cloud fakes: AWS ec2 (nonce kept across agent restarts, in the state
// directory), AWS iam, and Alibaba Cloud (RAM role, verified identity).
package cloudagent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/test/fakes/alifake"
	"github.com/latchkey/latchkey/test/fakes/awsfake"
	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// Exit codes of latchkey-agent (cmd/latchkey-agent/cli.go).
const (
	exitOK   = 0
	exitAuth = 4
)

var (
	srv   *vaulttest.Server
	bin   string
	cloud *alifake.Cloud
)

var aliInstance = alifake.Instance{AccountID: "5123456789012345", InstanceID: "i-bp1agente2e", RegionID: "cn-hangzhou", RAMRole: "web-role"}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "latchkey-cloudagent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins, err := testbin.Build(dir, "./cmd/latchkey-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin = bins[0]
	if cloud, err = alifake.New(aliInstance, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cloud.Close()
	// Vault reaches the fake Alibaba STS under its real name through the
	// CONNECT proxy and trusts the test CA.
	srv, err = vaulttest.Start(vaulttest.Options{Env: []string{"HTTPS_PROXY=" + cloud.Proxy.URL, "SSL_CERT_FILE=" + cloud.CABundle}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()
	return secretscan.Finish(m.Run(), os.Stderr)
}

// agent runs latchkey-agent -config cfg once (exit_after_auth) and returns
// its exit code and stderr.
func agent(t *testing.T, cfg string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "VAULT_ADDR=" + srv.Addr}, env...)
	// Should the test binary die (a timeout), the agent dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	testkit.ScanOutput(t, cmd)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("agent did not exit:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// agentConfig writes a one-shot agent config for method (type and its
// config body) and returns its path and the sink path.
func agentConfig(t *testing.T, dir, stateDir, method, mount, body string) (string, string) {
	t.Helper()
	sink := filepath.Join(dir, "token")
	cfg := filepath.Join(dir, "agent.hcl")
	src := fmt.Sprintf(`exit_after_auth = true
latchkey {
  state_dir = %q
}
auto_auth {
  method %q {
    mount_path  = "auth/%s"
    exit_on_err = true
    config = {
%s
    }
  }
  sink "file" {
    config = {
      path = %q
      mode = 0600
    }
  }
}
`, stateDir, method, mount, body, sink)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, sink
}

// tokenWorks checks the sink holds a token Vault accepts.
func tokenWorks(t *testing.T, sink string) string {
	t.Helper()
	b, err := os.ReadFile(sink)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	// The agent's own token: no log of the package may hold it.
	secretscan.Remember(strings.TrimSpace(string(b)))
	c, err := srv.NewClient(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Auth().Token().LookupSelf()
	if err != nil || s == nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}
	return strings.TrimSpace(string(b))
}

var ec2Instance = awsfake.Instance{
	AccountID: "123456789012", InstanceID: "i-0e2e0000aaaa11111", Region: "eu-west-1",
	ImageID: "ami-0e2e0000000000000", State: "running", PendingTime: time.Now().Add(-time.Hour),
}

func setupAWS(t *testing.T, mount string) *awsfake.AWS {
	t.Helper()
	fake, err := awsfake.New(ec2Instance)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	c := srv.Client
	srv.EnableAuthT(t, mount, &api.EnableAuthOptions{Type: "aws"})
	steps := []func() error{
		func() error {
			_, err := c.Logical().Write("auth/"+mount+"/config/client", map[string]any{
				"access_key": "AKIDTEST", "secret_key": "test-secret", "endpoint": fake.API.URL,
				"sts_endpoint": fake.API.URL, "sts_region": "us-east-1", "max_retries": 0,
				"iam_server_id_header_value": "vault.e2e.example",
			})
			return err
		},
		func() error {
			_, err := c.Logical().Write("auth/"+mount+"/config/certificate/test", map[string]any{"aws_public_cert": fake.Signer.CertPEM, "type": "pkcs7"})
			return err
		},
		func() error {
			_, err := c.Logical().Write("auth/"+mount+"/role/web", map[string]any{"auth_type": "ec2", "bound_ami_id": ec2Instance.ImageID, "token_ttl": "1h"})
			return err
		},
		func() error {
			_, err := c.Logical().Write("auth/"+mount+"/role/iam-web", map[string]any{
				"auth_type": "iam", "resolve_aws_unique_ids": false, "token_ttl": "1h",
				"bound_iam_principal_arn": fmt.Sprintf("arn:aws:iam::%s:role/%s", ec2Instance.AccountID, awsfake.Profile),
			})
			return err
		},
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	return fake
}

// The agent, restarted, logs in again with the nonce it kept; an agent
// without that state is refused (Vault Agent's restart failure). The IMDS
// endpoint comes from AWS_EC2_METADATA_SERVICE_ENDPOINT in the real process
// environment.
func TestAWSEC2NonceAcrossAgentRestarts(t *testing.T) {
	fake := setupAWS(t, "aws-e2e-ec2")
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfg, sink := agentConfig(t, dir, stateDir, "aws", "aws-e2e-ec2", `      type = "ec2"
      role = "web"`)
	imdsEnv := "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + fake.IMDS.URL

	code, stderr := agent(t, cfg, imdsEnv)
	if code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	first := tokenWorks(t, sink)
	// One record beside the agent's lock file.
	all, err := os.ReadDir(stateDir)
	var entries []os.DirEntry
	for _, e := range all {
		if e.Name() != state.LockName {
			entries = append(entries, e)
		}
	}
	if err != nil || len(entries) != 1 || len(all) != 2 {
		t.Fatalf("state dir: %v %v", all, err)
	}
	record, _ := os.ReadFile(filepath.Join(stateDir, entries[0].Name()))
	if !strings.Contains(string(record), ec2Instance.InstanceID) {
		t.Fatalf("nonce record does not name the instance: %s", record)
	}

	code, stderr = agent(t, cfg, imdsEnv)
	if code != exitOK {
		t.Fatalf("restarted agent: exit %d\n%s", code, stderr)
	}
	if second := tokenWorks(t, sink); second == first {
		t.Error("the restarted agent did not log in again")
	}
	if after, _ := os.ReadFile(filepath.Join(stateDir, entries[0].Name())); !bytes.Equal(after, record) {
		t.Errorf("nonce record changed across a restart:\n%s\n%s", record, after)
	}

	// Lost state: Vault holds the first nonce and refuses a new one.
	lost, _ := agentConfig(t, t.TempDir(), filepath.Join(t.TempDir(), "state"), "aws", "aws-e2e-ec2", `      type = "ec2"
      role = "web"`)
	code, stderr = agent(t, lost, imdsEnv)
	if code != exitAuth || !strings.Contains(stderr, "client nonce mismatch") {
		t.Fatalf("agent without the kept nonce: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, nonceOf(t, record)) {
		t.Error("the nonce appears in the agent's log")
	}
}

func nonceOf(t *testing.T, record []byte) string {
	t.Helper()
	i := bytes.Index(record, []byte(`"nonce": "`))
	if i < 0 {
		t.Fatalf("no nonce in %s", record)
	}
	rest := record[i+len(`"nonce": "`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func TestAWSIAM(t *testing.T) {
	fake := setupAWS(t, "aws-e2e-iam")
	dir := t.TempDir()
	cfg, sink := agentConfig(t, dir, filepath.Join(dir, "state"), "aws", "aws-e2e-iam", fmt.Sprintf(`      type = "iam"
      role = "iam-web"
      header_value = "vault.e2e.example"
      metadata_endpoint = %q`, fake.IMDS.URL))
	code, stderr := agent(t, cfg)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	tokenWorks(t, sink)
	if fake.SigV4Checked() == 0 {
		t.Error("the fake STS verified no signature")
	}
}

func TestAlicloud(t *testing.T) {
	const mount = "alicloud-e2e"
	c := srv.Client
	srv.EnableAuthT(t, mount, &api.EnableAuthOptions{Type: "alicloud"})
	if _, err := c.Logical().Write("auth/"+mount+"/role/web", map[string]any{
		"arn": fmt.Sprintf("acs:ram::%s:role/%s", aliInstance.AccountID, aliInstance.RAMRole), "token_ttl": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile := filepath.Join(dir, "identity.pem")
	if err := os.WriteFile(certFile, cloud.Identity.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	cfg, sink := agentConfig(t, dir, stateDir, "alicloud", mount, fmt.Sprintf(`      role = "web"
      region = %q
      verify_identity = true
      identity_cert_file = %q
      metadata_endpoint = %q`, aliInstance.RegionID, certFile, cloud.Metadata.URL))
	code, stderr := agent(t, cfg)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	tokenWorks(t, sink)
	if b, err := os.ReadFile(filepath.Join(stateDir, "alicloud-identity.json")); err != nil || !strings.Contains(string(b), aliInstance.InstanceID) {
		t.Errorf("verified identity not recorded: %s %v", b, err)
	}

	// A spoofed metadata service: refused before any login attempt.
	cloud.Spoof(true)
	defer cloud.Spoof(false)
	ok, denied := cloud.STSCalls()
	code, stderr = agent(t, cfg)
	if code != exitAuth || !strings.Contains(stderr, "not signed by the pinned certificate") {
		t.Fatalf("spoofed metadata: exit %d\n%s", code, stderr)
	}
	if ok2, denied2 := cloud.STSCalls(); ok2 != ok || denied2 != denied {
		t.Error("a spoofed metadata service still led to a login")
	}
}
