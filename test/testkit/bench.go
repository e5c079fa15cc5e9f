package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrNoPostgres is returned by StartPostgres when PostgreSQL cannot run
// here: not installed, or not root (it runs as the postgres user).
var ErrNoPostgres = errors.New("PostgreSQL unavailable")

// Postgres is a throwaway PostgreSQL server (trust auth, loopback only).
type Postgres struct {
	Port int
	base string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPostgres starts one, for callers outside a test (the benchmark), and
// returns once it accepts connections. It returns an error wrapping
// ErrNoPostgres when PostgreSQL cannot run here, another error when it
// failed to start. The caller must Stop it.
func StartPostgres() (*Postgres, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: runs as the postgres user, needs root", ErrNoPostgres)
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	pg, err := user.Lookup("postgres")
	if len(bins) == 0 || err != nil {
		return nil, fmt.Errorf("%w: not installed (apt-get install postgresql)", ErrNoPostgres)
	}
	bin := filepath.Dir(bins[len(bins)-1])
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	base, err := os.MkdirTemp("", "latchkey-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{base: base, done: make(chan struct{})}
	fail := func(err error) (*Postgres, error) {
		os.RemoveAll(base)
		return nil, err
	}
	data := filepath.Join(base, "data")
	if err := os.Chmod(base, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		return fail(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		return fail(err)
	}
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	p.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.Create(filepath.Join(base, "log"))
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", data, "-p", strconv.Itoa(p.Port), "-c", "listen_addresses=127.0.0.1")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Pdeathsig: syscall.SIGQUIT}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	// A TCP connect succeeds while the server still replays its WAL;
	// pg_isready asks the server itself.
	ready := filepath.Join(bin, "pg_isready")
	for i := 0; exec.Command(ready, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", "postgres").Run() != nil; i++ {
		if i > 600 {
			b, _ := os.ReadFile(filepath.Join(base, "log"))
			p.Stop()
			return nil, fmt.Errorf("postgres did not become ready:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, nil
}

// Stop ends the server (SIGINT, PostgreSQL's fast shutdown, which does not
// wait for pooled connections) and removes its files.
func (p *Postgres) Stop() {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	os.RemoveAll(p.base)
}
