package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run is one finished process: wall time from start to exit, peak RSS (KiB,
// from wait4's rusage), exit code.
type run struct {
	wall time.Duration
	rss  int64
	cpu  time.Duration // user + system
	code int
	out  string
}

// timed runs cmd to its end; an exit code other than 0 is not an error
// (the helper's "denied" is an answer), failing to start is.
func timed(cmd *exec.Cmd) (run, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return run{}, err
	}
	err := cmd.Wait()
	wall := time.Since(start)
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		return run{}, err
	}
	r := run{wall: wall, code: cmd.ProcessState.ExitCode(), out: out.String(),
		cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rss = ru.Maxrss
	}
	return r, nil
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		if x > m {
			m = x
		}
	}
	return m
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// rssKiB is a running process's VmRSS.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// cpuSeconds is a running process's user+system CPU time: the larger of
// /proc/PID/stat's, which counts exited threads too but in 10 ms ticks (an
// idle agent's few ticks made growth factors of 1-tick noise), and the sum
// of its threads' run time in nanoseconds (schedstat).
func cpuSeconds(pid int) (float64, error) {
	ticks, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	return max(ticks, schedSeconds(pid)), nil
}

// schedSeconds sums the on-CPU time of pid's live threads (0 when unknown).
func schedSeconds(pid int) float64 {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns float64
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			ns += v
		}
	}
	return ns / 1e9
}

func cpuTicks(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// daemon is a long-running process of the benchmark, killed with it.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startDaemon(logPath string, env []string, name string, args ...string) (*daemon, error) {
	return startDaemonVia(nil, logPath, env, name, args...)
}

// startDaemonVia is startDaemon parked behind g (nil: started now): the
// program runs once g opens.
func startDaemonVia(g *gate, logPath string, env []string, name string, args ...string) (*daemon, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := cmd.Start
	if g != nil {
		start = func() error { return g.start(cmd) }
	}
	if err := start(); err != nil {
		logf.Close()
		return nil, err
	}
	// The child holds its own copy: a fleet of agents must not hold a
	// thousand files open here.
	logf.Close()
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// timeBin is GNU time, which forks (not vfork) the program it runs, so that
// wait4's Maxrss is the program's own peak. A Go parent's os/exec starts the
// child with CLONE_VM: the kernel then records the parent's high-water mark
// as the child's at execve, and every child of this benchmark would seem to
// use at least the benchmark's own RSS.
const timeBin = "/usr/bin/time"

// peakRSS runs cmd under GNU time and returns its peak RSS (KiB) and exit
// code; ok is false when GNU time is not installed.
func peakRSS(cmd *exec.Cmd, tmp string) (kib int64, code int, ok bool, err error) {
	if _, err := os.Stat(timeBin); err != nil {
		return 0, 0, false, nil
	}
	f, err := os.CreateTemp(tmp, "rss-")
	if err != nil {
		return 0, 0, false, err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd.Args = append([]string{timeBin, "-f", "%M", "-o", f.Name(), "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = timeBin
	r, err := timed(cmd)
	if err != nil {
		return 0, 0, false, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return 0, 0, false, err
	}
	kib, err = strconv.ParseInt(lastLine(b), 10, 64)
	if err != nil {
		return 0, 0, false, fmt.Errorf("GNU time's output %q: %w", b, err)
	}
	return kib, r.code, true, nil
}
