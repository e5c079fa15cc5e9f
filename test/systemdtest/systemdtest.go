// Package systemdtest boots a real systemd for tests of what only systemd
// shows: the shipped unit under Type=notify, RuntimeDirectory across
// restarts, the hardening measured on the loaded unit, journald.
//
// The machine runs no systemd as PID 1, so Boot starts one in a container
// with Debian's systemd-nspawn (package systemd-container), from the host's
// own /usr with a throwaway root (--volatile=yes: a tmpfs, gone when it
// stops), sharing the host's network (a Vault on 127.0.0.1 is reachable).
// Commands run inside with nsenter. It needs root; tests skip without it.
package systemdtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bind is a host path shown read-only inside the container at Dst. Dst
// must not be under /usr (the host's, read-only): use /opt or /etc.
type Bind struct{ Src, Dst string }

// Machine is one booted container.
type Machine struct {
	Name string
	// PID is the container's systemd, as the host sees it.
	PID int
	cmd *exec.Cmd
	log string
}

// Boot starts a container with binds and waits until its systemd is up
// (`systemctl is-system-running --wait`: "running" or "degraded", the
// latter because the host's ssh.service has no host keys in the empty
// root). It is stopped at the test's end. It skips the test when not root
// and fails it when systemd-nspawn is missing or the boot takes over 90 s.
func Boot(t testing.TB, binds ...Bind) *Machine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("systemdtest: booting systemd-nspawn needs root (CI runs as root)")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Fatalf("systemd-nspawn missing: run `make deps` as root (installs systemd-container): %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	m := &Machine{Name: "lk" + hex.EncodeToString(b), log: filepath.Join(t.TempDir(), "nspawn.log")}
	args := []string{"-q", "-D", "/", "--volatile=yes", "--register=no", "--keep-unit", "-M", m.Name}
	for _, bd := range binds {
		args = append(args, "--bind-ro="+bd.Src+":"+bd.Dst)
	}
	args = append(args, "-b", "systemd.firstboot=off")
	logf, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command("systemd-nspawn", args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		m.cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		// nspawn turns SIGTERM into a clean poweroff of the container.
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			m.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(m.log)
			t.Logf("container log (tail):\n%s", tail(string(b), 60))
		}
	})
	// The container's systemd is nspawn's child; the first process of
	// that name may still be nspawn's set-up, so it is looked up again
	// until systemctl answers through it.
	var state string
	for i := 0; i < 120; i++ {
		select {
		case <-exited:
			b, _ := os.ReadFile(m.log)
			t.Fatalf("systemd-nspawn exited:\n%s", tail(string(b), 60))
		default:
		}
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(m.cmd.Process.Pid), "-x", "systemd").Output()
		if m.PID, _ = strconv.Atoi(strings.TrimSpace(string(out))); m.PID != 0 {
			// systemctl fails until systemd's private socket exists.
			out, _ := m.RunTimeout(90*time.Second, "systemctl", "is-system-running", "--wait")
			if state = strings.TrimSpace(out); state == "running" || state == "degraded" {
				return m
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the container's systemd is %q", state)
	return nil
}

// Run runs a command inside the container (its mount, UTS, IPC, network
// and PID namespaces) and returns its combined output; 60 s at most.
func (m *Machine) Run(args ...string) (string, error) {
	return m.RunTimeout(60*time.Second, args...)
}

// RunTimeout is Run with a time limit.
func (m *Machine) RunTimeout(limit time.Duration, args ...string) (string, error) {
	full := append([]string{"-t", strconv.Itoa(m.PID), "-m", "-u", "-i", "-n", "-p", "--"}, args...)
	cmd := exec.Command("nsenter", full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// nsenter -p forks the command; both are in a process group of their
	// own, killed together at the limit. WaitDelay ends Wait even when a
	// process the command left in the container still holds the output
	// pipe (a daemon it started), instead of blocking the test for ever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
		return out.String(), nil
	case <-time.After(limit):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("%s: still running after %s", strings.Join(args, " "), limit)
	}
}

// MustRun is Run failing the test on an error.
func (m *Machine) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := m.Run(args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// WriteFile writes a file inside the container (its root is a tmpfs).
func (m *Machine) WriteFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(m.PID), "-m", "--", "sh", "-c",
		`mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"`, "sh", path, fmt.Sprintf("%o", mode))
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write %s in the container: %v\n%s", path, err, out)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
