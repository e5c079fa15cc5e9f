// Package command runs a template's command after its destination changed.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/agent/config"
)

// StopGrace is how long a command stopped with the agent (Proc.Stop) has
// between SIGTERM and SIGKILL, unless its timeout comes first: well under
// systemd's default TimeoutStopSec (90s), long enough for a service reload
// to finish.
const StopGrace = 5 * time.Second

// ErrStopped wraps the error of a command that Stop signalled before it
// ended: it did not run to its end (whatever its exit status).
var ErrStopped = errors.New("stopped by the agent before its end")

// Proc is a started command.
type Proc struct {
	argv     []string
	timeout  time.Duration
	deadline time.Time
	pid      int
	out      bytes.Buffer // written by exec's copying goroutine until Wait returns
	done     chan struct{}
	err      error // set before done is closed

	// mu orders the signals against the end: no signal is sent to the
	// process group once Wait returned (its id may be reused).
	mu      sync.Mutex
	exited  bool
	stopped string // how Stop ended it ("SIGTERM", ...), "" when it did not
	// killVerb is how stopped reads once a SIGKILL followed Stop's SIGTERM,
	// whichever of Stop's grace timer and the timeout sent it (they may
	// fire together: the grace never outlasts the timeout).
	killVerb string
	killed   bool   // the timeout killed it
	adopted  string // the Identity of a command Adopt follows, "" for Start's
}

// Start starts e in a process group of its own, so that a signal reaches
// everything it started, with its timeout (config.DefaultCommandTimeout
// when unset) counting from now: at the timeout the group is killed
// (SIGKILL). It returns an error only when the command cannot be started.
func Start(e *config.Exec) (*Proc, error) {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCommandTimeout
	}
	p := &Proc{argv: e.Command, timeout: timeout, done: make(chan struct{})}
	cmd := exec.Command(e.Command[0], e.Command[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("command %q: %w", e.Command, err)
	}
	p.pid, p.deadline = cmd.Process.Pid, time.Now().Add(timeout)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	go func() {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		var err error
		select {
		case err = <-waited:
		case <-timer.C:
			p.timedOut()
			err = <-waited
		}
		p.mu.Lock()
		p.finish(err)
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// timedOut kills the command at its timeout: a timeout of its own, or the
// end of a grace period Stop started.
func (p *Proc) timedOut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped != "" {
		p.stopped = p.killVerb
	} else {
		p.killed = true
	}
	p.signal(syscall.SIGKILL)
}

// finish records the command's end and sets Err from how it ended: waitErr
// is what Wait said (Adopt's commands give ErrAdopted). p.mu is held.
func (p *Proc) finish(waitErr error) {
	p.exited = true
	switch {
	case p.stopped != "":
		p.err = fmt.Errorf("command %q: %w (%s)", p.argv, ErrStopped, p.stopped)
	case p.killed:
		p.err = fmt.Errorf("command %q: killed after its timeout of %s", p.argv, p.timeout)
	case errors.Is(waitErr, ErrAdopted):
		p.err = fmt.Errorf("command %q: %w", p.argv, ErrAdopted)
	case waitErr != nil:
		p.err = fmt.Errorf("command %q: %w: %s", p.argv, waitErr, tail(p.out.Bytes()))
	}
}

// signal sends sig to the command's process group unless it has ended;
// p.mu is held. An adopted command is looked for first: it is not this
// process's child, so its pid may have been reused since the last look.
func (p *Proc) signal(sig syscall.Signal) {
	if !p.exited && (p.adopted == "" || Identity(p.pid) == p.adopted) {
		syscall.Kill(-p.pid, sig)
	}
}

// Done is closed once the command has ended (Err is then set).
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns, once Done is closed, nil when the command exited 0; an
// error wrapping ErrStopped when Stop signalled it before it ended; an
// error saying so when its timeout killed it; otherwise the exit error with
// the tail of its output.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Stop ends the command as a stopping service should: SIGTERM to its
// process group, and SIGKILL when it has not ended after grace, or at its
// timeout if that comes first. It returns once the command has ended, at
// once when it already had (Err is then not an ErrStopped).
func (p *Proc) Stop(grace time.Duration) {
	p.mu.Lock()
	if p.exited || p.stopped != "" {
		p.mu.Unlock()
		<-p.done
		return
	}
	// The timeout's SIGKILL stays armed: the grace never outlasts it.
	grace = max(min(grace, time.Until(p.deadline)), 0)
	p.stopped = "SIGTERM"
	p.killVerb = fmt.Sprintf("SIGTERM, then SIGKILL after a grace period of %s", grace.Round(time.Millisecond))
	p.signal(syscall.SIGTERM)
	p.mu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.mu.Lock()
		if !p.exited {
			p.stopped = p.killVerb
			p.signal(syscall.SIGKILL)
		}
		p.mu.Unlock()
		<-p.done
	}
}

// Run runs e to its end (Start, then wait) and returns its Err. When ctx
// ends first, the command is stopped (Stop with StopGrace) and the error
// wraps ErrStopped.
func Run(ctx context.Context, e *config.Exec) error {
	p, err := Start(e)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Stop(StopGrace)
	}
	return p.Err()
}

func tail(b []byte) string {
	const n = 512
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// Pid is the command's process id, the id of its process group too.
func (p *Proc) Pid() int { return p.pid }

// ErrAdopted wraps the end of a command Adopt followed: it was started by
// an earlier agent, whose child it was, so how it ended is not known.
var ErrAdopted = errors.New("started before the agent's restart: how it ended is not known")

// Identity names the running process pid across a restart of the agent:
// the boot it runs in and its start time (clock ticks since that boot)
// with its pid, so that the pid reused by another process does not pass
// for it. It is "" when the process is gone (a zombie included) or /proc
// cannot tell.
func Identity(pid int) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) state ppid ... starttime is field 22; comm may hold
	// anything, ')' and blanks included: count after its last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return fmt.Sprintf("%d/%s/%s", pid, strings.TrimSpace(string(boot)), f[19])
}

// adoptPoll is how often an adopted command is looked for in /proc (a test
// hook).
var adoptPoll = 100 * time.Millisecond

// Adopt follows the command argv that an earlier agent started, at
// started, and left running when it was killed (kill -9, OOM): process
// pid, whose Identity was id. It returns nil when that process is no longer
// running. The Proc is as one Start returns, but that the command is not
// this process's child: Done closes once /proc no longer shows it, and Err
// then wraps ErrAdopted (or ErrStopped after Stop, or says the timeout,
// counted from started, killed it). Stop and the timeout signal its
// process group.
func Adopt(argv []string, pid int, id string, started time.Time, timeout time.Duration) *Proc {
	if pid <= 1 || id == "" || Identity(pid) != id {
		return nil
	}
	if timeout <= 0 {
		timeout = config.DefaultCommandTimeout
	}
	p := &Proc{argv: argv, timeout: timeout, pid: pid, deadline: started.Add(timeout), done: make(chan struct{}), adopted: id}
	go func() {
		tick := time.NewTicker(adoptPoll)
		defer tick.Stop()
		timer := time.NewTimer(max(time.Until(p.deadline), 0))
		defer timer.Stop()
		for {
			select {
			case <-tick.C:
			case <-timer.C:
				p.timedOut()
			}
			p.mu.Lock()
			if Identity(pid) == id {
				p.mu.Unlock()
				continue
			}
			p.finish(ErrAdopted)
			p.mu.Unlock()
			close(p.done)
			return
		}
	}()
	return p
}
