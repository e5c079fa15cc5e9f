// Package sshcert_test proves the agent's ssh { } stanza through a real
// latchkey-agent, a real Vault with SSH secrets engines as CAs and a real
// sshd that trusts what the agent writes, with golang.org/x/crypto/ssh as
// the client. It needs root (sshd, useradd); `make test` runs as root in CI.
package sshcert_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var (
	srv      *vaulttest.Server
	agentBin string
)

// hostName is the host certificate's principal; clients check it.
const hostName = "sshcert.example.com"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "test/e2e/sshcert: SKIPPED: the sshd end-to-end test needs root (sshd, useradd); CI runs it as root")
		os.Exit(0)
	}
	if _, err := os.Stat(testkit.SSHDBin); err != nil {
		fmt.Fprintf(os.Stderr, "test/e2e/sshcert: %s missing: run `make deps` as root (installs openssh-server)\n", testkit.SSHDBin)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "sshcert-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err := testbin.Build(dir, "./cmd/latchkey-agent")
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = bins[0]
	code := vaulttest.Run(m, vaulttest.Spec{Into: &srv})
	os.RemoveAll(dir)
	os.Exit(code)
}

// rig is one host: a local user, Vault mounts (two user CAs, a host CA,
// KV for principals), an sshd and the agent keeping its files.
type rig struct {
	t            *testing.T
	vault        *vaulttest.Server
	dir, suffix  string
	user         string
	userA, userB string // user CA mounts
	hostMount    string
	kv           string
	hostCA       ssh.PublicKey
	offline      ssh.Signer // the pinned break-glass CA
	sshd         *testkit.SSHDServer
	agent        *exec.Cmd
	agentLog     string
	agentDone    chan struct{}
	cfgPath      string
	trustFile    string
	certFile     string
	principals   string
	check        string // check_command's shell line
	extraHost    string // host_certificate lines
	extraTop     string // top-level lines (exit_after_auth)
}

func newRig(t *testing.T, vault *vaulttest.Server) *rig {
	r := &rig{t: t, vault: vault, dir: t.TempDir(), suffix: randHex(3)}
	// sshd reads the principals file as the user: the path must be traversable.
	testkit.Must(t, os.Chmod(r.dir, 0o755))
	testkit.Must(t, os.Chmod(filepath.Dir(r.dir), 0o755))
	r.user = "lkcert" + r.suffix
	run(t, "useradd", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", r.user)
	t.Cleanup(func() { exec.Command("userdel", r.user).Run() })
	run(t, "usermod", "-p", "*", r.user)

	r.userA, r.userB = "ssh-user-a-"+r.suffix, "ssh-user-b-"+r.suffix
	r.hostMount, r.kv = "ssh-host-"+r.suffix, "kv-"+r.suffix
	for _, m := range []string{r.userA, r.userB} {
		vault.SSHCAT(t, m)
		_, err := vault.Client.Logical().Write(m+"/roles/team", map[string]any{
			"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*",
			"allowed_extensions": "permit-pty", "ttl": "30m",
		})
		testkit.Must(t, err)
	}
	r.hostCA = vault.SSHCAT(t, r.hostMount)
	_, err := vault.Client.Logical().Write(r.hostMount+"/roles/host", map[string]any{
		"key_type": "ca", "allow_host_certificates": true, "allowed_domains": "example.com",
		"allow_subdomains": true, "allow_bare_domains": true, "ttl": "1h", "not_before_duration": "1s",
	})
	testkit.Must(t, err)
	vault.MountT(t, r.kv, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	r.setTeams("team-web")

	policy := "sshcert-" + r.suffix
	testkit.Must(t, vault.Client.Sys().PutPolicy(policy, fmt.Sprintf(`path "%s/sign/host" { capabilities = ["update"] }
path "%s/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`, r.hostMount, r.kv)))
	tok, err := vault.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, NoParent: true, TTL: "1h"})
	testkit.Must(t, err)
	testkit.WriteFile(t, filepath.Join(r.dir, "token"), tok.Auth.ClientToken)

	// The offline CA: its key never leaves the test, its public key is pinned.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	r.offline, _ = ssh.NewSignerFromKey(priv)
	testkit.Must(t, os.WriteFile(filepath.Join(r.dir, "pinned-user-ca.pub"), append([]byte("# offline break-glass CA\n"), ssh.MarshalAuthorizedKey(r.offline.PublicKey())...), 0o644))

	hostKey := filepath.Join(r.dir, "ssh_host_ed25519_key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	r.trustFile = filepath.Join(r.dir, "trusted-user-ca-keys.pem")
	r.certFile = hostKey + "-cert.pub"
	testkit.Must(t, os.Mkdir(filepath.Join(r.dir, "auth_principals"), 0o755))
	r.principals = filepath.Join(r.dir, "auth_principals", r.user)
	r.sshd = testkit.StartSSHD(t, testkit.SSHDOptions{Dir: r.dir, Config: fmt.Sprintf(`HostKey %s
HostCertificate %s
TrustedUserCAKeys %s
AuthorizedPrincipalsFile %s/auth_principals/%%u
AuthorizedKeysFile none
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
StrictModes no
UseDNS no
AllowUsers %s
LogLevel VERBOSE
`, hostKey, r.certFile, r.trustFile, r.dir, r.user)})
	r.cfgPath = filepath.Join(r.dir, "agent.hcl")
	r.check = fmt.Sprintf("%s -t -f %s", testkit.SSHDBin, r.sshd.ConfigFile)
	return r
}

// setTeams is what a Vault admin does to let teams log in as the user.
func (r *rig) setTeams(teams ...string) {
	_, err := r.vault.Client.Logical().Write(r.kv+"/data/principals", map[string]any{"data": map[string]any{r.user: strings.Join(teams, "\n")}})
	testkit.Must(r.t, err)
}

// writeConfig writes the agent's config trusting mounts.
func (r *rig) writeConfig(mounts ...string) {
	quoted := make([]string, len(mounts))
	for i, m := range mounts {
		quoted[i] = fmt.Sprintf("%q", m)
	}
	testkit.WriteFile(r.t, r.cfgPath, r.extraTop+fmt.Sprintf(`vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
template_config {
  static_secret_render_interval = "1s"
}
# Principals by group: who may log in as %[3]s is a KV secret.
template {
  contents    = "{{ with secret \"%[4]s/data/principals\" }}{{ index .Data.data \"%[3]s\" }}{{ end }}\n"
  destination = %[5]q
  perms       = "0644"
}
ssh {
  trusted_user_ca_keys = %[6]q
  user_ca_mounts       = [%[7]s]
  pinned_user_ca_keys  = %[8]q
  refresh_interval     = "1s"
  host_certificate {
    mount      = %[9]q
    role       = "host"
    keys       = [%[10]q]
    principals = [%[11]q]
    %[12]s
  }
  check_command  = ["sh", "-c", %[13]q]
  reload_command = [%[14]s]
}
`, r.vault.Addr, filepath.Join(r.dir, "token"), r.user, r.kv, r.principals, r.trustFile, strings.Join(quoted, ", "),
		filepath.Join(r.dir, "pinned-user-ca.pub"), r.hostMount, filepath.Join(r.dir, "ssh_host_ed25519_key.pub"), hostName,
		r.extraHost, r.check, quoteList(r.sshd.ReloadCommand())))
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// startAgent runs the agent and waits for its files.
func (r *rig) startAgent() {
	t := r.t
	r.agentLog = filepath.Join(r.dir, "agent.log")
	logf, err := os.Create(r.agentLog)
	testkit.Must(t, err)
	r.agent = exec.Command(agentBin, "-config", r.cfgPath)
	r.agent.Env = []string{"PATH=" + os.Getenv("PATH")}
	r.agent.Stdout, r.agent.Stderr = logf, logf
	testkit.ScanOutput(t, r.agent)
	r.agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	testkit.Must(t, r.agent.Start())
	r.agentDone = make(chan struct{})
	go func() { r.agent.Wait(); logf.Close(); close(r.agentDone) }()
	t.Cleanup(func() {
		r.agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.agentDone:
		case <-time.After(10 * time.Second):
			r.agent.Process.Kill()
			<-r.agentDone
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", testkit.ReadFile(r.agentLog))
		}
	})
	testkit.Eventually(t, "the trust file, the host certificate and the principals file", func() bool {
		return testkit.ReadFile(r.trustFile) != "" && testkit.ReadFile(r.certFile) != "" && testkit.ReadFile(r.principals) != ""
	})
	// sshd serves the certificate once the agent has reloaded it.
	testkit.Eventually(t, "sshd to serve the host certificate", func() bool {
		_, err := r.login(r.userCert(r.userA, "team-web", "10m"))
		return err == nil
	})
}

// reloadAgent rewrites the config with mounts and sends SIGHUP.
func (r *rig) reloadAgent(mounts ...string) {
	r.writeConfig(mounts...)
	testkit.Must(r.t, r.agent.Process.Signal(syscall.SIGHUP))
}

// userKey is a user's key pair and, when signed, its certificate.
type userKey struct {
	signer ssh.Signer
	cert   *ssh.Certificate // nil: a plain key
}

func newUserKey(t *testing.T) userKey {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	testkit.Must(t, err)
	return userKey{signer: s}
}

// userCert is a fresh key signed by Vault's mount for principal.
func (r *rig) userCert(mount, principal, ttl string) userKey {
	k := newUserKey(r.t)
	k.cert = r.vault.SignSSHT(r.t, mount, "team", k.signer.PublicKey(), map[string]any{"valid_principals": principal, "ttl": ttl, "cert_type": "user"})
	return k
}

// offlineCert is a fresh key signed by the pinned offline CA.
func (r *rig) offlineCert(principal string) userKey {
	k := newUserKey(r.t)
	now := time.Now()
	k.cert = &ssh.Certificate{Key: k.signer.PublicKey(), Serial: 4242, CertType: ssh.UserCert, KeyId: "break-glass-" + r.suffix,
		ValidPrincipals: []string{principal}, ValidAfter: uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(time.Hour).Unix())}
	testkit.Must(r.t, k.cert.SignCert(rand.Reader, r.offline))
	return k
}

// login connects as the rig's user with k, verifying the host certificate
// against the host CA, and runs `id -un`.
func (r *rig) login(k userKey) (string, error) {
	out, _, err := r.loginTo(r.sshd.Addr, k)
	return out, err
}

// loginTo is login to addr; it also returns the serial of the host
// certificate served.
func (r *rig) loginTo(addr string, k userKey) (string, uint64, error) {
	signer := k.signer
	if k.cert != nil {
		var err error
		signer, err = ssh.NewCertSigner(k.cert, k.signer)
		testkit.Must(r.t, err)
	}
	var served uint64
	checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
		return bytes.Equal(auth.Marshal(), r.hostCA.Marshal())
	}}
	out, err := testkit.SSHWhoami(addr, &ssh.ClientConfig{
		User: r.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, remote net.Addr, key ssh.PublicKey) error {
			if cert, ok := key.(*ssh.Certificate); ok {
				served = cert.Serial
			}
			return checker.CheckHostKey(hostName+":22", remote, key)
		},
		HostKeyAlgorithms: []string{ssh.CertAlgoED25519v01, ssh.KeyAlgoED25519},
		Timeout:           20 * time.Second,
	})
	return out, served, err
}

func (r *rig) mustLogIn(what string, k userKey) {
	r.t.Helper()
	if out, err := r.login(k); err != nil || out != r.user {
		r.t.Errorf("%s: output %q, error %v; want to log in as %s", what, out, err, r.user)
	}
}

func (r *rig) mustBeRefused(what string, k userKey) {
	r.t.Helper()
	if out, err := r.login(k); err == nil {
		r.t.Errorf("%s got in (output %q)", what, out)
	}
}

// status runs `latchkey-agent ssh status`.
func (r *rig) status() string {
	out, err := exec.Command(agentBin, "ssh", "status", "-config", r.cfgPath).CombinedOutput()
	if err != nil {
		r.t.Fatalf("ssh status: %v\n%s", err, out)
	}
	return string(out)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
