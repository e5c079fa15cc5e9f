// Package fault runs latchkey's real binaries against a real Vault raft
// cluster (test/vaulttest.StartCluster) while nodes die, stop or hang, and
// counts outcomes. Each scenario prints one line of figures starting
// "fault " (shown by `make test`), and fails on a wrong answer: an OTP
// accepted that should not be, a destination emptied, a deadline missed.
package fault

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var helperBin, agentBin string

// runID makes the secret values of one run unique, so that the log scan
// cannot match anything else.
var runID = fmt.Sprintf("%x", time.Now().UnixNano())

// val is the n-th value of the KV secret kv/app.
func val(n int) string { return fmt.Sprintf("kvsecret-%d-%s", n, runID) }

// remember and scanLog are this package's short names for the kit's
// secret scan (test/testkit/secretscan): every OTP, secret id, token and
// value a scenario issues is remembered, every trace-level log of a
// helper or agent scanned for all of them, and a hit fails the test.
func remember(secrets ...string) { secretscan.Remember(secrets...) }

func scanLog(t *testing.T, name, what string) int {
	t.Helper()
	return secretscan.Scan(t, name, what)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latchkey-fault-")
	if err != nil {
		panic(err)
	}
	bins, err := testbin.Build(dir, "./cmd/latchkey-ssh-helper", "./cmd/latchkey-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	helperBin, agentBin = bins[0], bins[1]
	code := m.Run()
	code = secretscan.Finish(code, io.Discard) // the figures line below says it
	if logs, secrets, hits := secretscan.Counts(); logs > 0 {
		report("secret scan: %d trace-level helper and agent logs scanned for the %d secrets issued (OTPs, secret ids, tokens, values): %d found",
			logs, secrets, hits)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// report prints a scenario's one line of figures to stdout.
func report(format string, args ...any) {
	fmt.Printf("fault "+format+"\n", args...)
}

// Exit codes of latchkey-ssh-helper.
const (
	helperOK     = 0
	helperDenied = 1
	helperVault  = 4
)

// helperConfig writes a helper config for the ssh mount "ssh", role "web".
func helperConfig(t *testing.T, addrs []string, timeout string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "helper.hcl")
	testkit.WriteFile(t, p, fmt.Sprintf("vault_addrs = %s\nssh_mount_point = \"ssh\"\nallowed_roles = \"web\"\naudit = \"off\"\ntimeout = %q\n",
		hclList(addrs), timeout))
	return p
}

// login runs the helper as pam_exec would with otp on stdin; it returns the
// exit code and the output.
func login(t *testing.T, cfg, otp string) (int, string) {
	t.Helper()
	cmd := exec.Command(helperBin, "-config="+cfg, "-dev", "-log-level=trace")
	cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=127.0.0.1"}
	cmd.Stdin = strings.NewReader(otp + "\x00")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	remember(otp)
	scanLog(t, "the helper", out.String())
	return cmd.ProcessState.ExitCode(), out.String()
}

// sshRole mounts the ssh engine at "ssh" with the OTP role "web".
func sshRole(t *testing.T, c *api.Client) {
	t.Helper()
	testkit.Must(t, c.Sys().Mount("ssh", &api.MountInput{Type: "ssh"}))
	_, err := c.Logical().Write("ssh/roles/web", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"})
	testkit.Must(t, err)
}

// issueOTP issues one OTP for alice@127.0.0.1.
func issueOTP(t *testing.T, c *api.Client) string {
	t.Helper()
	s, err := c.Logical().Write("ssh/creds/web", map[string]any{"ip": "127.0.0.1"})
	testkit.Must(t, err)
	otp := s.Data["key"].(string)
	remember(otp)
	return otp
}

// randomOTP is a well-formed OTP Vault never issued.
func randomOTP(i int) string {
	return fmt.Sprintf("%08x-dead-4bad-8bad-%012x", i, time.Now().UnixNano()&0xffffffffffff)
}

// syncBuffer is an io.Writer the agent's output goes to, read by the test.
type syncBuffer = testkit.Buffer

// agent is a running latchkey-agent.
type agent struct {
	log  *syncBuffer
	dest string // the KV template's destination
}

// startAgent starts the agent with an approle login at mount "approle"
// (role "web", policy "kv") and one template rendering kv/app's "v" into
// dest, re-read every second; vault is the body of its vault stanza. It is
// killed when the test ends.
func startAgent(t *testing.T, c *api.Client, vault string) *agent {
	t.Helper()
	return startAgentTo(t, c, vault, "")
}

// startAgentTo is startAgent with the template's destination at dest
// ("": app.txt in the agent's own directory), and one more template of the
// same secret for each of more.
func startAgentTo(t *testing.T, c *api.Client, vault, dest string, more ...string) *agent {
	t.Helper()
	dir := t.TempDir()
	if dest == "" {
		dest = filepath.Join(dir, "app.txt")
	}
	var extra strings.Builder
	for _, d := range more {
		fmt.Fprintf(&extra, "template {\n  contents    = \"{{ with secret \\\"kv/app\\\" }}{{ .Data.v }}{{ end }}\"\n  destination = %q\n}\n", d)
	}
	rid, err := c.Logical().Read("auth/approle/role/web/role-id")
	testkit.Must(t, err)
	sid, err := c.Logical().Write("auth/approle/role/web/secret-id", nil)
	testkit.Must(t, err)
	roleID, secretID := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	testkit.WriteFile(t, roleID, rid.Data["role_id"].(string))
	testkit.WriteFile(t, secretID, sid.Data["secret_id"].(string))
	remember(sid.Data["secret_id"].(string))
	a := &agent{log: &syncBuffer{}, dest: dest}
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, fmt.Sprintf(`vault {
%s
}
latchkey {
  state_dir = %q
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
    }
  }
}
template_config {
  static_secret_render_interval = "1s"
}
template {
  contents    = "{{ with secret \"kv/app\" }}{{ .Data.v }}{{ end }}"
  destination = %q
}
%s`, vault, filepath.Join(dir, "state"), roleID, secretID, filepath.Join(dir, "token"), a.dest, extra.String()))
	cmd := exec.Command(agentBin, "-config", cfg, "-log-level", "trace")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = a.log, a.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	testkit.Must(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		remember(strings.TrimSpace(testkit.ReadFile(filepath.Join(dir, "token"))))
		n := scanLog(t, "the agent", a.log.String())
		t.Logf("agent log (trace, %d bytes) scanned for %d issued secrets", len(a.log.String()), n)
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log.String())
		}
	})
	return a
}

// agentSetup enables approle and a KV v1 mount "kv" holding kv/app v=v1,
// with a policy that reads it.
func agentSetup(t *testing.T, c *api.Client) {
	t.Helper()
	testkit.Must(t, c.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	testkit.Must(t, c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	testkit.Must(t, c.Sys().PutPolicy("kv", `path "kv/*" { capabilities = ["read"] }`))
	_, err := c.Logical().Write("auth/approle/role/web", map[string]any{"token_ttl": "8s", "token_max_ttl": "1h", "token_policies": "kv"})
	testkit.Must(t, err)
	remember(val(1))
	_, err = c.Logical().Write("kv/app", map[string]any{"v": val(1)})
	testkit.Must(t, err)
}

// content is dest's content ("" when missing).
func (a *agent) content() string {
	b, _ := os.ReadFile(a.dest)
	return string(b)
}

// waitContent waits up to limit for dest to hold want and returns how long
// it took; it fails the test after limit.
func (a *agent) waitContent(t *testing.T, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if a.content() == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s holds %q after %s, want %q", a.dest, a.content(), limit, want)
	return 0
}

// writeKV writes kv/app v=v through any node that takes it, retrying for
// up to 30 s (an election may be under way).
func writeKV(t *testing.T, cl *vaulttest.Cluster, v string) {
	t.Helper()
	remember(v)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := cl.Leader()
		if l >= 0 {
			if _, err := cl.Nodes[l].Client.Logical().Write("kv/app", map[string]any{"v": v}); err == nil {
				return
			} else if time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no active node to write to")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hclList is addrs as an HCL list.
func hclList(addrs []string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
