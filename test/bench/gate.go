package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// A gate starts many processes at once. Each is forked and exec'd first,
// parked in a shell that waits on a shared pipe; closing the pipe's write
// end wakes them all together, and each execs its program in its own
// process (the one that exits, or that the caller signals, is the
// program). Started one by one from this process instead (fork and exec
// are serialised in a Go process, and the children already running compete
// with the parent for the CPUs), the last of a storm's 200 logins began
// 230–430 ms into a 330–470 ms storm: the spread measured the order of
// spawning, not the logins (a round's p99/median ranged from 1.8 to 28 with
// the same binary).
//
// The launcher (dash or any POSIX sh) writes a byte to fd 4 once it runs,
// waits for EOF on fd 3, closes both and execs the program.
const gateLauncher = `printf x >&4; read -r _ <&3; exec "$0" "$@" 3<&- 4>&-`

type gate struct {
	r, w           *os.File // the gate
	readyR, readyW *os.File // a byte per parked launcher
	parked         int
}

func newGate() (*gate, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	return &gate{r: r, w: w, readyR: readyR, readyW: readyW}, nil
}

// start starts cmd parked behind the gate: its program runs when open is
// called. cmd's Stdin, Stdout, Stderr, Env and SysProcAttr are kept.
func (g *gate) start(cmd *exec.Cmd) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	cmd.Args = append([]string{"/bin/sh", "-c", gateLauncher, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
	cmd.ExtraFiles = []*os.File{g.r, g.readyW}
	if err := cmd.Start(); err != nil {
		return err
	}
	g.parked++
	return nil
}

// open waits (up to limit) until every parked launcher runs, then opens
// the gate and returns when it did.
func (g *gate) open(limit time.Duration) (time.Time, error) {
	g.readyW.Close()
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(g.readyR, make([]byte, g.parked))
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil {
			g.close()
			return time.Time{}, fmt.Errorf("gate: %d launchers: %w", g.parked, err)
		}
	case <-time.After(limit):
		g.close()
		return time.Time{}, fmt.Errorf("gate: not all %d launchers ran within %s", g.parked, limit)
	}
	t := time.Now()
	g.w.Close()
	return t, nil
}

// close releases every launcher still parked (they run their programs)
// and this process's ends of the pipes. Safe after open.
func (g *gate) close() {
	g.w.Close()
	g.r.Close()
	g.readyR.Close()
	g.readyW.Close()
}

// gatedStorm runs cmds at once and returns each one's run (wall from the
// gate's opening to its exit) and the storm's total. CPU and RSS include
// the launcher shell's, a fixed cost the same for every program (see
// launcherCPU).
func gatedStorm(cmds []*exec.Cmd) (runs []run, total time.Duration, err error) {
	g, err := newGate()
	if err != nil {
		return nil, 0, err
	}
	defer g.close()
	outs := make([]*strings.Builder, len(cmds))
	for i, c := range cmds {
		outs[i] = &strings.Builder{}
		c.Stdout, c.Stderr = outs[i], outs[i]
		if err := g.start(c); err != nil {
			g.close()
			for _, c := range cmds[:i] {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
			return nil, 0, fmt.Errorf("storm: start %d: %w", i, err)
		}
	}
	start, err := g.open(time.Minute)
	if err != nil {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		return nil, 0, fmt.Errorf("storm: %w", err)
	}
	type done struct {
		i    int
		wall time.Duration
	}
	ch := make(chan done, len(cmds))
	for i, c := range cmds {
		go func() {
			_ = c.Wait()
			ch <- done{i, time.Since(start)}
		}()
	}
	runs = make([]run, len(cmds))
	for range cmds {
		d := <-ch
		c := cmds[d.i]
		r := run{wall: d.wall, code: c.ProcessState.ExitCode(), out: outs[d.i].String(),
			cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime()}
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.rss = ru.Maxrss
		}
		runs[d.i] = r
	}
	return runs, time.Since(start), nil
}

// launcherCPU is the median CPU time (ms) of the gate's launcher shell
// alone (exec'ing true), n times: what the storm's CPU per login holds
// beside the helper's own.
func launcherCPU(n int) (float64, error) {
	var xs []float64
	for i := 0; i < n; i++ {
		runs, _, err := gatedStorm([]*exec.Cmd{exec.Command("true")})
		if err != nil {
			return 0, err
		}
		xs = append(xs, ms(runs[0].cpu))
	}
	return quantile(xs, 0.5), nil
}
