package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// agentFloor is what the agent's CPU row cannot go below on this machine,
// measured here in the run: the files one start must create (nFiles, each
// written atomically as both agents do: a new temporary file, fsync,
// rename, then one fsync of the directory), timed in-process as CPU of the
// writing thread, and a Go hello world's start (CPU of the process). Both
// are the medians of rounds into fresh directories under dir. On a file
// system where creating an inode is costly (ext4 without a journal scans
// recently deleted inodes) the writes alone can exceed 0.1× of Vault
// Agent's figure.
func agentFloor(dir string, nFiles, rounds int) (writes, start time.Duration, err error) {
	var ws []float64
	data := []byte("bench-user:0123456789abcdef0123456789abcdef\n")
	for r := 0; r < rounds; r++ {
		d := filepath.Join(dir, fmt.Sprintf("floor-%d", r))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, err
		}
		cpu, err := threadCPU(func() error {
			var dirs atomicfile.Dirs
			for i := 0; i < nFiles; i++ {
				o := atomicfile.Owner(0o600)
				o.Dirs = &dirs
				if err := atomicfile.WriteFile(filepath.Join(d, fmt.Sprintf("t%d", i)), data, o); err != nil {
					return err
				}
			}
			for d, err := range dirs.Sync() {
				return fmt.Errorf("fsync %s: %w", d, err)
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		ws = append(ws, float64(cpu))
	}
	hello, err := buildHello(dir)
	if err != nil {
		return time.Duration(quantile(ws, 0.5)), 0, err
	}
	var ss []float64
	for r := 0; r < 20; r++ {
		cmd := exec.Command(hello)
		cmd.Env = []string{}
		res, err := timed(cmd)
		if err != nil {
			return time.Duration(quantile(ws, 0.5)), 0, err
		}
		ss = append(ss, float64(res.cpu))
	}
	return time.Duration(quantile(ws, 0.5)), time.Duration(quantile(ss, 0.5)), nil
}

// threadCPU runs f on one locked OS thread and returns the user + system
// time that thread spent in it (every syscall of f runs on that thread).
func threadCPU(f func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var a, b syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &a); err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &b); err != nil {
		return 0, err
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(b.Utime) - tv(a.Utime) + tv(b.Stime) - tv(a.Stime), nil
}
