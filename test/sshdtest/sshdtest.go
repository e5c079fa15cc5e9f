// Package sshdtest runs a private, real sshd for end-to-end tests: on a free
// loopback port, with the caller's sshd_config lines, logging to a file
// (-e), in the foreground (-D), killed when the test ends. Optionally it runs
// in a private mount namespace whose /dev/log is the test's own syslog
// socket, so that what sshd and PAM send to syslog is seen by the test and
// the machine's syslog gets none of it.
//
// It needs root and /usr/sbin/sshd (openssh-server).
package sshdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// Bin is the sshd started by default.
const Bin = "/usr/sbin/sshd"

// Options shape one sshd.
type Options struct {
	// Dir holds sshd_config, sshd.pid and sshd.log (required).
	Dir string
	// Config is the sshd_config text after the Port, ListenAddress and
	// PidFile lines Start writes (HostKey, authentication settings, ...).
	Config string
	// Bin is the program to start; a symlink to sshd names sshd's PAM
	// service. Default Bin.
	Bin string
	// PrivateDev, when set, is a directory holding only the test's syslog
	// socket "log": sshd then runs under `unshare --mount` with a /dev of
	// its own made from it (see privateDevScript).
	PrivateDev string
}

// Server is a running sshd.
type Server struct {
	// Addr is 127.0.0.1:PORT.
	Addr                         string
	ConfigFile, LogFile, PidFile string

	cmd    *exec.Cmd
	exited chan struct{}
}

// Start writes the config, starts sshd and returns once it listens. It
// fails the test, with sshd's log, when sshd exits before listening. sshd is
// killed when the test ends, and its log printed when the test failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := opts.Bin
	if bin == "" {
		bin = Bin
	}
	testkit.Must(t, os.MkdirAll("/run/sshd", 0o755))
	s := &Server{
		Addr:       fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)),
		ConfigFile: filepath.Join(opts.Dir, "sshd_config"),
		LogFile:    filepath.Join(opts.Dir, "sshd.log"),
		PidFile:    filepath.Join(opts.Dir, "sshd.pid"),
		exited:     make(chan struct{}),
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := fmt.Sprintf("Port %s\nListenAddress 127.0.0.1\nPidFile %s\n%s", port, s.PidFile, opts.Config)
	testkit.Must(t, os.WriteFile(s.ConfigFile, []byte(conf), 0o600))
	logf, err := os.Create(s.LogFile)
	testkit.Must(t, err)
	args := []string{bin, "-D", "-e", "-f", s.ConfigFile}
	if opts.PrivateDev != "" {
		noJournal := filepath.Join(opts.Dir, "no-journal")
		testkit.Must(t, os.Mkdir(noJournal, 0o755))
		args = append([]string{"unshare", "--mount", "--propagation", "private",
			"sh", "-c", privateDevScript, "sh", opts.PrivateDev, noJournal}, args...)
	}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	testkit.Must(t, s.cmd.Start())
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
		logf.Close()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	s.waitListening(t)
	return s
}

// Log returns what sshd logged so far.
func (s *Server) Log() string { return testkit.ReadFile(s.LogFile) }

// PID is sshd's process id (the one SIGHUP goes to: unshare and sh exec it).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// ReloadCommand is a command line that reloads this sshd as
// `systemctl reload ssh` would (SIGHUP: sshd re-executes itself, reading
// its config and host certificates again).
func (s *Server) ReloadCommand() []string {
	return []string{"kill", "-HUP", fmt.Sprint(s.PID())}
}

// Reload sends SIGHUP.
func (s *Server) Reload() error { return s.cmd.Process.Signal(syscall.SIGHUP) }

// waitListening waits for sshd to listen; it fails at once, with sshd's
// log, when sshd (or the private /dev set up before it) exited.
func (s *Server) waitListening(t testing.TB) {
	t.Helper()
	for i := 0; i < 400; i++ {
		select {
		case <-s.exited:
			t.Fatalf("sshd exited before listening on %s:\n%s", s.Addr, s.Log())
		default:
		}
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("sshd did not listen on %s", s.Addr)
}

// Exited reports whether sshd has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
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
