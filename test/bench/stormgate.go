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

// The storm's processes are forked and exec'd before the clock starts, each
// parked in a shell that waits on a shared gate pipe; closing the gate's
// write end wakes them all at once, and each execs the helper. Started one
// by one from this process instead (fork and exec are serialised in a Go
// process, and the children already running compete with the parent for
// the CPUs), the last login began 230–430 ms into a 330–470 ms storm: the
// spread then measured the order of spawning, not the logins (a round's
// p99/median ranged from 1.8 to 28 with the same binary).
//
// The launcher (dash or any POSIX sh) signals on fd 4 that it runs, waits
// for EOF on fd 3, closes both and execs the program: the process that
// exits is the helper, in the same process sshd's pam_exec would have.
const stormLauncher = `printf x >&4; read -r _ <&3; exec "$0" "$@" 3<&- 4>&-`

// gatedStorm runs cmds at once and returns each one's run (wall from the
// gate's opening to its exit) and the storm's total. CPU and RSS include
// the launcher shell's, a fixed cost the same for every program (see
// launcherCPU).
func gatedStorm(cmds []*exec.Cmd) (runs []run, total time.Duration, err error) {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		gateR.Close()
		gateW.Close()
		return nil, 0, err
	}
	defer func() {
		gateR.Close()
		gateW.Close() // releases launchers still parked after an error
		readyR.Close()
		readyW.Close()
	}()
	outs := make([]*strings.Builder, len(cmds))
	started := 0
	defer func() {
		if err != nil {
			gateW.Close()
			for _, c := range cmds[:started] {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	}()
	for i, c := range cmds {
		if c.Err != nil {
			return nil, 0, fmt.Errorf("storm: %w", c.Err)
		}
		c.Args = append([]string{"/bin/sh", "-c", stormLauncher, c.Path}, c.Args[1:]...)
		c.Path = "/bin/sh"
		c.ExtraFiles = []*os.File{gateR, readyW}
		outs[i] = &strings.Builder{}
		c.Stdout, c.Stderr = outs[i], outs[i]
		if err := c.Start(); err != nil {
			return nil, 0, fmt.Errorf("storm: start %d: %w", i, err)
		}
		started++
	}
	readyW.Close()
	if _, err := io.ReadFull(readyR, make([]byte, len(cmds))); err != nil {
		return nil, 0, fmt.Errorf("storm: launchers ready: %w", err)
	}
	type done struct {
		i    int
		wall time.Duration
	}
	ch := make(chan done, len(cmds))
	start := time.Now()
	gateW.Close()
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

// launcherCPU is the median CPU time (ms) of the storm's launcher shell
// alone (exec'ing true), n times, gate open: what the storm's CPU per login
// holds beside the helper's own.
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
