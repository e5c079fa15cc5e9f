package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// SSHDOptions shape a private sshd started by StartSSHD.
type SSHDOptions struct {
	// Dir holds sshd_config, sshd.pid and sshd.log (required).
	Dir string
	// Config is the sshd_config text after the Port, ListenAddress and
	// PidFile lines StartSSHD writes (HostKey, authentication, ...).
	Config string
	// Bin is the program to start; a symlink to sshd names sshd's PAM
	// service. Default SSHDBin.
	Bin string
	// PrivateDev, when set, is a directory holding only the test's syslog
	// socket "log": sshd then runs under `unshare --mount` with a /dev of
	// its own made from it (see privateDevScript), so that what sshd and
	// PAM send to syslog reaches the test and the machine's syslog gets
	// none of it.
	PrivateDev string
}

// SSHDServer is a running sshd started by StartSSHD.
type SSHDServer struct {
	// Addr is 127.0.0.1:PORT.
	Addr                         string
	ConfigFile, LogFile, PidFile string

	proc *sshdProc
}

// StartSSHD writes the config and runs sshd in the foreground (-D, logging
// to LogFile with -e) until the test's end, and returns once it listens. It
// fails the test, with sshd's log, when sshd exits first; the log is
// printed when the test failed. Needs root.
func StartSSHD(t testing.TB, opts SSHDOptions) *SSHDServer {
	t.Helper()
	bin := opts.Bin
	if bin == "" {
		bin = SSHDBin
	}
	s := &SSHDServer{
		Addr:       fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		ConfigFile: filepath.Join(opts.Dir, "sshd_config"),
		LogFile:    filepath.Join(opts.Dir, "sshd.log"),
		PidFile:    filepath.Join(opts.Dir, "sshd.pid"),
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := fmt.Sprintf("Port %s\nListenAddress 127.0.0.1\nPidFile %s\n%s", port, s.PidFile, opts.Config)
	Must(t, os.WriteFile(s.ConfigFile, []byte(conf), 0o600))
	args := []string{bin, "-D", "-e", "-f", s.ConfigFile}
	if opts.PrivateDev != "" {
		noJournal := filepath.Join(opts.Dir, "no-journal")
		Must(t, os.Mkdir(noJournal, 0o755))
		args = append([]string{"unshare", "--mount", "--propagation", "private",
			"sh", "-c", privateDevScript, "sh", opts.PrivateDev, noJournal}, args...)
	}
	s.proc = runSSHD(t, args, s.Addr, s.LogFile)
	return s
}

// Log returns what sshd logged so far.
func (s *SSHDServer) Log() string { return ReadFile(s.LogFile) }

// PID is sshd's process id (unshare and sh exec it).
func (s *SSHDServer) PID() int { return s.proc.cmd.Process.Pid }

// ReloadCommand is a command line reloading this sshd as `systemctl reload
// ssh` does: SIGHUP, on which sshd re-executes itself and reads its config
// and host certificates again.
func (s *SSHDServer) ReloadCommand() []string {
	return []string{"kill", "-HUP", fmt.Sprint(s.PID())}
}

// Reload sends SIGHUP.
func (s *SSHDServer) Reload() error { return s.proc.cmd.Process.Signal(syscall.SIGHUP) }

// sshdProc is one sshd process.
type sshdProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// runSSHD starts args (sshd, or a wrapper exec-ing it) with its output in
// logPath, kills it at the test's end and waits until addr accepts
// connections.
func runSSHD(t testing.TB, args []string, addr, logPath string) *sshdProc {
	t.Helper()
	// sshd needs its privilege separation directory.
	Must(t, os.MkdirAll("/run/sshd", 0o755))
	logf, err := os.Create(logPath)
	Must(t, err)
	p := &sshdProc{cmd: exec.Command(args[0], args[1:]...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	Must(t, p.cmd.Start())
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		logf.Close()
		if t.Failed() {
			t.Logf("sshd log:\n%s", ReadFile(logPath))
		}
	})
	for i := 0; ; i++ {
		select {
		case <-p.exited:
			t.Fatalf("sshd exited before listening on %s:\n%s", addr, ReadFile(logPath))
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		if i == 400 {
			t.Fatalf("sshd did not listen on %s:\n%s", addr, ReadFile(logPath))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// privateDevScript runs as root under `unshare --mount --propagation
// private`, so that nothing it mounts is seen outside: it gives sshd, PAM and
// the helper a /dev of their own whose log is the test's socket, and hides
// the journal's socket so that the helper's audit=auto falls back to syslog
// there too. The machine's /dev/log (a socket, a symlink into
// /run/systemd/journal, or nothing) is neither used nor changed.
//
// $1 is a directory holding only the test's socket "log": each other entry
// of /dev gets a placeholder there, with the real one bind-mounted on it
// (symlinks are copied), and the directory is then bind-mounted over /dev.
// $2 is an empty directory; the rest is the command to exec.
const privateDevScript = `set -eu
dev=$1 empty=$2
shift 2
[ -S "$dev/log" ] || { echo "private /dev: $dev/log is not the test's socket" >&2; exit 1; }
for p in /dev/* /dev/.[!.]*; do
	[ -e "$p" ] || [ -L "$p" ] || continue
	e=${p#/dev/}
	[ "$e" = log ] && continue
	if [ -L "$p" ]; then
		ln -s "$(readlink "$p")" "$dev/$e"
	elif [ -d "$p" ]; then
		mkdir "$dev/$e"
		mount --rbind "$p" "$dev/$e"
	else
		: >"$dev/$e"
		mount --bind "$p" "$dev/$e"
	fi
done
mount --rbind "$dev" /dev
[ -S /dev/log ] && [ -c /dev/null ] || { echo "private /dev: not in place" >&2; exit 1; }
if [ -d /run/systemd/journal ]; then
	mount --bind "$empty" /run/systemd/journal
fi
exec "$@"
`
