package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHDBin is Debian's sshd (openssh-server).
const SSHDBin = "/usr/sbin/sshd"

// SSHD is a private sshd started by StartSSHD.
type SSHD struct {
	Addr   string // 127.0.0.1:port
	Config string // its sshd_config
	Log    string // its log file (-e)
}

// NewSSHD writes an sshd_config at configPath for a private sshd on a free
// port of 127.0.0.1 with a new host key beside it: head, then the rig's
// settings, then body (sshd keeps the first value of a keyword, so an
// Include meant to win goes in head). Start runs it.
func NewSSHD(t testing.TB, configPath, head, body string) *SSHD {
	t.Helper()
	dir := filepath.Dir(configPath)
	Must(t, os.MkdirAll(dir, 0o755))
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	s := &SSHD{
		Addr:   fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		Config: configPath,
		Log:    filepath.Join(dir, "sshd.log"),
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	Must(t, os.WriteFile(s.Config, []byte(fmt.Sprintf(`%sPort %s
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
StrictModes no
UseDNS no
LogLevel VERBOSE
%s`, head, port, hostKey, filepath.Join(dir, "sshd.pid"), body)), 0o600))
	// sshd -t and -T need its privilege separation directory (before Start).
	Must(t, os.MkdirAll("/run/sshd", 0o755))
	return s
}

// Start runs sshd in the foreground as PAM service `service` (sshd uses the
// name it was started as: a symlink in a temp dir gives it) until the
// test's end; its log is printed when the test failed. Needs root.
func (s *SSHD) Start(t testing.TB, service string) {
	t.Helper()
	link := filepath.Join(t.TempDir(), service)
	Must(t, os.Symlink(SSHDBin, link))
	runSSHD(t, []string{link, "-D", "-e", "-f", s.Config}, s.Addr, s.Log)
}

// AddUser adds a local user without a home (removed at the test's end)
// whose password field matches no password, so that only PAM's other
// modules can let it in.
func AddUser(t testing.TB, name string) {
	t.Helper()
	if out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, out)
	}
}

// SSHLogin connects to addr as user, types password at every
// keyboard-interactive prompt and runs `id -un`; it returns the output.
func SSHLogin(addr, user, password string) (string, error) {
	return SSHLoginWith(addr, user, Password(password))
}

// Password answers every keyboard-interactive prompt with password.
func Password(password string) ssh.AuthMethod {
	return ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
		answers := make([]string, len(qs))
		for i := range answers {
			answers[i] = password
		}
		return answers, nil
	})
}

// SSHLoginWith connects to addr as user offering auth in order and runs
// `id -un`; it returns the output.
func SSHLoginWith(addr, user string, auth ...ssh.AuthMethod) (string, error) {
	return SSHWhoami(addr, &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         30 * time.Second,
	})
}

// SSHWhoami connects to addr with cfg and runs `id -un`; it returns the
// output.
func SSHWhoami(addr string, cfg *ssh.ClientConfig) (string, error) {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output("id -un")
	return strings.TrimSpace(string(out)), err
}
